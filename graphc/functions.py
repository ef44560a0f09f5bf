"""The user-facing functions, with NumPy's signatures. Each normalizes its arguments and calls `apply`."""
import builtins
import numbers

from .errors import GraphcError, ShapeError
from .tensor import Tensor, apply, as_tensors, constant, input_tensor
from .types import Dim, canonical_dtype, resolve


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


exp, log, sqrt, tanh, sigmoid, relu, sign, softplus = map(_unary, ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sign", "softplus"])
negative = _unary("neg")


def abs(x):
    return apply("abs", x)


def add(a, b): return apply("add", a, b)
def subtract(a, b): return apply("sub", a, b)
def multiply(a, b): return apply("mul", a, b)
def divide(a, b): return apply("div", a, b)
def power(a, b): return apply("pow", a, b)
def maximum(a, b): return apply("maximum", a, b)
def minimum(a, b): return apply("minimum", a, b)
def less(a, b): return apply("lt", a, b)
def less_equal(a, b): return apply("le", a, b)
def greater(a, b): return apply("gt", a, b)
def greater_equal(a, b): return apply("ge", a, b)
def equal(a, b): return apply("eq", a, b)
def not_equal(a, b): return apply("ne", a, b)


def where(cond, a, b):
    """`a` where `cond` else `b`; the gradient flows to the chosen side."""
    cond, a, b = as_tensors([cond, a, b])
    return apply("where", cond, a, b)


def clip(x, lo, hi):
    """`min(max(x, lo), hi)`; the gradient passes inside [lo, hi], ends included."""
    x, lo, hi = as_tensors([x, lo, hi])
    return apply("clip", x, lo, hi)


def cast(x, dtype):
    return apply("cast", x, dtype=canonical_dtype(dtype))


def matmul(a, b):
    """NumPy's matmul for rank-1 and rank-2 operands."""
    return apply("matmul", a, b)


dot = matmul


def normalize_axes(axis, ndim, op):
    """None -> all axes; an int or a tuple -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    normal = []
    for a in axes:
        if not isinstance(a, numbers.Integral) or not -ndim <= a < builtins.max(ndim, 1) or (ndim == 0):
            raise ShapeError(f"{op}: axis {axis} is out of range for a rank-{ndim} tensor")
        normal.append(int(a) % ndim)
    if len(set(normal)) != len(normal):
        raise ShapeError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(normal))


def _reduce(op, x, axis, keepdims):
    (x,) = as_tensors([x])
    try:
        axes = normalize_axes(axis, x.ndim, op) if x.ndim else ()
    except ShapeError as error:
        from .errors import describe
        from .loc import user_location
        raise ShapeError(describe(op, [x.type], user_location(), str(error).split(": ", 1)[1])) from None
    return apply(op, x, axes=axes, keepdims=bool(keepdims))


def sum(x, axis=None, keepdims=False):
    return _reduce("sum", x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    return _reduce("mean", x, axis, keepdims)


def max(x, axis=None, keepdims=False):
    """The maximum; its gradient is split equally among tied maxima."""
    return _reduce("max", x, axis, keepdims)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))), computed stably."""
    return _reduce("logsumexp", x, axis, keepdims)


def softmax(x, axis=-1):
    (x,) = as_tensors([x])
    return apply("softmax", x, axis=_one_axis(axis, x, "softmax"))


def log_softmax(x, axis=-1):
    (x,) = as_tensors([x])
    return apply("log_softmax", x, axis=_one_axis(axis, x, "log_softmax"))


def _one_axis(axis, x, op):
    if not isinstance(axis, numbers.Integral):
        raise ShapeError(f"{op}: axis must be an int, got {axis!r}")
    return int(axis) % x.ndim if x.ndim and -x.ndim <= axis < x.ndim else _axis_error(op, axis, x)


def _axis_error(op, axis, x):
    from .errors import describe
    from .loc import user_location
    raise ShapeError(describe(op, [x.type], user_location(), f"axis {axis} is out of range for a rank-{x.ndim} tensor"))


def reshape(x, shape):
    """NumPy's reshape; one size may be -1."""
    (x,) = as_tensors([x])
    shape = (shape,) if isinstance(shape, (numbers.Integral, Dim)) else tuple(shape)
    return apply("reshape", x, shape=tuple(resolve(s) if isinstance(s, Dim) else int(s) for s in shape))


def transpose(x, axes=None):
    (x,) = as_tensors([x])
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) % builtins.max(x.ndim, 1) for a in axes)
    return apply("transpose", x, axes=axes)


def broadcast_to(x, shape):
    (x,) = as_tensors([x])
    return apply("broadcast_to", x, shape=tuple(resolve(s) if isinstance(s, Dim) else int(s) for s in shape))


def concatenate(tensors, axis=0):
    tensors = as_tensors(list(tensors))
    if not tensors:
        raise GraphcError("concatenate needs at least one tensor")
    return apply("concatenate", *tensors, axis=int(axis))


def take_along_axis(x, indices, axis):
    """NumPy's take_along_axis: pick, e.g., each row's correct-class score by an integer label."""
    return apply("take_along_axis", x, indices, axis=int(axis))


def one_hot(labels, depth, dtype="float32"):
    return apply("one_hot", labels, depth=int(depth), dtype=canonical_dtype(dtype))


def getitem(x, index):
    from .ops.movement import normalize_index
    return apply("getitem", x, index=normalize_index(index, x.type))


def grad(y, wrt):
    """Symbolic gradients of scalar `y` with respect to each tensor of `wrt` (a list, or one tensor)."""
    single = isinstance(wrt, Tensor)
    targets = [wrt] if single else list(wrt)
    grads = [apply("grad", y, t) for t in targets]
    return grads[0] if single else grads


__all__ = [name for name in dir() if not name.startswith("_")] + ["constant"]
