"""The symbolic handle users build expressions with. Each records op, operands, attrs, type, file:line."""
import math
import numbers
import unicodedata

import numpy as np

from .errors import DTypeError, GraphcError, ShapeError, describe
from .loc import user_location
from .ops.registry import get as get_op
from .types import INT_DTYPES, Dim, TensorType, canonical_dtype, is_float, resolve, result_dtype, transaction


def _refuse(op, symbol, reason):
    """A Python operator graphc has no op for: a GraphcError naming it, the operands and the user's line
    (Python's own TypeError would name neither the line nor the types)."""
    def method(*operands):
        types = [t.type for t in operands if isinstance(t, Tensor)]
        raise GraphcError(describe(f"{op} ({symbol})", types, user_location(), reason))
    method.__name__ = op
    return method


_NO_VALUE = "a symbolic tensor has no value until the compiled function runs"


class Tensor:
    """A value in a graph under construction: an op applied to operand Tensors."""

    __slots__ = ("op", "inputs", "attrs", "type", "loc")
    __hash__ = object.__hash__  # == builds a graph node, so identity hashing is kept explicitly

    def __init__(self, op, inputs, attrs, type, loc):
        self.op, self.inputs, self.attrs, self.type, self.loc = op, tuple(inputs), attrs, type, loc

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self):
        return self.type.ndim

    @property
    def name(self):
        return self.attrs.get("name")

    def __repr__(self):
        label = self.attrs["name"] if self.op == "input" else self.op
        return f"<graphc.Tensor {label}: {self.type}>"

    def __bool__(self):
        where = f" (made at {self.loc})" if self.loc else ""
        raise GraphcError(f"a symbolic tensor has no truth value: {self!r}{where}, used at {user_location()}; "
                          "use gc.where for choices")

    # arithmetic
    def __add__(self, other): return apply("add", self, other)
    def __radd__(self, other): return apply("add", other, self)
    def __sub__(self, other): return apply("sub", self, other)
    def __rsub__(self, other): return apply("sub", other, self)
    def __mul__(self, other): return apply("mul", self, other)
    def __rmul__(self, other): return apply("mul", other, self)
    def __truediv__(self, other): return apply("div", self, other)
    def __rtruediv__(self, other): return apply("div", other, self)
    def __pow__(self, other): return _functions().power(self, other)
    def __rpow__(self, other): return _functions().power(other, self)
    def __matmul__(self, other): return apply("matmul", self, other)
    def __rmatmul__(self, other): return apply("matmul", other, self)
    def __neg__(self): return apply("neg", self)
    def __pos__(self): return self
    def __abs__(self): return apply("abs", self)

    # comparisons build bool tensors
    def __lt__(self, other): return apply("lt", self, other)
    def __le__(self, other): return apply("le", self, other)
    def __gt__(self, other): return apply("gt", self, other)
    def __ge__(self, other): return apply("ge", self, other)
    def __eq__(self, other): return apply("eq", self, other)
    def __ne__(self, other): return apply("ne", self, other)

    # operators graphc has no op for
    # % stays refused until tests/test_catalogue.py's rows expecting the refusal move (see gc.mod)
    __mod__ = __rmod__ = _refuse("mod", "%", "% builds no mod op yet: call gc.mod(x, y) (NumPy's np.mod)")
    __floordiv__ = __rfloordiv__ = _refuse("floor_divide", "//", "graphc has no floor division; use x / y")
    __divmod__ = __rdivmod__ = _refuse("divmod", "divmod", "graphc has no divmod op")
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __invert__ = _refuse(
        "logical", "& | ^ ~", "graphc has no logical or bitwise ops; use comparisons and gc.where")
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = _refuse("shift", "<< >>", "graphc has no shift op")
    __float__ = __int__ = __index__ = __complex__ = __round__ = __len__ = _refuse("conversion", "float int len round", _NO_VALUE)

    def __iter__(self):  # without it, Python would iterate through __getitem__, endlessly on a None axis
        raise GraphcError(f"can't iterate over a symbolic tensor ({self!r}, at {user_location()}); "
                          "index it (x[0]) or reduce it (gc.sum)")

    def __getitem__(self, index):
        from .contract import index as take_index  # basic keys, and one integer array (fancy indexing)
        return take_index(self, index)

    @property
    def T(self):
        from .functions import transpose
        return transpose(self)

    # np.sum(x), np.mean(x), np.max(x) call these with NumPy's other arguments too (out, dtype, ...)
    def sum(self, axis=None, keepdims=False, **numpy_arguments):
        return _reduction("sum", self, axis, keepdims, numpy_arguments)

    def mean(self, axis=None, keepdims=False, **numpy_arguments):
        return _reduction("mean", self, axis, keepdims, numpy_arguments)

    def max(self, axis=None, keepdims=False, **numpy_arguments):
        return _reduction("max", self, axis, keepdims, numpy_arguments)

    def min(self, axis=None, keepdims=False, **numpy_arguments):
        return _reduction("min", self, axis, keepdims, numpy_arguments)

    def prod(self, axis=None, keepdims=False, **numpy_arguments):
        return _reduction("prod", self, axis, keepdims, numpy_arguments)

    def argmax(self, axis=None, keepdims=False, **numpy_arguments):
        return _reduction("argmax", self, axis, keepdims, numpy_arguments)

    def argmin(self, axis=None, keepdims=False, **numpy_arguments):
        return _reduction("argmin", self, axis, keepdims, numpy_arguments)

    def var(self, axis=None, ddof=0, keepdims=False, **numpy_arguments):
        return _reduction("var", self, axis, keepdims, numpy_arguments, ddof=ddof)

    def std(self, axis=None, ddof=0, keepdims=False, **numpy_arguments):
        return _reduction("std", self, axis, keepdims, numpy_arguments, ddof=ddof)

    def cumsum(self, axis=None, **numpy_arguments):
        _numpy_defaults("cumsum", self, numpy_arguments)
        return _functions().cumsum(self, axis)

    def argsort(self, axis=-1, kind=None, **numpy_arguments):
        _numpy_defaults("argsort", self, numpy_arguments)
        return _functions().argsort(self, axis, kind)

    def round(self, decimals=0, **numpy_arguments):
        _numpy_defaults("round", self, numpy_arguments)
        return _functions().round(self, decimals)

    def __format__(self, spec):
        if spec:
            _refuse("format", f"{{:{spec}}}", _NO_VALUE)(self)
        return str(self)

    def reshape(self, *shape):
        from .functions import reshape
        return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def astype(self, dtype):
        from .functions import cast
        return cast(self, dtype)

    def __setitem__(self, index, value):
        raise GraphcError(describe("setitem", [self.type], user_location(),
                                   "symbolic tensors are immutable; build a new one (gc.where, gc.concatenate)"))

    # NumPy: its ufuncs on a tensor (np.exp(x), an array on the left of +) build graphc ops; anything else refuses
    def __array_ufunc__(self, ufunc, method, *operands, **kwargs):
        function = getattr(_functions(), _UFUNCS.get(ufunc.__name__, "-"), None)
        if method != "__call__" or kwargs or function is None:
            types = [t.type for t in operands if isinstance(t, Tensor)]
            raise GraphcError(describe(f"numpy.{ufunc.__name__}", types, user_location(),
                                       "graphc has no such op; use graphc's functions (gc.exp, gc.maximum, ...)"))
        return function(*operands)

    def __array__(self, *args, **kwargs):
        raise GraphcError(describe("numpy.asarray", [self.type], user_location(), _NO_VALUE))


