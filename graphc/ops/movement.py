"""Ops that move or pick elements: reshape, transpose, broadcast_to, concatenate, take_along_axis, take
(integer-array indexing), one_hot, basic indexing."""
import numbers

import numpy as np

from .. import functions as F
from ..errors import DTypeError, ShapeError
from ..types import Dim, TensorType, broadcast_shapes, resolve, same_shape, unify
from .registry import OpDef, register


def _factors(sizes):
    """(call-time Dims sorted by id, static product) of `sizes`, product Dims expanded into their factors."""
    dims, static = [], 1
    for size in map(resolve, sizes):
        if isinstance(size, Dim) and size.origin == "product":
            inner, factor = _factors(size.parts)
            dims, static = dims + inner, static * factor * size.factor
        elif isinstance(size, Dim):
            dims.append(size)
        else:
            static *= size
    return sorted(dims, key=lambda d: d.id), static


def _product(sizes):
    """A size equal to the product of `sizes` (a derived Dim when any is known only at call time)."""
    dims, static = _factors(sizes)
    return _combined("product", "*", 1, dims, static, factor=static)


def _combined(origin, symbol, neutral, dims, static, **kwargs):
    """dims[0] <symbol> dims[1] ... <symbol> static as a size: `static` alone, one Dim when `static` is
    the operation's neutral element, else a derived Dim computed at call time."""
    if not dims:
        return static
    if len(dims) == 1 and static == neutral:
        return dims[0]
    return Dim(origin, symbol.join(["{%d}" % k for k in range(len(dims))] + [str(static)]), dims, **kwargs)


# reshape
def _reshape_infer(types, shape):
    (t,) = types
    shape = [resolve(s) for s in shape]
    if sum(1 for s in shape if s == -1 and not isinstance(s, Dim)) > 1:
        raise ShapeError(f"reshape to {tuple(shape)}: only one size may be -1")
    known = [s for s in shape if isinstance(s, Dim) or s != -1]
    if any(not isinstance(s, Dim) and s < 0 for s in known):
        raise ShapeError(f"reshape to {tuple(shape)}: sizes must be non-negative or -1")
    have, want = _factors(t.shape), _factors(known)
    if -1 in [s for s in shape if not isinstance(s, Dim)]:
        missing = _divide(have, want, t, shape)
        shape = [missing if (not isinstance(s, Dim) and s == -1) else s for s in shape]
    elif not _same_size(have, want):
        raise ShapeError(f"can't reshape {t.text()} ({_size_text(have)} elements) to {tuple(_text(s) for s in shape)}")
    return TensorType(tuple(shape), t.dtype)


def _same_size(a, b):
    return [d.id for d in a[0]] == [d.id for d in b[0]] and a[1] == b[1]


