"""The user-facing functions, with NumPy's signatures. Each normalizes its arguments and calls `apply`."""
import numbers

import numpy as np

from .errors import DTypeError, GradientError, GraphcError, ShapeError, describe
from .loc import user_location
from .tensor import Tensor, apply, as_tensors, checked_dtype, checked_shape, constant, input_tensor
from .types import INT_DTYPES


def _fail(error_class, op, operands, detail):
    """Raise a declaration-time error naming the op, the operand types and the user's line."""
    raise error_class(describe(op, [t.type for t in operands if isinstance(t, Tensor)], user_location(), detail))


def _tensors(op, values):
    """as_tensors, its errors naming the op, the tensor operands and the user's line."""
    try:
        return as_tensors(values)
    except GraphcError as error:
        _fail(type(error), op, values, str(error))


def _dtype(dtype, op, operands=()):
    """A supported dtype's canonical name, or a DTypeError naming the op and the user's line."""
    try:
        return checked_dtype(dtype)
    except DTypeError as error:
        _fail(DTypeError, op, operands, str(error))


def tensor(name, shape, dtype="float32"):
    """A named input; `None` in `shape` is a size given at call time."""
    return input_tensor(name, shape, dtype)


def scalar(name, dtype="float32"):
    """A named rank-0 input."""
    return input_tensor(name, (), dtype)


def _unary(op):
    def fn(x):
        return apply(op, x)
    fn.__name__ = op
    fn.__doc__ = f"Elementwise {op}."
    return fn


def _float_unary(op):
    """A float-valued function: NumPy computes it in the smallest float that holds the operand exactly,
    float16 for bool; graphc has no float16, so a bool operand is cast to float32 (ints give float64)."""
    def fn(x):
        (x,) = _tensors(op, [x])
        return apply(op, cast(x, "float32") if x.dtype == "bool" else x)
    fn.__name__ = op
    fn.__doc__ = f"Elementwise {op}; a float result (bool operands become float32, ints float64)."
    return fn


