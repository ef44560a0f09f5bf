"""Reductions over a tuple of axes, with keepdims."""
import numpy as np

from .. import functions as F
from ..errors import DTypeError, ShapeError
from ..types import TensorType, is_float
from .registry import OpDef, register


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if k in axes else s for k, s in enumerate(shape))
    return tuple(s for k, s in enumerate(shape) if k not in axes)


def _check_axes(t, axes):
    if any(not 0 <= a < t.ndim for a in axes):
        raise ShapeError(f"axes {axes} out of range for a rank-{t.ndim} tensor")


def _reduce_infer(dtype_rule):
    def infer(types, axes, keepdims):
        (t,) = types
        _check_axes(t, axes)
        return TensorType(reduced_shape(t.shape, axes, keepdims), dtype_rule(t.dtype))
    return infer


def _sum_dtype(dtype):
    if dtype == "bool":
        return "int64"
    return dtype


def _mean_dtype(dtype):
    return dtype if is_float(dtype) else "float64"


def _max_dtype(dtype):
    return dtype


def _kept(g, x, axes, keepdims):
    """The upstream gradient reshaped so it broadcasts against x."""
    return g if keepdims else F.reshape(g, reduced_shape(x.shape, axes, True))


def _sum_vjp(g, out, x, axes, keepdims):
    return (F.broadcast_to(_kept(g, x, axes, keepdims), x.shape),)


def _mean_vjp(g, out, x, axes, keepdims):
    return (F.broadcast_to(_kept(g, x, axes, keepdims), x.shape) / F.apply("size_of", x, axes=axes),)


def _max_vjp(g, out, x, axes, keepdims):
    winners = F.equal(x, _kept(out, x, axes, keepdims))
    share = F.cast(winners, x.dtype)
    count = F.sum(share, axes, keepdims=True)
    return (F.where(winners, _kept(g, x, axes, keepdims) / count, 0),)


def _lowest(dtype):
    return float("-inf") if is_float(dtype) else int(np.iinfo(dtype).min) if dtype != "bool" else False


# how each reduction accumulates: its identity (per dtype), the combine step as kernel text, and whether
# the total is divided by the count. A lone reduction is a fused loop of one step (runtime/codegen.py),
# so fused and unfused results agree
REDUCERS = {
    "sum": (lambda dtype: 0, lambda acc, v: f"{acc} + {v}", False),
    "mean": (lambda dtype: 0, lambda acc, v: f"{acc} + {v}", True),
    "max": (_lowest, lambda acc, v: f"({v} if ({v} > {acc} or {v} != {v}) else {acc})", False),
}


def _mean_numpy(x, axes, keepdims):
    return np.mean(x, axis=axes, keepdims=keepdims)


def _max_numpy(x, axes, keepdims):
    return np.max(x, axis=axes, keepdims=keepdims)


register(OpDef("sum", _reduce_infer(_sum_dtype), lambda x, axes, keepdims: np.sum(x, axis=axes, keepdims=keepdims),
               vjp=_sum_vjp, kind="reduce"))
register(OpDef("mean", _reduce_infer(_mean_dtype), _mean_numpy, vjp=_mean_vjp, kind="reduce"))
register(OpDef("max", _reduce_infer(_max_dtype), _max_numpy, vjp=_max_vjp, kind="reduce"))


def _size_infer(types, axes):
    if not is_float(types[0].dtype):
        raise DTypeError("counts elements of float tensors only")
    return TensorType((), types[0].dtype)


register(OpDef("size_of", _size_infer,
               lambda x, axes: np.asarray(np.prod([x.shape[a] for a in axes]), dtype=x.dtype),
               vjp=lambda g, out, x, axes: (None,), differentiable=False,
               emit=lambda ctx, node: [f"{ctx.var(node)} = np.{ctx.type(node).dtype}({ctx.count(ctx.args(node)[0], ctx.attrs(node)['axes'])})"],
               numpy_exact=True, inline=True))
