"""Reductions over a tuple of axes, with keepdims (sum, mean, max, min, prod: each a fused loop's last
step); ops along one axis with kernels of their own (argmax, argmin, cumsum, argsort, prod_others);
sizes as values (size_of, shape_of)."""
import numpy as np

from .. import functions as F
from ..errors import DTypeError, ShapeError
from ..types import Dim, TensorType, is_float, resolve
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


def _extreme_vjp(g, out, x, axes, keepdims):
    """max and min: the gradient is split equally among the tied winners."""
    winners = F.equal(x, _kept(out, x, axes, keepdims))
    share = F.cast(winners, x.dtype)
    count = F.sum(share, axes, keepdims=True)
    return (F.where(winners, _kept(g, x, axes, keepdims) / count, 0),)


def _prod_vjp(g, out, x, axes, keepdims):
    """g times the product of the other elements of each element's reduction (prod_others), never out / x:
    exact with zeros (at a lone zero, the product of the rest; with two or more zeros, 0 everywhere)."""
    if not axes:
        return (g,)
    rest = [k for k in range(x.ndim) if k not in axes]
    order = tuple(rest) + tuple(axes)
    moved = F.transpose(x, order)  # the reduced axes last, flattened into one: prod_others runs along it
    lanes = F.reshape(moved, tuple(x.shape[k] for k in rest) + (-1,))
    others = F.reshape(F.apply("prod_others", lanes), moved.shape)
    return (_kept(g, x, axes, keepdims) * F.transpose(others, tuple(int(k) for k in np.argsort(order))),)


def _lowest(dtype):
    return float("-inf") if is_float(dtype) else int(np.iinfo(dtype).min) if dtype != "bool" else False


def _highest(dtype):
    return float("inf") if is_float(dtype) else int(np.iinfo(dtype).max) if dtype != "bool" else True


def _prod_dtype(dtype):
    """NumPy multiplies bool and int32 in int64."""
    return "int64" if dtype in ("bool", "int32") else dtype


# how each reduction accumulates: its identity (per dtype), the combine step as kernel text, and whether
# the total is divided by the count. A lone reduction is a fused loop of one step (runtime/codegen.py),
# so fused and unfused results agree
REDUCERS = {
    "sum": (lambda dtype: 0, lambda acc, v: f"{acc} + {v}", False),
    "mean": (lambda dtype: 0, lambda acc, v: f"{acc} + {v}", True),
    "max": (_lowest, lambda acc, v: f"({v} if ({v} > {acc} or {v} != {v}) else {acc})", False),
    "min": (_highest, lambda acc, v: f"({v} if ({v} < {acc} or {v} != {v}) else {acc})", False),
    "prod": (lambda dtype: 1, lambda acc, v: f"{acc} * {v}", False),
}


def _mean_numpy(x, axes, keepdims):
    return np.mean(x, axis=axes, keepdims=keepdims)


def _max_numpy(x, axes, keepdims):
    return np.max(x, axis=axes, keepdims=keepdims)


register(OpDef("sum", _reduce_infer(_sum_dtype), lambda x, axes, keepdims: np.sum(x, axis=axes, keepdims=keepdims),
               vjp=_sum_vjp, kind="reduce"))
register(OpDef("mean", _reduce_infer(_mean_dtype), _mean_numpy, vjp=_mean_vjp, kind="reduce"))
register(OpDef("max", _reduce_infer(_max_dtype), _max_numpy, vjp=_extreme_vjp, kind="reduce"))
register(OpDef("min", _reduce_infer(_max_dtype), lambda x, axes, keepdims: np.min(x, axis=axes, keepdims=keepdims),
               vjp=_extreme_vjp, kind="reduce"))
register(OpDef("prod", _reduce_infer(_prod_dtype),
               lambda x, axes, keepdims: np.prod(x, axis=axes, keepdims=keepdims, dtype=_prod_dtype(x.dtype.name)),
               vjp=_prod_vjp, kind="reduce"))


def _size_infer(types, axes):
    if not is_float(types[0].dtype):
        raise DTypeError("counts elements of float tensors only")
    return TensorType((), types[0].dtype)


register(OpDef("size_of", _size_infer,
               lambda x, axes: np.asarray(np.prod([x.shape[a] for a in axes]), dtype=x.dtype),
               vjp=lambda g, out, x, axes: (None,), differentiable=False,
               emit=lambda ctx, node: [f"{ctx.var(node)} = np.{ctx.type(node).dtype}({ctx.count(ctx.args(node)[0], ctx.attrs(node)['axes'])})"],
               numpy_exact=True, inline=True))


def _lanes(ctx, x, axis):
    """Loops over every position of x but `axis`: (head lines, indent, at(var, j) -> the element at
    position j of the lane, in an array of x's shape, the lane's length)."""
    dims = ctx.dims(x)
    outer = [k for k in range(len(dims)) if k != axis]
    head, ind = ctx.nest([dims[k] for k in outer], [f"i{k}" for k in outer])

    def at(var, j):
        return f"{var}[{', '.join(j if k == axis else f'i{k}' for k in range(len(dims)))}]"
    return head, ind, at, dims[axis]


