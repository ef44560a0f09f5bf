"""Gates: groups of ops with a simple local gradient (softmax, log_softmax, logsumexp), and `grad`."""
import numpy as np

from .. import functions as F
from ..errors import DTypeError, GradientError, ShapeError
from ..types import TensorType, is_float
from .reduce import reduced_shape
from .registry import OpDef, register


def _float_same(types, axis):
    (t,) = types
    if not is_float(t.dtype):
        raise DTypeError("needs a float tensor")
    if not 0 <= axis < t.ndim:
        raise ShapeError(f"axis {axis} is out of range for a rank-{t.ndim} tensor")
    return t


def _softmax_numpy(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_numpy(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _logsumexp_numpy(x, axes, keepdims):
    if x.size == 0 or not axes:
        return x.copy() if not axes else np.log(np.sum(np.exp(x), axis=axes, keepdims=keepdims))
    top = np.max(x, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - top), axis=axes, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axes)


def _row_loops(ctx, x, axis):
    """Loops over every position but `axis`; returns (head lines, indent, index builder)."""
    dims = ctx.dims(x)
    outer = [k for k in range(len(dims)) if k != axis]
    names = [f"i{k}" for k in outer]
    head, ind = ctx.nest([dims[k] for k in outer], names)

    def at(var, j):
        idx = [f"i{k}" if k != axis else j for k in range(len(dims))]
        return f"{var}[{', '.join(idx)}]"
    return head, ind, at, dims[axis]


def _emit_normalized(kind):
    """softmax / log_softmax along one axis: max, then sum of shifted exps, then write."""
    def emit(ctx, node):
        (x,) = ctx.args(node)
        axis, dtype = ctx.attrs(node)["axis"], ctx.type(node).dtype
        out, xv = ctx.var(node), ctx.var(x)
        head, ind, at, n = _row_loops(ctx, x, axis)
        zero, lowest = ctx.const(0, dtype), ctx.const(float("-inf"), dtype)
        body = [f"top = {lowest}",
                f"for j in range({n}):",
                f"    top = max(top, {at(xv, 'j')})",
                f"total = {zero}",
                f"for j in range({n}):",
                f"    total += exp({at(xv, 'j')} - top)"]
        if kind == "softmax":
            body += [f"for j in range({n}):", f"    {at(out, 'j')} = exp({at(xv, 'j')} - top) / total"]
        else:
            body += ["shift = top + log(total)", f"for j in range({n}):", f"    {at(out, 'j')} = {at(xv, 'j')} - shift"]
        return [f"{out} = {ctx.empty(node)}"] + head + [ind + line for line in body]
    return emit


def _emit_logsumexp(ctx, node):
    (x,) = ctx.args(node)
    axes, keepdims = ctx.attrs(node)["axes"], ctx.attrs(node)["keepdims"]
    if len(axes) != 1 and ctx.type(x).ndim != len(axes):
        return _emit_logsumexp_axes(ctx, node)
    dtype, xv, out = ctx.type(node).dtype, ctx.var(x), ctx.var(node)
    if ctx.type(x).ndim == 0:
        return [f"{out} = {xv}"]
    if len(axes) == ctx.type(x).ndim and ctx.type(x).ndim > 1:
        flat = f"{ctx.contiguous(x)}.reshape(-1)"
        head, ind, at, n = [], "", (lambda var, j: f"{flat}[{j}]"), f"{xv}.size"
    else:
        head, ind, at, n = _row_loops(ctx, x, axes[0])
    zero, lowest = ctx.const(0, dtype), ctx.const(float("-inf"), dtype)
    kept = [("0" if keepdims else None) if k in axes else f"i{k}" for k in range(ctx.type(x).ndim)]
    target = out if ctx.type(node).ndim == 0 else f"{out}[{', '.join(k for k in kept if k is not None)}]"
    body = [f"top = {lowest}", f"for j in range({n}):", f"    top = max(top, {at(xv, 'j')})",
            f"if top == {lowest} or top != top or top == -{lowest}:",  # empty, NaN or infinite: no shift
            f"    top = {zero}",
            f"total = {zero}", f"for j in range({n}):", f"    total += exp({at(xv, 'j')} - top)",
            f"{target} = log(total) + top"]
    start = [] if ctx.type(node).ndim == 0 else [f"{out} = {ctx.empty(node)}"]
    return start + head + [ind + line for line in body]


def _emit_logsumexp_axes(ctx, node):
    """Over several (not all) axes: a running max, then a sum of shifted exps, in keepdims-shaped buffers."""
    (x,) = ctx.args(node)
    axes, dtype, xv, out = ctx.attrs(node)["axes"], ctx.type(node).dtype, ctx.var(x), ctx.var(node)
    rank = ctx.type(x).ndim
    idx = [f"i{k}" for k in range(rank)]
    kept = ", ".join("0" if k in axes else idx[k] for k in range(rank))
    kept_shape = ", ".join("1" if k in axes else d for k, d in enumerate(ctx.dims(x)))
    head, ind = ctx.nest(ctx.dims(x), idx)
    item = f"{xv}[{', '.join(idx)}]"
    zero, lowest = ctx.const(0, dtype), ctx.const(float("-inf"), dtype)
    return ([f"top = empty(({kept_shape},), np.{dtype})", f"top[:] = {lowest}"] + head
            + [f"{ind}top[{kept}] = max(top[{kept}], {item})",
               "top_flat = top.reshape(-1)",
               "for j in range(top_flat.size):",  # empty, NaN or infinite: no shift
               f"    if top_flat[j] == {lowest} or top_flat[j] != top_flat[j] or top_flat[j] == -{lowest}:",
               f"        top_flat[j] = {zero}",
               f"total = empty(({kept_shape},), np.{dtype})", f"total[:] = {zero}"] + head
            + [f"{ind}total[{kept}] += exp({item} - top[{kept}])",
               f"{out} = (np.log(total) + top).reshape({ctx.shape(node)})"])


def _logsumexp_infer(types, axes, keepdims):
    (t,) = types
    if not is_float(t.dtype):
        raise DTypeError("needs a float tensor")
    return TensorType(reduced_shape(t.shape, axes, keepdims), t.dtype)


def _logsumexp_vjp(g, out, x, axes, keepdims):
    keep = reduced_shape(x.shape, axes, True)
    g, out = (g, out) if keepdims else (F.reshape(g, keep), F.reshape(out, keep))
    return (g * F.exp(x - out),)


register(OpDef("softmax", _float_same, _softmax_numpy,
               vjp=lambda g, out, x, axis: (out * (g - F.sum(g * out, axis, keepdims=True)),),
               emit=_emit_normalized("softmax"), fresh=True, receives=True))
register(OpDef("log_softmax", _float_same, _log_softmax_numpy,
               vjp=lambda g, out, x, axis: (g - F.exp(out) * F.sum(g, axis, keepdims=True),),
               emit=_emit_normalized("log_softmax"), fresh=True, receives=True))
register(OpDef("logsumexp", _logsumexp_infer, _logsumexp_numpy, vjp=_logsumexp_vjp, kind="reduce", emit=_emit_logsumexp))


def _grad_infer(types):
    y, x = types
    if y.ndim != 0 or not is_float(y.dtype):
        raise GradientError(f"needs a float scalar to differentiate, got {y.text()}; reduce it first (gc.sum, gc.mean)")
    if not is_float(x.dtype):
        raise GradientError(f"no gradient with respect to an {x.dtype} tensor: only float tensors have gradients")
    return x


def _no_numpy(*args, **attrs):
    raise GradientError("grad nodes are expanded by the autodiff pass before evaluation")


# A symbolic gradient, expanded by the autodiff pass (innermost first, so grad of grad works).
register(OpDef("grad", _grad_infer, _no_numpy, vjp=None, differentiable=True,
               emit=lambda ctx, node: _no_numpy()))