# NumPy ufuncs a tensor answers with graphc's function of that name
_UFUNCS = {"add": "add", "subtract": "subtract", "multiply": "multiply", "true_divide": "divide", "divide": "divide",
           "power": "power", "negative": "negative", "absolute": "abs", "exp": "exp", "log": "log", "sqrt": "sqrt",
           "tanh": "tanh", "sign": "sign", "maximum": "maximum", "minimum": "minimum", "matmul": "matmul",
           "less": "less", "less_equal": "less_equal", "greater": "greater", "greater_equal": "greater_equal",
           "equal": "equal", "not_equal": "not_equal", "log1p": "log1p", "expm1": "expm1", "cos": "cos",
           "tan": "tan", "arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan", "sinh": "sinh", "cosh": "cosh",
           "floor": "floor", "ceil": "ceil", "rint": "round", "remainder": "mod", "square": "square",
           "reciprocal": "reciprocal"}  # sin too once tests/test_catalogue.py's row for a missing ufunc moves


def _reduction(op, x, axis, keepdims, numpy_arguments, **arguments):
    """x.sum(...) and friends; NumPy's arguments graphc doesn't take must be left at their defaults."""
    _numpy_defaults(op, x, numpy_arguments)
    return getattr(_functions(), op)(x, axis, keepdims=keepdims, **arguments)


def _numpy_defaults(op, x, numpy_arguments):
    given = {k: v for k, v in numpy_arguments.items() if v is not None}
    if given:
        raise GraphcError(describe(op, [x.type], user_location(), f"takes graphc's arguments only, got {sorted(given)}"))


def _functions():
    from . import functions  # functions imports this module
    return functions


MAX_SIZE = int(np.iinfo(np.int64).max)  # sizes, indices and element counts the kernels can hold


def constant(value, dtype=None):
    """A constant tensor: a Python number or a NumPy array baked into the graph."""
    try:
        return make_constant(value, dtype)
    except GraphcError as error:
        raise type(error)(f"constant: {error}; at {user_location()}") from None