def _one_axis_infer(types, axis):
    (t,) = types
    if t.ndim == 0 or not 0 <= axis < t.ndim:
        raise ShapeError(f"axis {axis} is out of range for a rank-{t.ndim} tensor")
    return t


# prod_others(x): each element's product of the others along the last axis, by prefix and suffix
# products (no division: exact with zeros); prod's gradient rule
def _prod_others_infer(types):
    (t,) = types
    if not is_float(t.dtype):
        raise DTypeError("needs a float tensor")
    return _one_axis_infer(types, t.ndim - 1)


def _prod_others_numpy(x):
    if x.shape[-1] == 0:
        return x.copy()
    ones = np.ones(x.shape[:-1] + (1,), x.dtype)
    before = np.cumprod(np.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)
    after = np.flip(np.cumprod(np.concatenate([ones, np.flip(x, -1)[..., :-1]], axis=-1), axis=-1), -1)
    return before * after


def _prod_others_vjp(g, out, x):
    """d others_i / d x_j (i != j) is the product of all but x_i and x_j: prod_others of n copies of x, copy
    j with x_j set to 1, so this rule too is exact with zeros (and its own gradient is the same rule again)."""
    index = F.cumsum(F.broadcast_to(1, (x.shape[-1],)))
    diagonal = F.equal(index[:, None], index[None, :])
    pairs = F.apply("prod_others", F.where(diagonal, 1, x[..., None, :]))  # [..., j, i]: all but x_i, x_j
    return (F.sum(F.where(diagonal, 0, g[..., None, :] * pairs), axis=-1),)


def _emit_prod_others(ctx, node):
    (x,) = ctx.args(node)
    head, ind, at, n = _lanes(ctx, x, ctx.type(x).ndim - 1)
    xv, out, one = ctx.var(x), ctx.var(node), ctx.const(1, ctx.type(node).dtype)
    body = [f"acc = {one}", f"for j in range({n}):", f"    {at(out, 'j')} = acc", f"    acc = acc * {at(xv, 'j')}",
            f"acc = {one}", f"for j in range({n} - 1, -1, -1):", f"    {at(out, 'j')} = {at(out, 'j')} * acc",
            f"    acc = acc * {at(xv, 'j')}"]
    return [f"{out} = {ctx.empty(node)}"] + head + [ind + line for line in body]


register(OpDef("prod_others", _prod_others_infer, _prod_others_numpy, vjp=_prod_others_vjp, emit=_emit_prod_others,
               fresh=True, cost=4, numpy_exact=True))


# argmax, argmin: NumPy's first occurrence of the extreme (a NaN counts as the extreme); int64, no gradient
def _arg_infer(types, axis, keepdims):
    t = _one_axis_infer(types, axis)
    if t.shape[axis] == 0 and not isinstance(resolve(t.shape[axis]), Dim):
        raise ShapeError(f"axis {axis} is empty: there is no extreme to find")
    return TensorType(reduced_shape(t.shape, (axis,), keepdims), "int64")


def _emit_arg(better):
    def emit(ctx, node):
        (x,) = ctx.args(node)
        axis, keepdims = ctx.attrs(node)["axis"], ctx.attrs(node)["keepdims"]
        head, ind, at, n = _lanes(ctx, x, axis)
        kept = [("0" if keepdims else None) if k == axis else f"i{k}" for k in range(ctx.type(x).ndim)]
        kept = [k for k in kept if k is not None]
        out, xv = ctx.var(node), ctx.var(x)
        target = f"{out}[{', '.join(kept)}]" if kept else out
        body = [f"best = {at(xv, '0')}", "k = 0", f"for j in range(1, {n}):", f"    v = {at(xv, 'j')}",
                f"    if {better('v', 'best')} or (v != v and best == best):", "        best = v", "        k = j",
                f"{target} = k"]
        empty = [] if n.isdigit() else ctx.index_error(node, "", f"{n} == 0",
                                                       f"attempt to get {ctx.graph.op(node)} of an empty sequence")
        return empty + ([f"{out} = {ctx.empty(node)}"] if kept else []) + head + [ind + line for line in body]
    return emit


def _arg_numpy(numpy):
    return lambda x, axis, keepdims: numpy(x, axis=axis, keepdims=keepdims)


register(OpDef("argmax", _arg_infer, _arg_numpy(np.argmax), differentiable=False,
               emit=_emit_arg(lambda v, best: f"{v} > {best}"), fresh=True, checks=True, numpy_exact=True))
register(OpDef("argmin", _arg_infer, _arg_numpy(np.argmin), differentiable=False,
               emit=_emit_arg(lambda v, best: f"{v} < {best}"), fresh=True, checks=True, numpy_exact=True))


