"""Tensor types: dtypes and shapes whose sizes are ints or `Dim`s known only at call time."""
import itertools
import threading

import numpy as np

from .errors import DTypeError

FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)
SHORT = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64", "bool": "bool"}


def canonical_dtype(dtype):
    """'float32', np.float32, np.dtype('float32') -> 'float32'; anything unsupported raises."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in DTYPES:
        raise DTypeError(f"unsupported dtype {dtype!r}: graphc supports {', '.join(DTYPES)}")
    return name


def is_float(dtype):
    return dtype in FLOAT_DTYPES


class Dim:
    """A size given at call time (a `None` in a declared shape).

    Sizes that must be equal are unified (union-find), so `x:(N,3)` and `labels:(N,)` share one N.
    A `Dim` bound to an int becomes that int. A derived `Dim` (a slice or product of sizes) carries
    a `formula`: a format string over its `parts`, computed at run time; a product's static
    multiplier is its `factor`, so a reshape can tell `N*6` from `N*3`.
    """

    _ids = itertools.count()

    def __init__(self, origin, formula=None, parts=(), factor=1):
        self.id = next(Dim._ids)
        self.factor = factor
        self.origin = origin
        self.formula = formula
        self.parts = tuple(parts)
        self._parent = None
        self._value = None

    def root(self):
        node = self
        while node._parent is not None:
            node = node._parent
        return node

    def resolved(self):
        root = self.root()
        return root._value if root._value is not None else root

    def __repr__(self):
        return f"Dim({self.origin})"


def resolve(size):
    return size.resolved() if isinstance(size, Dim) else size


def resolve_shape(shape):
    return tuple(resolve(s) for s in shape)


def size_value(size, known):
    """A size as an int: a call-time size from `known` ({Dim: int}), a derived one computed from its
    formula over its parts (and remembered in `known`); KeyError(dim) for a call-time size not known."""
    size = resolve(size)
    if not isinstance(size, Dim):
        return size
    if size not in known:
        if size.formula is None:
            raise KeyError(size)
        known[size] = eval(size.formula.format(*[size_value(p, known) for p in size.parts]), {})  # arithmetic only
    return known[size]


# Unification is shared state: Dims are plain objects any thread may reach (a declared input used by
# several threads' expressions). One re-entrant lock is held for a whole transaction, not only for
# each unify: a rejected op's rollback must not undo a link another thread's op made meanwhile on the
# same Dims. Holding it, a thread is the only one touching the journal stack, so the stack needs no
# lock of its own. An op's shape rule takes microseconds, so threads declaring at once queue briefly.
_unifying = threading.RLock()
_journals = []  # open transactions of the thread holding _unifying: lists of (dim, attribute, old value)


class transaction:
    """Unifications made inside are undone if the block raises, so a rejected op leaves no trace; other
    threads' unifications wait until the block ends."""

    def __enter__(self):
        _unifying.acquire()
        _journals.append([])

    def __exit__(self, error_type, error, traceback):
        try:
            journal = _journals.pop()
            if error_type is not None:
                for dim, attribute, old in reversed(journal):
                    setattr(dim, attribute, old)
            elif _journals:
                _journals[-1].extend(journal)
        finally:
            _unifying.release()


def _set(dim, attribute, value):
    if _journals:
        _journals[-1].append((dim, attribute, getattr(dim, attribute)))
    setattr(dim, attribute, value)


def unify(a, b):
    """Make sizes a and b equal; return the unified size, or None when they can't be."""
    if not isinstance(a, Dim) and not isinstance(b, Dim):  # two ints: no shared state, no lock
        return a if a == b else None
    _unifying.acquire()  # roots read and linked in one step: two threads linking X->Y and Y->X make a cycle
    try:
        return _link(resolve(a), resolve(b))
    finally:
        _unifying.release()


def _link(a, b):
    if a is b or a == b and not isinstance(a, Dim):
        return a
    if isinstance(a, Dim) and isinstance(b, Dim):
        _set(b, "_parent", a)
        return a
    if isinstance(a, Dim):
        _set(a, "_value", b)
        return b
    if isinstance(b, Dim):
        _set(b, "_value", a)
        return a
    return None


def size_text(size, names=None):
    size = resolve(size)
    if isinstance(size, Dim):
        return names.get(size, "?") if names else "?"
    return str(size)


class TensorType:
    """A dtype and a shape; sizes are ints or `Dim`s, always read through `shape`."""

    __slots__ = ("_shape", "dtype")

    def __init__(self, shape, dtype):
        self._shape = tuple(shape)
        self.dtype = dtype

    @property
    def shape(self):
        return resolve_shape(self._shape)

    @property
    def ndim(self):
        return len(self._shape)

    def is_static(self):
        return not any(isinstance(s, Dim) for s in self.shape)

    def text(self, names=None):
        dims = ",".join(size_text(s, names) for s in self.shape)
        return f"{SHORT[self.dtype]}[{dims}]"

    def __str__(self):
        return self.text()

    __repr__ = __str__

    def __eq__(self, other):
        return isinstance(other, TensorType) and self.dtype == other.dtype and _same_shape(self.shape, other.shape)

    def __hash__(self):
        return hash((self.dtype, self.ndim))


def _same_shape(a, b):
    return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b))


def same_shape(a, b):
    return _same_shape(resolve_shape(a), resolve_shape(b))


def broadcast_shapes(*shapes):
    """NumPy broadcasting, with call-time sizes unified rather than stretched; None if impossible."""
    ndim = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + tuple(resolve_shape(s)) for s in shapes]
    out = []
    for sizes in zip(*padded):
        size = 1
        for s in sizes:
            if s == 1 and not isinstance(s, Dim):
                continue
            if size == 1 and not isinstance(size, Dim):
                size = s
                continue
            size = unify(size, s)
            if size is None:
                return None
        out.append(size)
    return tuple(out)


def result_dtype(*dtypes):
    """NumPy promotion among graphc's dtypes."""
    return np.result_type(*dtypes).name