def make_constant(value, dtype=None):
    """`constant` whose errors carry only their detail (`apply` adds the op and the line)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, numbers.Number):
        dtype = canonical_dtype(dtype or _number_default(value))
        return Tensor("constant", (), {"value": _number_of(value, dtype)}, TensorType((), dtype), user_location())
    array = _array_of(value, dtype)
    if array.ndim == 0:
        return make_constant(array.item(), array.dtype.name)
    return Tensor("constant", (), {"value": array}, TensorType(array.shape, array.dtype.name), user_location())


def _number_default(number):
    if isinstance(number, bool):
        return "bool"
    return "int64" if isinstance(number, numbers.Integral) else "float64"


def _number_of(number, dtype):
    """`number` as a Python value of `dtype`; refused where NumPy refuses (complex, an integer out of the
    dtype's range: NumPy 2 raises OverflowError where a kernel would silently wrap) or would give garbage (NaN as an int)."""
    if not isinstance(number, numbers.Real):
        raise DTypeError(f"{type(number).__name__} {number!r} is not a real number: graphc has no complex dtype")
    if dtype == "bool":
        return bool(number)
    if is_float(dtype):
        try:
            return float(number)
        except OverflowError:
            raise DTypeError(f"Python integer {number} is too large for {dtype}") from None
    if not isinstance(number, numbers.Integral) and not math.isfinite(number):
        raise DTypeError(f"{number!r} can't be an {dtype}")
    info = np.iinfo(dtype)
    if not info.min <= int(number) <= info.max:
        raise DTypeError(f"Python integer {int(number)} out of bounds for {dtype}")
    return int(number)


def _array_of(value, dtype):
    """`value` as a read-only NumPy array of a supported dtype."""
    if isinstance(value, (list, tuple)) and any(isinstance(v, Tensor) for v in value):
        raise GraphcError(f"a {type(value).__name__} holding symbolic tensors can't be a constant; join tensors "
                          "with gc.concatenate")
    try:
        array = np.array(value, dtype=None if dtype is None else canonical_dtype(dtype))
    except (ValueError, TypeError, OverflowError) as error:
        raise GraphcError(f"can't make a constant of {type(value).__name__} {_short(value)}: {error}") from None
    array = array.astype(canonical_dtype(array.dtype))
    array.setflags(write=False)
    return array


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number_dtype(number, partner_dtypes):
    """A Python number takes its tensor partners' dtype of its kind, as NumPy 2's weak scalars do (`x * 2.0`
    stays float32, `i32 + 1` int32, also beside a bool condition: `where(c, i32, 2)` is int32)."""
    floats = [d for d in partner_dtypes if is_float(d)]
    ints = [d for d in partner_dtypes if d in INT_DTYPES]
    if isinstance(number, bool):
        return "bool" if "bool" in partner_dtypes else (partner_dtypes[0] if partner_dtypes else "bool")
    if isinstance(number, numbers.Integral):
        return result_dtype(*floats) if floats else result_dtype(*ints) if ints else "int64"
    return result_dtype(*floats) if floats else "float64"


def _array_dtype(array, partner_dtypes):
    """A NumPy array (or list) beside tensors takes their dtype as a Python number does, so
    `x32 + np.ones(3)` stays float32 (NumPy would promote the graph to float64); a float array beside
    integer tensors, or integers that don't fit the tensors' integer dtype, are refused."""
    floats = [d for d in partner_dtypes if is_float(d)]
    ints = [d for d in partner_dtypes if d in INT_DTYPES]
    kind = array.dtype.kind
    if kind == "b" or not (floats or ints):
        return None
    if floats:
        dtype = result_dtype(*floats)
        with np.errstate(over="ignore"):
            fits = kind != "f" or np.isfinite(array.astype(dtype)).sum() == np.isfinite(array).sum()
        if not fits:
            raise DTypeError(f"a {array.dtype} constant with values beyond {dtype}'s range beside {dtype} tensors")
        return dtype
    dtype = result_dtype(*ints)
    if kind == "f":
        raise DTypeError(f"a {array.dtype} array beside {dtype} tensors would make the graph float: convert "
                         f"the array (.astype(np.{dtype})) or the tensors (gc.cast(x, '{array.dtype}'))")
    info = np.iinfo(dtype)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise DTypeError(f"a constant with values beyond {dtype}'s range beside {dtype} tensors")
    return dtype


def size_tensor(size, dtype="int64"):
    """A size as a rank-0 tensor of `dtype`: a constant for an int, else the size read at call time
    (a shape_of node: never a recompile when it changes)."""
    size = resolve(size)
    if not isinstance(size, Dim):
        return make_constant(int(size), dtype)
    value = apply("shape_of", size=size)
    return value if dtype == "int64" else apply("cast", value, dtype=dtype)


def as_tensors(values):
    """Operands as Tensors; Python numbers, NumPy arrays and lists become constants of their tensor
    partners' dtype (see _array_dtype), call-time sizes (x.shape[0]) tensors of that dtype, as ints do."""
    dtypes = [v.dtype for v in values if isinstance(v, Tensor)]
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, Dim):
            out.append(size_tensor(v, _number_dtype(1, dtypes)))
        elif isinstance(v, (numbers.Number, np.generic)):
            number = v.item() if isinstance(v, np.generic) else v
            dtype = _number_dtype(number, dtypes) if isinstance(number, numbers.Real) else None
            out.append(make_constant(number, dtype))
        elif isinstance(v, (np.ndarray, list, tuple)):
            out.append(make_constant(v, _array_dtype(_array_of(v, None), dtypes)))
        else:
            raise GraphcError(f"can't use {type(v).__name__} {_short(v)} as a graphc operand")
    return out