# cumsum along one axis (reverse: from the end, its gradient); NumPy adds bool and int32 in int64
def _cumsum_infer(types, axis, reverse):
    t = _one_axis_infer(types, axis)
    return TensorType(t.shape, _prod_dtype(t.dtype))


def _cumsum_numpy(x, axis, reverse):
    dtype = _prod_dtype(x.dtype.name)
    return np.flip(np.cumsum(np.flip(x, axis), axis, dtype=dtype), axis) if reverse else np.cumsum(x, axis, dtype=dtype)


def _emit_cumsum(ctx, node):
    (x,) = ctx.args(node)
    axis, reverse = ctx.attrs(node)["axis"], ctx.attrs(node)["reverse"]
    head, ind, at, n = _lanes(ctx, x, axis)
    out, xv = ctx.var(node), ctx.var(x)
    span = f"range({n} - 1, -1, -1)" if reverse else f"range({n})"
    body = [f"acc = {ctx.const(0, ctx.type(node).dtype)}", f"for j in {span}:", f"    acc = acc + {at(xv, 'j')}",
            f"    {at(out, 'j')} = acc"]  # in order, in the dtype: NumPy's sums, bit for bit
    return [f"{out} = {ctx.empty(node)}"] + head + [ind + line for line in body]


register(OpDef("cumsum", _cumsum_infer, _cumsum_numpy,
               vjp=lambda g, out, x, axis, reverse: (F.apply("cumsum", g, axis=axis, reverse=not reverse),),
               emit=_emit_cumsum, fresh=True, numpy_exact=True))


# argsort along one axis: stable (NumPy's kind="stable"; NaNs last); int64, no gradient (sort is
# take_along_axis(x, argsort(x)), whose gradient routes g back through the permutation)
def _argsort_infer(types, axis):
    t = _one_axis_infer(types, axis)
    return TensorType(t.shape, "int64")


def _emit_argsort(ctx, node):
    """Per lane, a bottom-up merge sort of the positions (stable: a tie takes the left run's first): plain
    loops, which Numba compiles in a fraction of the ~2 s its np.argsort(kind="mergesort") takes per dtype."""
    (x,) = ctx.args(node)
    head, ind, at, n = _lanes(ctx, x, ctx.attrs(node)["axis"])
    out, xv = ctx.var(node), ctx.var(x)
    right, left = at(xv, "order[b]"), at(xv, "order[a]")
    right_first = f"{right} < {left} or ({left} != {left} and {right} == {right})"  # NaNs go last
    body = [f"for j in range({n}):", "    order[j] = j",
            "width = 1",
            f"while width < {n}:",
            "    start = 0",
            f"    while start < {n}:",
            f"        mid, end = min(start + width, {n}), min(start + 2 * width, {n})",
            "        a, b = start, mid",
            "        for j in range(start, end):",  # the right run's element goes first only when strictly before
            f"            if a < mid and (b >= end or not ({right_first})):",
            "                spare[j] = order[a]",
            "                a += 1",
            "            else:",
            "                spare[j] = order[b]",
            "                b += 1",
            "        start = end",
            "    order, spare = spare, order",
            "    width *= 2",
            f"for j in range({n}):", f"    {at(out, 'j')} = order[j]"]
    return ([f"{out} = {ctx.empty(node)}", f"order = empty(({n},), np.int64)", f"spare = empty(({n},), np.int64)"]
            + head + [ind + line for line in body])


register(OpDef("argsort", _argsort_infer, lambda x, axis: np.argsort(x, axis=axis, kind="stable"),
               differentiable=False, emit=_emit_argsort, fresh=True, numpy_exact=True))


# shape_of: a call-time size (x.shape[0], or a size derived from sizes) as a rank-0 int64 value, read
# from the arguments' shapes when the function runs
def _size_origin(size):
    """A size by where it is read from ("x.shape[0]", "x.shape[0]*2"), not by the dump's names: the
    kernel's comments print it too, and they have no name for a size of no input."""
    size = resolve(size)
    if not isinstance(size, Dim):
        return str(size)
    return size.formula.format(*map(_size_origin, size.parts)) if size.formula else size.origin


def _emit_shape_of(ctx, node):
    try:
        size = ctx.size(ctx.attrs(node)["size"])
    except AssertionError:  # codegen's "not known from any argument": no input passed to gc.compile has it
        raise ShapeError(f"shape_of at {ctx.graph[node].get('loc')}: {_size_origin(ctx.attrs(node)['size'])} is a "
                         "size of an input not passed to gc.compile") from None
    return [f"{ctx.var(node)} = np.int64({size})"]


register(OpDef("shape_of", lambda types, size: TensorType((), "int64"), lambda size: np.int64(size),
               differentiable=False, emit=_emit_shape_of,
               format_attrs=lambda attrs, dim_text: _size_origin(attrs["size"]), numpy_exact=True,
               inline=True))
