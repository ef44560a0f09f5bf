"""Tensor types: dtypes and shapes whose sizes are ints or `Dim`s known only at call time."""
import itertools
import numbers
import operator
import threading

import numpy as np

from .errors import DTypeError, GraphcError, ShapeError, describe
from .loc import user_location

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

    # Sizes in arithmetic: with ints, a size computed at call time, usable where a size is expected
    # (gc.reshape(x, (x.shape[0] * 2, -1))); with floats, a number (a rank-0 tensor); a tensor operand
    # gets NotImplemented, so the tensor's own operator takes the size as a number (gc.sum(x) / x.shape[0]).
    def __add__(self, other): return size_arithmetic("+", self, other)
    def __radd__(self, other): return size_arithmetic("+", other, self)
    def __sub__(self, other): return size_arithmetic("-", self, other)
    def __rsub__(self, other): return size_arithmetic("-", other, self)
    def __mul__(self, other): return size_arithmetic("*", self, other)
    def __rmul__(self, other): return size_arithmetic("*", other, self)
    def __floordiv__(self, other): return size_arithmetic("//", self, other)
    def __rfloordiv__(self, other): return size_arithmetic("//", other, self)
    def __mod__(self, other): return size_arithmetic("%", self, other)
    def __rmod__(self, other): return size_arithmetic("%", other, self)
    def __truediv__(self, other): return size_arithmetic("/", self, other)  # a number, as int / int is
    def __rtruediv__(self, other): return size_arithmetic("/", other, self)
    __array_ufunc__ = None  # NumPy arrays defer to these methods (which refuse them) instead of looping over sizes


_PYTHON = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod,
           "/": operator.truediv}
# origin of the size each operator derives; a product is the form reshape reads factors from (its
# static multiplier is `factor`, see graphc/ops/movement.py)
_DERIVED = {"+": "sum", "-": "difference", "*": "product", "//": "quotient", "%": "remainder"}


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def size_arithmetic(symbol, a, b):
    """a <symbol> b where either is a call-time size: two ints give an int; a size and an int (or two
    sizes) a derived Dim whose formula the kernel computes at call time; a float, or `/`, a rank-0 tensor
    of the size (shape_of) computed with; a tensor NotImplemented (its operator takes over)."""
    from .tensor import Tensor, size_tensor
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return NotImplemented
    a, b = resolve(a), resolve(b)
    if not all(isinstance(v, (Dim, numbers.Real)) and not isinstance(v, bool) for v in (a, b)):
        raise GraphcError(describe(f"size arithmetic ({symbol})", [], user_location(),
                                   f"a size takes ints, floats and tensors, not {_operand_text(a, b)}"))
    if symbol == "/" or not all(isinstance(v, Dim) or _is_int(v) for v in (a, b)):
        return _PYTHON[symbol](*[size_tensor(v) if isinstance(v, Dim) else v for v in (a, b)])
    if not isinstance(a, Dim) and not isinstance(b, Dim):
        return _PYTHON[symbol](int(a), int(b))
    if symbol in ("//", "%") and _is_int(b) and b == 0:
        raise ShapeError(describe(f"size arithmetic ({symbol})", [], user_location(), "division of a size by 0"))
    same = {"+": 0, "-": 0, "*": 1, "//": 1}.get(symbol)  # the int that leaves a size as it is
    if _is_int(b) and b == same:
        return a
    if _is_int(a) and a == same and symbol in ("+", "*"):
        return b
    if symbol == "*" and 0 in (a, b):
        return 0
    parts = [v for v in (a, b) if isinstance(v, Dim)]
    texts = ["{%d}" % parts.index(v) if isinstance(v, Dim) else (f"({v})" if v < 0 else str(v)) for v in (a, b)]
    factor = next((int(v) for v in (a, b) if _is_int(v)), 1) if symbol == "*" else 1
    return Dim(_DERIVED[symbol], f"{texts[0]}{symbol}{texts[1]}", parts, factor=factor)


def _operand_text(a, b):
    other = b if isinstance(a, Dim) else a
    return f"{type(other).__name__} {other!r:.40}"


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