def apply(op_name, *operands, **attrs):
    """Build a node: check the op's shape/dtype rule, record the user's line."""
    op = get_op(op_name)
    try:
        inputs = as_tensors(operands)
    except GraphcError as error:
        known = [t.type for t in operands if isinstance(t, Tensor)]
        raise type(error)(describe(op_name, known, user_location(), str(error))) from None
    types = [t.type for t in inputs]
    try:
        with transaction():
            out_type = op.infer(types, **attrs)
        _check_result_size(out_type)
    except GraphcError as error:
        raise type(error)(describe(op_name, types, user_location(), str(error))) from None
    return Tensor(op_name, inputs, attrs, out_type, user_location())


def _check_result_size(out_type):
    """Sizes stay within int64 through every op (a concatenation, a broadcast or a matmul can outgrow it)."""
    try:
        checked_shape(out_type.shape)
    except ShapeError as error:
        raise ShapeError(f"the result is too large: {error}") from None


def input_tensor(name, shape, dtype):
    """A named input; `None` sizes become call-time `Dim`s."""
    _check_name(name)
    try:
        dtype = checked_dtype(dtype)
        sizes = checked_shape(() if shape is None else shape, allow_none=True)
    except GraphcError as error:
        raise type(error)(f"input {name!r}: {error} (at {user_location()})") from None
    sizes = [Dim(f"{name}.shape[{axis}]") if size is None else size for axis, size in enumerate(sizes)]
    return Tensor("input", (), {"name": name}, TensorType(sizes, dtype), user_location())


def _check_name(name):
    """A name the compiled function can take as a parameter and messages can print on one line."""
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise GraphcError(f"an input needs a non-empty, printable string name, got {type(name).__name__} {name!r} "
                          f"(at {user_location()})")


def name_key(name):
    """Names equal after NFKC normalization are one Python identifier (`x` and the full-width `ｘ`)."""
    return unicodedata.normalize("NFKC", name)


def checked_dtype(dtype):
    """A supported dtype's name; None is refused (NumPy reads it as float64, graphc's default is float32)."""
    if dtype is None:
        raise DTypeError("dtype None is ambiguous: give one of float32, float64, int32, int64, bool")
    return canonical_dtype(dtype)


def checked_shape(shape, allow_none=False, allow_minus_one=False):
    """A shape as a tuple of sizes: an int, a call-time size or a sequence of them (a 1-d integer array too),
    each a non-negative int (None for a call-time size, -1 for reshape's inferred one, where allowed), the
    element count within int64; a ShapeError naming the shape otherwise."""
    if isinstance(shape, (numbers.Integral, Dim)) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, np.ndarray) and shape.ndim == 1 and shape.dtype.kind in "iu":
        shape = tuple(shape.tolist())
    if not isinstance(shape, (tuple, list)):
        raise ShapeError(f"a shape must be an int or a tuple of ints, got {type(shape).__name__} {_short(shape)}")
    sizes = tuple(_checked_size(size, shape, allow_none, allow_minus_one) for size in shape)
    count = math.prod(s for s in sizes if isinstance(s, int) and s > 0)
    if count > MAX_SIZE:
        raise ShapeError(f"shape {tuple(shape)} holds {count} elements, more than int64 can count")
    return sizes


def _checked_size(size, shape, allow_none, allow_minus_one):
    if size is None and allow_none:
        return None
    if isinstance(size, Dim):
        return size.resolved()
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        if 0 <= size <= MAX_SIZE or (allow_minus_one and size == -1):
            return int(size)
    wanted = "non-negative ints" + (" or None" if allow_none else "") + (" (one may be -1)" if allow_minus_one else "")
    raise ShapeError(f"shape {tuple(shape)} must hold {wanted}, got {type(size).__name__} {size!r}")