def _divide(have, want, t, shape):
    """The -1 size: what `have` holds beyond `want` (call-time sizes matched one for one)."""
    extra = list(have[0])
    for dim in want[0]:
        match = next((k for k, d in enumerate(extra) if d is dim), None)
        if match is None:
            extra = None
            break
        del extra[match]
    if extra is None or want[1] == 0 or have[1] % want[1]:
        raise ShapeError(f"can't reshape {t.text()} ({_size_text(have)} elements) to {tuple(_text(s) for s in shape)}: "
                         "the -1 size is not a whole multiple of the other sizes")
    return _product(extra + [have[1] // want[1]])


def _text(size):
    return "?" if isinstance(size, Dim) else size


def _size_text(split):
    return "*".join(["?"] * len(split[0]) + [str(split[1])])


def _emit_reshape(ctx, node):
    (x,) = ctx.args(node)
    out = ctx.var(node)
    if ctx.type(node).ndim == 0:
        return [f"{out} = {ctx.var(x)}" if ctx.type(x).ndim == 0 else f"{out} = {ctx.contiguous(x)}.reshape(1)[0]"]
    if ctx.type(x).ndim == 0:
        return ctx.full(node, ctx.var(x))
    return [f"{out} = {ctx.contiguous(x)}.reshape({ctx.shape(node)})"]


register(OpDef("reshape", _reshape_infer, lambda x, shape: np.reshape(x, shape),
               vjp=lambda g, out, x, shape: (F.reshape(g, x.shape),), emit=_emit_reshape, view=True, numpy_exact=True))


# transpose
def _transpose_infer(types, axes):
    (t,) = types
    if sorted(axes) != list(range(t.ndim)):
        raise ShapeError(f"axes {axes} are not a permutation of a rank-{t.ndim} tensor's axes")
    return TensorType(tuple(t.shape[a] for a in axes), t.dtype)


def _emit_transpose(ctx, node):
    (x,) = ctx.args(node)
    axes = ctx.attrs(node)["axes"]
    if axes == tuple(range(len(axes))):
        return [f"{ctx.var(node)} = {ctx.var(x)}"]
    if len(axes) == 2:
        ctx.set_layout(node, "F" if ctx.layout(x) == "C" else "A")
        return [f"{ctx.var(node)} = {ctx.var(x)}.T"]  # a view: BLAS takes it without a copy
    if ctx.python:  # a Python driver's line: NumPy's copy
        return [f"{ctx.var(node)} = contiguous({ctx.var(x)}.transpose({axes}))"]
    # a loop nest copying it: Numba (0.68) takes ~14 s to compile array.transpose(axes), a loop nest ~0.1 s
    out, names = ctx.var(node), [f"i{k}" for k in range(len(axes))]
    head, ind = ctx.nest(ctx.dims(node), names)
    source = [names[axes.index(k)] for k in range(len(axes))]
    return ([f"{out} = empty({ctx.shape(node)}, np.{ctx.type(node).dtype})"] + head
            + [f"{ind}{out}[{', '.join(names)}] = {ctx.var(x)}[{', '.join(source)}]"])


register(OpDef("transpose", _transpose_infer, lambda x, axes: np.transpose(x, axes),
               vjp=lambda g, out, x, axes: (F.transpose(g, tuple(np.argsort(axes))),), emit=_emit_transpose,
               view=True, numpy_exact=True))


# broadcast_to
def _broadcast_infer(types, shape):
    (t,) = types
    if len(shape) < t.ndim or broadcast_shapes(t.shape, shape) is None or not same_shape(broadcast_shapes(t.shape, shape), shape):
        raise ShapeError(f"can't broadcast {t.text()} to {tuple(_text(s) for s in shape)}")
    return TensorType(shape, t.dtype)


def _emit_broadcast(ctx, node):
    (x,) = ctx.args(node)
    out = ctx.var(node)
    if ctx.type(node).ndim == 0:  # rank-0 values are kernel scalars
        return [f"{out} = {ctx.var(x)}"]
    idx = [f"i{k}" for k in range(ctx.type(node).ndim)]
    head, ind = ctx.nest(ctx.dims(node), idx)
    return [f"{out} = {ctx.empty(node)}"] + head + [f"{ind}{out}[{', '.join(idx)}] = {ctx.at(x, node, idx)}"]


def _concrete(shape):
    return tuple(int(s) for s in shape)


register(OpDef("broadcast_to", _broadcast_infer, lambda x, shape: np.broadcast_to(x, _concrete(shape)).copy(),
               vjp=lambda g, out, x, shape: (g,), emit=_emit_broadcast, fresh=True, receives=True, numpy_exact=True,
               scalar=lambda s: s.args[0]))  # in a fused loop, a broadcasting load: the element is the operand's


# concatenate
def _concatenate_infer(types, axis):
    first = types[0]
    if first.ndim == 0 or not -first.ndim <= axis < first.ndim:
        raise ShapeError(f"axis {axis} is out of range for rank-{first.ndim} tensors")
    axis %= first.ndim
    for t in types[1:]:
        if t.ndim != first.ndim or any(unify(a, b) is None for k, (a, b) in enumerate(zip(first.shape, t.shape)) if k != axis):
            raise ShapeError(f"sizes differ off axis {axis}")
    if len({t.dtype for t in types}) > 1:
        raise DTypeError("all operands need one dtype")
    size = _size_sum([t.shape[axis] for t in types])
    return TensorType(tuple(size if k == axis else s for k, s in enumerate(first.shape)), first.dtype)


def _size_sum(sizes):
    """A size equal to the sum of `sizes` (a derived Dim when any is known only at call time)."""
    sizes = [resolve(s) for s in sizes]
    dims = [s for s in sizes if isinstance(s, Dim)]
    return _combined("sum", "+", 0, dims, sum(s for s in sizes if not isinstance(s, Dim)))


def _concatenate_vjp(g, out, *inputs, axis):
    """Each operand's part of g: a span of its size, starting where the operands before it end."""
    axis %= out.ndim
    grads, before = [], []
    for x in inputs:
        span = ("span", _size_sum(before), x.shape[axis])
        index = (("slice", None, None, None),) * axis + (span,) + (("slice", None, None, None),) * (out.ndim - axis - 1)
        grads.append(F.apply("getitem", g, index=index))
        before.append(x.shape[axis])
    return tuple(grads)


def _emit_concatenate(ctx, node):
    """A loop nest per operand, copying it into its span of the result: np.concatenate is a Numba function
    compiled for every tuple of operand types (~1 s each), a loop nest compiles in a fraction of that."""
    axis, out = ctx.attrs(node)["axis"] % ctx.type(node).ndim, ctx.var(node)
    lines, before = [f"{out} = empty({ctx.shape(node)}, np.{ctx.type(node).dtype})"], []
    for part in ctx.args(node):
        names = [f"i{k}" for k in range(ctx.type(part).ndim)]
        head, ind = ctx.nest(ctx.dims(part), names)
        target = names[:axis] + [" + ".join(before + [names[axis]])] + names[axis + 1:]
        lines += head + [f"{ind}{out}[{', '.join(target)}] = {ctx.var(part)}[{', '.join(names)}]"]
        before.append(ctx.size(ctx.type(part).shape[axis]))
    return lines


register(OpDef("concatenate", _concatenate_infer, lambda *xs, axis: np.concatenate(xs, axis=axis),
               vjp=_concatenate_vjp, emit=_emit_concatenate, fresh=True, numpy_exact=True))


# take_along_axis and its gradient, scatter_add_along_axis
def _take_infer(types, axis):
    x, idx = types
    if idx.dtype not in ("int32", "int64"):
        raise DTypeError("indices must be int32 or int64")
    if x.ndim != idx.ndim:
        raise ShapeError(f"indices must have the rank of x ({x.ndim}), not {idx.ndim}")
    if not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"axis {axis} is out of range for a rank-{x.ndim} tensor")
    axis %= x.ndim
    shape = []
    for k, (a, b) in enumerate(zip(x.shape, idx.shape)):
        if k == axis:
            shape.append(b)
            continue
        size = broadcast_shapes((a,), (b,))
        if size is None:
            raise ShapeError(f"sizes of x and indices don't broadcast on axis {k}")
        shape.append(size[0])
    return TensorType(tuple(shape), x.dtype)


def _checked_index(ctx, node, ind, value, size):
    """Kernel lines reading index `value` into `k`, wrapped like NumPy's negative indices and checked:
    an index out of range raises (Numba wouldn't check, and would read or write past the array)."""
    known = size if size.isdigit() else "known at call time"
    return ([f"{ind}k = {value}", f"{ind}if k < 0:", f"{ind}    k += {size}"]
            + ctx.index_error(node, ind, f"k < 0 or k >= {size}", f"an index is out of range for an axis of size {known}"))


def _emit_take(ctx, node):
    x, idx = ctx.args(node)
    axis = ctx.attrs(node)["axis"] % ctx.type(x).ndim
    out = ctx.var(node)
    names = [f"i{k}" for k in range(ctx.type(node).ndim)]
    head, ind = ctx.nest(ctx.dims(node), names)
    pick = [("0" if s == "1" else n) for n, s in zip(names, ctx.dims(x))]
    pick[axis] = "k"
    return ([f"{out} = {ctx.empty(node)}"] + head + _checked_index(ctx, node, ind, ctx.at(idx, node, names), ctx.dims(x)[axis])
            + [f"{ind}{out}[{', '.join(names)}] = {ctx.var(x)}[{', '.join(pick)}]"])


def _take_numpy(x, idx, axis):
    axis %= x.ndim
    shape = list(np.broadcast_shapes(x.shape[:axis] + (1,) + x.shape[axis + 1:], idx.shape[:axis] + (1,) + idx.shape[axis + 1:]))
    x = np.broadcast_to(x, tuple(shape[:axis]) + (x.shape[axis],) + tuple(shape[axis + 1:]))
    idx = np.broadcast_to(idx, tuple(shape[:axis]) + (idx.shape[axis],) + tuple(shape[axis + 1:]))
    return np.take_along_axis(x, idx, axis)


def _take_vjp(g, out, x, idx, axis):
    return (F.apply("scatter_add_along_axis", g, idx, axis=axis % x.ndim, shape=x.shape), None)


register(OpDef("take_along_axis", _take_infer, _take_numpy, vjp=_take_vjp, emit=_emit_take, fresh=True, checks=True,
               receives=True, numpy_exact=True))


def _scatter_infer(types, axis, shape):
    g, idx = types
    if idx.dtype not in ("int32", "int64") or g.ndim != len(shape):
        raise ShapeError("indices must be integers, of the gradient's rank")
    return TensorType(shape, g.dtype)


def _scatter_numpy(g, idx, axis, shape):
    out = np.zeros(_concrete(shape), g.dtype)
    full = np.broadcast_to(idx, g.shape)
    grid = [np.zeros_like(k) if n == 1 else k for k, n in zip(np.indices(g.shape, sparse=True), out.shape)]
    grid[axis] = full  # axes where x had size 1 (broadcast against the indices) gather into position 0
    np.add.at(out, tuple(grid), g)
    return out


def _zeros(ctx, node):
    """Kernel lines making node's output array, filled with zeros."""
    return ctx.full(node, ctx.const(0, ctx.type(node).dtype))


def _emit_scatter(ctx, node):
    g, idx = ctx.args(node)
    axis = ctx.attrs(node)["axis"]
    out = ctx.var(node)
    names = [f"i{k}" for k in range(ctx.type(g).ndim)]
    head, ind = ctx.nest(ctx.dims(g), names)
    target = ["0" if size == "1" else name for name, size in zip(names, ctx.dims(node))]  # x broadcast there
    target[axis] = "k"
    return (_zeros(ctx, node) + head
            + _checked_index(ctx, node, ind, ctx.at(idx, g, names), ctx.dims(node)[axis])
            + [f"{ind}{out}[{', '.join(target)}] += {ctx.var(g)}[{', '.join(names)}]"])


register(OpDef("scatter_add_along_axis", _scatter_infer, _scatter_numpy,
               vjp=lambda gg, out, g, idx, axis, shape: (F.take_along_axis(gg, idx, axis), None), emit=_emit_scatter,
               fresh=True, checks=True))


# take (integer-array indexing along one axis, NumPy's np.take) and its gradient, take_grad
def _take_indices_infer(types, axis):
    x, idx = types
    if idx.dtype not in ("int32", "int64"):
        raise DTypeError(f"indices must be int32 or int64, not {idx.dtype}")
    if not 0 <= axis < x.ndim:
        raise ShapeError(f"axis {axis} is out of range for a rank-{x.ndim} tensor")
    return TensorType(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)


def _gather_lines(ctx, node, x, idx, axis, body):
    """Loops over x's axes before `axis`, then idx's, reading and checking the index `k`, then x's axes
    after it; `body(pre, mid, post)` gives the innermost line(s) from the three groups of loop names."""
    rank = ctx.type(x).ndim
    pre = [f"p{k}" for k in range(axis)]
    mid = [f"j{k}" for k in range(ctx.type(idx).ndim)]
    post = [f"q{k}" for k in range(rank - axis - 1)]
    dims = ctx.dims(x)
    head, ind = ctx.nest(dims[:axis] + ctx.dims(idx), pre + mid)
    index = f"{ctx.var(idx)}[{', '.join(mid)}]" if mid else ctx.var(idx)
    lines = head + _checked_index(ctx, node, ind, index, dims[axis])
    inner, inner_ind = ctx.nest(dims[axis + 1:], post)
    return lines + [ind + line for line in inner] + [ind + inner_ind + line for line in body(pre, mid, post)]


def _emit_take_indices(ctx, node):
    x, idx = ctx.args(node)
    axis, out = ctx.attrs(node)["axis"], ctx.var(node)
    if ctx.type(node).ndim == 0:  # a vector's one element
        return _checked_index(ctx, node, "", ctx.var(idx), ctx.dims(x)[0]) + [f"{out} = {ctx.var(x)}[k]"]

    def body(pre, mid, post):
        return [f"{out}[{', '.join(pre + mid + post)}] = {ctx.var(x)}[{', '.join(pre + ['k'] + post)}]"]
    return [f"{out} = {ctx.empty(node)}"] + _gather_lines(ctx, node, x, idx, axis, body)


register(OpDef("take", _take_indices_infer, lambda x, idx, axis: np.take(x, idx, axis=axis),
               vjp=lambda g, out, x, idx, axis: (F.apply("take_grad", g, idx, axis=axis, shape=x.shape), None),
               emit=_emit_take_indices, fresh=True, receives=True, checks=True))


def _take_grad_infer(types, axis, shape):
    g, idx = types
    if idx.dtype not in ("int32", "int64"):
        raise DTypeError(f"indices must be int32 or int64, not {idx.dtype}")
    if g.ndim != len(shape) - 1 + idx.ndim:
        raise ShapeError(f"a gradient of rank {g.ndim} can't come from indexing a rank-{len(shape)} tensor "
                         f"with rank-{idx.ndim} indices")
    return TensorType(shape, g.dtype)


def _take_grad_numpy(g, idx, axis, shape):
    out = np.zeros(_concrete(shape), g.dtype)
    np.add.at(out, (slice(None),) * axis + (idx,), g)  # repeated indices accumulate
    return out


def _emit_take_grad(ctx, node):
    g, idx = ctx.args(node)
    axis, out = ctx.attrs(node)["axis"], ctx.var(node)
    if ctx.type(g).ndim == 0:
        return (_zeros(ctx, node) + _checked_index(ctx, node, "", ctx.var(idx), ctx.dims(node)[0])
                + [f"{out}[k] += {ctx.var(g)}"])

    def body(pre, mid, post):
        return [f"{out}[{', '.join(pre + ['k'] + post)}] += {ctx.var(g)}[{', '.join(pre + mid + post)}]"]
    return _zeros(ctx, node) + _gather_lines(ctx, node, node, idx, axis, body)


register(OpDef("take_grad", _take_grad_infer, _take_grad_numpy,
               vjp=lambda gg, out, g, idx, axis, shape: (F.apply("take", gg, idx, axis=axis), None),
               emit=_emit_take_grad, fresh=True, checks=True))


# one_hot
def _one_hot_infer(types, depth, dtype):
    (t,) = types
    if t.dtype not in ("int32", "int64"):
        raise DTypeError(f"labels must be int32 or int64, not {t.dtype}")
    if depth <= 0:
        raise ShapeError(f"depth must be positive, got {depth}")
    return TensorType(t.shape + (depth,), dtype)


def _emit_one_hot(ctx, node):
    (labels,) = ctx.args(node)
    out, depth = ctx.var(node), ctx.attrs(node)["depth"]
    names = [f"i{k}" for k in range(ctx.type(labels).ndim)]
    head, ind = ctx.nest(ctx.dims(labels), names)
    label = f"{ctx.var(labels)}[{', '.join(names)}]" if names else ctx.var(labels)
    return (_zeros(ctx, node) + head
            + [f"{ind}if 0 <= {label} < {depth}:", f"{ind}    {out}[{''.join(n + ', ' for n in names)}{label}] = 1"])


register(OpDef("one_hot", _one_hot_infer,
               lambda labels, depth, dtype: (labels[..., None] == np.arange(depth)).astype(dtype),
               vjp=lambda g, out, labels, depth, dtype: (None,), differentiable=False, emit=_emit_one_hot,
               fresh=True, numpy_exact=True))


# basic indexing: ints, slices, None, Ellipsis
def normalize_index(index, t):
    """A hashable tuple of ("int", k) / ("slice", start, stop, step) / ("new",) covering every axis."""
    index = index if isinstance(index, tuple) else (index,)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise ShapeError("an index can hold one Ellipsis")
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    if used > t.ndim:
        raise ShapeError(f"too many indices ({used}) for a rank-{t.ndim} tensor")
    if Ellipsis not in [i if i is Ellipsis else None for i in index]:
        index = index + (Ellipsis,)
    out = []
    for item in index:
        if item is Ellipsis:
            out.extend([("slice", None, None, None)] * (t.ndim - used))
        elif item is None:
            out.append(("new",))
        elif _is_index(item):
            if not -_MAX <= item <= _MAX:
                raise ShapeError(f"index {item} is out of bounds for any axis (int64)")
            out.append(("int", int(item)))
        elif isinstance(item, slice) and all(v is None or _is_index(v) for v in (item.start, item.stop, item.step)):
            if item.step == 0:
                raise ShapeError("slice step can't be zero")
            out.append(("slice",) + tuple(None if v is None else _clamped(v) for v in (item.start, item.stop, item.step)))
        else:
            raise ShapeError(f"only basic indexing (ints, slices, None, ...) is supported, got {item!r}")
    return tuple(out)


_MAX = int(np.iinfo(np.int64).max)


def _is_index(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _clamped(bound):
    """A slice bound within int64 (the kernel's ints): no axis is longer, so the slice picks the same elements."""
    return int(min(max(bound, -_MAX), _MAX))


def _slice_length_formula(start, stop, step):
    """len(range(n)[start:stop:step]) as an arithmetic expression over `{0}` = n (the kernel can't slice
    a range), specialized for the slice's static start, stop and step."""
    step = 1 if step is None else step
    last = "{0}" if step > 0 else "{0} - 1"  # the highest position a bound can take
    low = "0" if step > 0 else "-1"

    def bound(value, default):
        if value is None:
            return default
        return f"min({value}, {last})" if value >= 0 else f"max({{0}} - {-value}, {low})"
    if step > 0:
        first, end = bound(start, "0"), bound(stop, "{0}")
        # ceil((end - first) / step) written so a huge step (up to int64's maximum) can't overflow
        return f"max(0, {end} - {first})" if step == 1 else f"max(0, ({end} - {first} - 1) // {step} + 1)"
    first, end = bound(start, "{0} - 1"), bound(stop, "-1")
    return f"max(0, ({first} - {end} - 1) // {-step} + 1)"  # ceil((first - end) / -step), no overflow


def _as_python_index(index):
    """The index as Python objects (call-time sizes already made concrete by the interpreter)."""
    def one(item):
        if item[0] == "span":
            return slice(item[1], item[1] + item[2])
        return item[1] if item[0] == "int" else None if item[0] == "new" else slice(*item[1:])
    return tuple(one(item) for item in index)


def _getitem_infer(types, index):
    (t,) = types
    shape, axis = [], 0
    for item in index:
        if item[0] == "new":
            shape.append(1)
            continue
        size = t.shape[axis]
        if item[0] == "int":
            if not isinstance(size, Dim) and not -size <= item[1] < size:
                raise ShapeError(f"index {item[1]} is out of bounds for axis {axis} of size {size}")
        elif item[0] == "span":  # internal: `size` elements from `start` (the gradient of concatenate)
            shape.append(item[2])
        elif isinstance(size, Dim):
            start, stop, step = item[1:]
            shape.append(size if (start, stop, step) == (None, None, None)
                         else Dim("slice", _slice_length_formula(start, stop, step), [size]))
        else:
            shape.append(len(range(size)[slice(*item[1:])]))
        axis += 1
    return TensorType(tuple(shape), t.dtype)


def _index_text(index, size_text=str):
    def one(item):
        if item[0] == "int":
            return str(item[1])
        if item[0] == "new":
            return "None"
        if item[0] == "span":
            start = size_text(item[1])
            return f"{start}:{start}+{size_text(item[2])}"
        start, stop, step = ("" if v is None else str(v) for v in item[1:])
        return f"{start}:{stop}" + (f":{step}" if step else "")
    return ", ".join(one(i) for i in index)


def _bounds_checks(ctx, node, index, shape):
    """An int index on a call-time axis of `shape` is checked at run time (declared sizes were checked already)."""
    lines, axis = [], 0
    for item in index:
        if item[0] == "new":
            continue
        if item[0] == "int" and isinstance(resolve(shape[axis]), Dim):
            n = ctx.size(shape[axis])
            lines += ctx.index_error(node, "", f"not -{n} <= {item[1]} < {n}", f"index {item[1]} is out of bounds for axis {axis}")
        axis += 1
    return lines


def _subscript(var, index, size_text):
    """`var[index]` as kernel text: one item without a trailing comma (Numba's parallel lowering can't
    cast a one-slice tuple), several with commas."""
    text = _index_text(index, size_text)
    return f"{var}[{text}]" if len(index) == 1 else f"{var}[{text},]"


def _positions(ctx, index, shape, names):
    """Kernel expressions of the element of an array of `shape` that basic `index` puts at position
    `names` (loop names over the result's axes that come from the array's), one per axis of the array.
    Copies written as loop nests compile in a fraction of the time of Numba's slicing (assigning a C
    array into a slice took ~9 s, a loop nest ~0.1 s)."""
    positions, names = [], iter(names)
    for item, size in zip([i for i in index if i[0] != "new"], shape):
        if item[0] == "int":
            positions.append(str(item[1]) if item[1] >= 0 else f"{ctx.size(size)} - {-item[1]}")
        elif item[0] == "span":
            positions.append(f"{ctx.size(item[1])} + {next(names)}")
        else:
            start, step = _slice_start(item[1], item[3], size, ctx.size), item[3] or 1
            name = next(names)
            moved = name if abs(step) == 1 else f"{abs(step)} * {name}"
            positions.append(moved if start == "0" and step > 0 else f"{start} {'+' if step > 0 else '-'} {moved}")
    return positions


def _slice_start(start, step, size, size_text):
    """The first position a slice picks on an axis of `size` (Python's slice.indices), as kernel text."""
    step = step or 1
    size = resolve(size)
    if not isinstance(size, Dim):
        return str(slice(start, None, step).indices(size)[0])
    n = size_text(size)
    if step > 0:
        return "0" if start is None else f"min({start}, {n})" if start >= 0 else f"max({n} - {-start}, 0)"
    return f"{n} - 1" if start is None else f"min({start}, {n} - 1)" if start >= 0 else f"max({n} - {-start}, -1)"


def _emit_getitem(ctx, node):
    (x,) = ctx.args(node)
    index = ctx.attrs(node)["index"]
    if ctx.type(x).ndim == 0:  # a kernel scalar: only None and ... index it, giving it size-1 axes
        return [f"{ctx.var(node)} = {ctx.var(x)}"] if ctx.type(node).ndim == 0 else ctx.full(node, ctx.var(x))
    checks = _bounds_checks(ctx, node, index, ctx.type(x).shape)
    if ctx.type(node).ndim == 0:
        return checks + [f"{ctx.var(node)} = {_subscript(ctx.var(x), index, ctx.size)}"]
    if ctx.python:  # a Python driver's line: NumPy's slicing
        return checks + [f"{ctx.var(node)} = contiguous({_subscript(ctx.var(x), index, ctx.size)})"]
    out, names = ctx.var(node), [f"i{k}" for k in range(ctx.type(node).ndim)]
    head, ind = ctx.nest(ctx.dims(node), names)
    picks = _positions(ctx, index, ctx.type(x).shape, _kept_names(index, names))
    return (checks + [f"{out} = empty({ctx.shape(node)}, np.{ctx.type(node).dtype})"] + head
            + [f"{ind}{out}[{', '.join(names)}] = {ctx.var(x)}[{', '.join(picks)}]"])


def _kept_names(index, names):
    """The loop names of the result's axes that come from the array's axes (not from None)."""
    kept, names = [], iter(names)
    for item in index:
        if item[0] == "new":
            next(names)
        elif item[0] != "int":
            kept.append(next(names))
    return kept


register(OpDef("getitem", _getitem_infer, lambda x, index: x[_as_python_index(index)],
               vjp=lambda g, out, x, index: (F.apply("index_grad", g, index=index, shape=x.shape),),
               emit=_emit_getitem, view=True, checks=True,
               format_attrs=lambda attrs, dim_text: _index_text(attrs["index"], dim_text), numpy_exact=True))


def _index_grad_infer(types, index, shape):
    return TensorType(shape, types[0].dtype)


def _index_grad_numpy(g, index, shape):
    out = np.zeros(_concrete(shape), g.dtype)
    out[_as_python_index(index)] = g
    return out


def _emit_index_grad(ctx, node):
    (g,) = ctx.args(node)
    out = ctx.var(node)
    index = ctx.attrs(node)["index"]
    if ctx.type(node).ndim == 0:  # the gradient of indexing a scalar with None and ...: g's one element
        rank = ctx.type(g).ndim
        return [f"{out} = {ctx.var(g)}" + (f"[{', '.join('0' * rank)}]" if rank else "")]
    names = [f"i{k}" for k in range(ctx.type(g).ndim)]
    head, ind = ctx.nest(ctx.dims(g), names)
    picks = _positions(ctx, index, ctx.type(node).shape, _kept_names(index, names))
    value = f"{ctx.var(g)}[{', '.join(names)}]" if names else ctx.var(g)
    return (_bounds_checks(ctx, node, index, ctx.type(node).shape) + _zeros(ctx, node) + head
            + [f"{ind}{out}[{', '.join(picks)}] = {value}"])


register(OpDef("index_grad", _index_grad_infer, _index_grad_numpy,
               vjp=lambda gg, out, g, index, shape: (F.apply("getitem", gg, index=index),), emit=_emit_index_grad,
               fresh=True, checks=True,
               format_attrs=lambda attrs, dim_text: f"{_index_text(attrs['index'], dim_text)} of ({','.join(dim_text(s) for s in attrs['shape'])})",
               numpy_exact=True))