exp, log, sqrt, tanh, sigmoid, softplus = map(_float_unary, ["exp", "log", "sqrt", "tanh", "sigmoid", "softplus"])
log1p, expm1, sin, cos, tan, arcsin, arccos, arctan, sinh, cosh = map(
    _float_unary, ["log1p", "expm1", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh"])
log1p.__doc__ = "log(1 + x) elementwise, accurate near 0 (log1p(1e-17) is 1e-17); a float result."
expm1.__doc__ = "exp(x) - 1 elementwise, accurate near 0; a float result."
relu, sign, negative = _unary("relu"), _unary("sign"), _unary("neg")
relu.__doc__ = "max(x, 0) elementwise; its gradient at exactly 0 is 0."
sign.__doc__ = "-1, 0 or 1 elementwise (NaN stays NaN); its gradient is 0."


def abs(x):
    """|x| elementwise; its gradient is sign(x), so 0 at 0."""
    return apply("abs", x)


def floor(x):
    """The largest integer <= x elementwise (integers stay as they are, as in NumPy 2); its gradient is 0."""
    return apply("floor", x)


def ceil(x):
    """The smallest integer >= x elementwise (integers stay as they are); its gradient is 0."""
    return apply("ceil", x)


def round(x, decimals=0):
    """x rounded to the nearest integer, halves to even (np.round with decimals=0, the only one graphc
    takes); integers stay as they are; its gradient is 0."""
    (x,) = _tensors("round", [x])
    if not (_is_int(decimals) and decimals == 0):
        _fail(ShapeError, "round", [x], f"decimals must be 0 (graphc rounds to integers only), got {decimals!r}")
    return apply("round", x)


def mod(a, b):
    """np.mod: a - b * floor(a / b), the sign of b (x mod 0 is NaN for floats, 0 for ints); the gradient
    is 1 for a and -floor(a / b) for b."""
    return apply("mod", a, b)


remainder = mod


def square(x):
    """x * x elementwise."""
    return apply("square", x)


def reciprocal(x):
    """1 / x elementwise, for float tensors only (NumPy's integer reciprocal truncates)."""
    return apply("reciprocal", x)


def add(a, b): return apply("add", a, b)
def subtract(a, b): return apply("sub", a, b)
def multiply(a, b): return apply("mul", a, b)
def divide(a, b): return apply("div", a, b)


def power(a, b):
    """a ** b elementwise. Integers to negative constant integer powers are refused, as NumPy refuses
    them; a symbolic integer exponent is not checked at run time: a negative one gives Numba's integer
    power (1 for a base of 1, -1 or 1 for -1, else 0), where NumPy would raise."""
    a, b = _tensors("pow", [a, b])
    if a.dtype in INT_DTYPES and b.dtype in INT_DTYPES and b.op == "constant" and np.any(b.attrs["value"] < 0):
        _fail(DTypeError, "pow", [a, b], "Integers to negative integer powers are not allowed")
    return apply("pow", a, b)


def maximum(a, b):
    """Elementwise max; the gradient goes to the larger operand, half to each at a tie."""
    return apply("maximum", a, b)


def minimum(a, b):
    """Elementwise min; the gradient goes to the smaller operand, half to each at a tie."""
    return apply("minimum", a, b)


def less(a, b): return apply("lt", a, b)
def less_equal(a, b): return apply("le", a, b)
def greater(a, b): return apply("gt", a, b)
def greater_equal(a, b): return apply("ge", a, b)
def equal(a, b): return apply("eq", a, b)
def not_equal(a, b): return apply("ne", a, b)


def where(cond, a, b):
    """`a` where `cond` else `b`; the gradient flows to the chosen side."""
    cond, a, b = _tensors("where", [cond, a, b])
    return apply("where", cond, a, b)


def clip(x, lo, hi):
    """`min(max(x, lo), hi)`; the gradient goes to x inside [lo, hi], ends included, else to the bound that won."""
    x, lo, hi = _tensors("clip", [x, lo, hi])
    return apply("clip", x, lo, hi)


def cast(x, dtype):
    """x converted to `dtype`; float to float casts pass the gradient, casts to int or bool don't."""
    return apply("cast", x, dtype=_dtype(dtype, "cast", [x]))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _axis_list(axis, x, op):
    """The one validator of axis arguments: an int or a tuple/list of ints, each within x's rank
    (negative ones count from the end) -> a list of non-negative axes, in the order given."""
    axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    for a in axes:
        if not _is_int(a):
            within = f" in {axis!r}" if a is not axis else ""
            _fail(ShapeError, op, [x], f"axis must be an int or a tuple of ints, got {type(a).__name__} {a!r}{within}")
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            _fail(ShapeError, op, [x], f"axis {a} is out of range for a rank-{x.ndim} tensor (axis={axis!r})")
    return [int(a) % x.ndim for a in axes]


def _axes(axis, x, op):
    """None -> all axes; an int or a tuple -> a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(x.ndim))
    normal = _axis_list(axis, x, op)
    if len(set(normal)) != len(normal):
        _fail(ShapeError, op, [x], f"repeated axis in {axis}")
    return tuple(sorted(normal))


def _flag(value, op, what, operands):
    """A boolean argument: True/False (NumPy's bool, 0 and 1 too); a string or None is a mistake, not a truth value."""
    if value is True or value is False or isinstance(value, np.bool_) or (_is_int(value) and value in (0, 1)):
        return bool(value)
    _fail(ShapeError, op, operands, f"{what} must be True or False, got {type(value).__name__} {value!r}")


def _reduce(op, x, axis, keepdims):
    (x,) = _tensors(op, [x])
    return apply(op, x, axes=_axes(axis, x, op), keepdims=_flag(keepdims, op, "keepdims", [x]))


def sum(x, axis=None, keepdims=False):
    return _reduce("sum", x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    return _reduce("mean", x, axis, keepdims)


def max(x, axis=None, keepdims=False):
    """The maximum; its gradient is split equally among tied maxima."""
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims=False):
    """The minimum; its gradient is split equally among tied minima."""
    return _reduce("min", x, axis, keepdims)


def prod(x, axis=None, keepdims=False):
    """The product (bool and int32 multiply in int64, as in NumPy); its gradient is each element's product
    of the others, exact with zeros (no division)."""
    return _reduce("prod", x, axis, keepdims)


def _arg_extreme(op, x, axis, keepdims):
    """argmax/argmin: axis=None searches the flattened tensor (keepdims then gives all axes size 1)."""
    (x,) = _tensors(op, [x])
    keepdims = _flag(keepdims, op, "keepdims", [x])
    if axis is not None:
        return apply(op, x, axis=_one_axis(axis, x, op), keepdims=keepdims)
    found = apply(op, reshape(x, (-1,)), axis=0, keepdims=False)
    return reshape(found, (1,) * x.ndim) if keepdims else found


def argmax(x, axis=None, keepdims=False):
    """The index of the first maximum along `axis` (a NaN counts as the maximum), int64; no gradient."""
    return _arg_extreme("argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """The index of the first minimum along `axis` (a NaN counts as the minimum), int64; no gradient."""
    return _arg_extreme("argmin", x, axis, keepdims)


def _flat_or_axis(op, x, axis):
    """(x, axis) for ops along one axis: axis=None (or a rank-0 x) flattens x, as NumPy does."""
    (x,) = _tensors(op, [x])
    if axis is None or x.ndim == 0:
        if axis is not None:
            _one_axis(axis, x, op)  # a rank-0 tensor has no axis to name: the error says so
        return reshape(x, (-1,)), 0
    return x, _one_axis(axis, x, op)


def cumsum(x, axis=None):
    """Cumulative sums along `axis` (None: of the flattened tensor); bool and int32 add in int64. Its
    gradient is the reversed cumulative sum of the upstream gradient."""
    x, axis = _flat_or_axis("cumsum", x, axis)
    return apply("cumsum", x, axis=axis, reverse=False)


SORT_KINDS = (None, "stable", "mergesort", "quicksort", "heapsort")


def _sort_axis(op, x, axis, kind):
    """(x, axis) to sort along; every kind sorts stably (NumPy's kind="stable" order, which any kind may give)."""
    if kind not in SORT_KINDS:
        _fail(ShapeError, op, [x], f"kind must be one of {SORT_KINDS}, got {kind!r}")
    return _flat_or_axis(op, x, axis)


def argsort(x, axis=-1, kind=None):
    """The indices that sort x along `axis` (None: flattened), int64: NumPy's kind="stable" order (ties
    keep their order, NaNs go last), whatever `kind`; no gradient."""
    x, axis = _sort_axis("argsort", x, axis, kind)
    return apply("argsort", x, axis=axis)


def sort(x, axis=-1, kind=None):
    """x sorted along `axis` (None: flattened), NaNs last, as take_along_axis(x, argsort(x)): the gradient
    goes back through the permutation to each element's position."""
    x, axis = _sort_axis("sort", x, axis, kind)
    return take_along_axis(x, apply("argsort", x, axis=axis), axis)


def _spread(op, x, axis, ddof, keepdims):
    """var/std's sum of squared deviations from the mean over the axes, and its divisor max(n - ddof, 0)."""
    (x,) = _tensors(op, [x])
    axes, keepdims = _axes(axis, x, op), _flag(keepdims, op, "keepdims", [x])
    if not isinstance(ddof, numbers.Real) or isinstance(ddof, bool):
        _fail(ShapeError, op, [x], f"ddof must be a number, got {type(ddof).__name__} {ddof!r}")
    if x.dtype not in ("float32", "float64"):
        x = cast(x, "float64")  # NumPy's var of integers and bools is float64
    deviation = x - apply("mean", x, axes=axes, keepdims=True)
    squares = apply("sum", deviation * deviation, axes=axes, keepdims=keepdims)
    count = apply("size_of", x, axes=axes)
    return squares, count if ddof == 0 else maximum(count - ddof, 0)


def var(x, axis=None, ddof=0, keepdims=False):
    """The variance: the sum of squared deviations from the mean over `axis`, divided by max(n - ddof, 0)
    (NumPy's rule: inf or NaN when that is 0); ints and bools give float64. Its gradient comes from the
    mean, the squares and the sum it is made of (they fuse into loops)."""
    squares, divisor = _spread("var", x, axis, ddof, keepdims)
    return squares / divisor


def std(x, axis=None, ddof=0, keepdims=False):
    """sqrt(var(x, axis, ddof)). Its gradient where the variance is exactly 0 (all elements equal) is 0,
    not sqrt's infinite slope times a zero deviation (NaN): a subgradient, as abs has at 0."""
    squares, divisor = _spread("std", x, axis, ddof, keepdims)
    variance = squares / divisor
    flat = variance == 0
    return where(flat, 0, sqrt(where(flat, 1, variance)))  # the inner where keeps 1/sqrt(0) out of the gradient


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))), computed stably."""
    return _reduce("logsumexp", x, axis, keepdims)


def softmax(x, axis=-1):
    (x,) = _tensors("softmax", [x])
    return apply("softmax", x, axis=_one_axis(axis, x, "softmax"))


def log_softmax(x, axis=-1):
    (x,) = _tensors("log_softmax", [x])
    return apply("log_softmax", x, axis=_one_axis(axis, x, "log_softmax"))


def _one_axis(axis, x, op):
    (axis,) = _axes(_int(axis, op, "axis", [x]), x, op)
    return axis


def _shape(shape, op, x, allow_minus_one=False):
    """A target shape through the shared shape validator, its errors naming the op and the user's line."""
    try:
        return checked_shape(shape, allow_minus_one=allow_minus_one)
    except ShapeError as error:
        _fail(ShapeError, op, [x], str(error))


def reshape(x, shape):
    """NumPy's reshape; one size may be -1."""
    (x,) = _tensors("reshape", [x])
    return apply("reshape", x, shape=_shape(shape, "reshape", x, allow_minus_one=True))


def transpose(x, axes=None):
    """NumPy's transpose: axes=None reverses them; negative axes count from the end."""
    (x,) = _tensors("transpose", [x])
    if axes is None:
        return apply("transpose", x, axes=tuple(reversed(range(x.ndim))))
    normal = _axis_list(axes, x, "transpose")
    if sorted(normal) != list(range(x.ndim)):
        _fail(ShapeError, "transpose", [x], f"axes {axes} are not a permutation of a rank-{x.ndim} tensor's axes")
    return apply("transpose", x, axes=tuple(normal))


def broadcast_to(x, shape):
    (x,) = _tensors("broadcast_to", [x])
    return apply("broadcast_to", x, shape=_shape(shape, "broadcast_to", x))


def concatenate(tensors, axis=0):
    if not isinstance(tensors, (list, tuple)):
        _fail(ShapeError, "concatenate", [tensors], f"takes a list of tensors, got {type(tensors).__name__}")
    tensors = _tensors("concatenate", list(tensors))
    if not tensors:
        _fail(ShapeError, "concatenate", [], "needs at least one tensor")
    return apply("concatenate", *tensors, axis=_int(axis, "concatenate", "axis", tensors))


def _int(value, op, what, operands):
    if not _is_int(value):
        _fail(ShapeError, op, operands, f"{what} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def take_along_axis(x, indices, axis):
    """NumPy's take_along_axis: pick, e.g., each row's correct-class score by an integer label."""
    return apply("take_along_axis", x, indices, axis=_int(axis, "take_along_axis", "axis", [x, indices]))


def one_hot(labels, depth, dtype="float32"):
    """1 where the last axis equals the label, else 0 (labels outside [0, depth) give a row of zeros)."""
    (labels,) = _tensors("one_hot", [labels])
    depth = _int(depth, "one_hot", "depth", [labels])
    if depth > 0:  # the rule refuses the others; here the output's element count must fit int64
        _shape(labels.shape + (depth,), "one_hot", labels)
    return apply("one_hot", labels, depth=depth, dtype=_dtype(dtype, "one_hot", [labels]))


def getitem(x, index):
    """Basic indexing: ints, slices (any step), None and Ellipsis; the gradient scatters back."""
    from .ops.movement import normalize_index
    (x,) = _tensors("getitem", [x])
    try:
        normal = normalize_index(index, x.type)
    except ShapeError as error:
        _fail(ShapeError, "getitem", [x], str(error))
    return apply("getitem", x, index=normal)


def grad(y, wrt):
    """Symbolic gradients of scalar `y` with respect to each tensor of `wrt` (a list, or one tensor).

    Ties: max splits the gradient equally among tied maxima; maximum/minimum give half to each operand
    at a tie; relu and abs have gradient 0 at 0; clip passes it to x at its ends (x == lo or x == hi).
    """
    single = not isinstance(wrt, (list, tuple))
    targets = [wrt] if single else list(wrt)
    for target in [y] + targets:
        if not isinstance(target, Tensor):
            _fail(GradientError, "grad", [], f"expects graphc tensors, got {type(target).__name__} {target!r}")
    grads = [apply("grad", y, t) for t in targets]
    return grads[0] if single else grads


__all__ = [name for name in dir() if not name.startswith("_")] + ["constant"]

# NumPy's matmul (any rank, batch dimensions broadcast) and dot, written with the contractions
from .contract import dot, matmul  # noqa: E402
