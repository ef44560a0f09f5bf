"""Convolution and pooling kernels over NCHW tensors: im2col/col2im (gc.nn.conv2d lowers to im2col,
a BLAS matmul per group and a transpose; col2im, im2col's adjoint, is its input gradient), max and
average pooling.

Geometry attributes are pairs (rows, columns): kernel, stride, padding, dilation. A window starting
at output position (oh, ow) covers input rows oh*stride - padding + i*dilation, i < kernel (columns
alike); positions outside the input are padding (0 for im2col and avg_pool2d, -inf for max_pool2d).
Channels and spatial sizes are fixed at declaration; the batch may be a call-time size.
"""
import numpy as np

from .. import functions as F
from ..errors import DTypeError, ShapeError
from ..types import Dim, TensorType, is_float, resolve
from .movement import _product
from .registry import OpDef, register


def output_size(size, kernel, stride, padding, dilation):
    """PyTorch's output length along one axis; None when the dilated kernel exceeds the padded input."""
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        return None
    return (size + 2 * padding - span) // stride + 1


def _nchw(t, what="x"):
    """(N, C, H, W) of a float rank-4 type, C, H and W fixed."""
    if not is_float(t.dtype):
        raise DTypeError(f"{what} must be float32 or float64, not {t.dtype}")
    if t.ndim != 4:
        raise ShapeError(f"{what} must be rank 4 (N, C, H, W), got rank {t.ndim}")
    n, c, h, w = t.shape
    if any(isinstance(resolve(s), Dim) for s in (c, h, w)):
        raise ShapeError(f"{what}'s channels, height and width must be fixed sizes (only the batch may be None)")
    return n, c, h, w


def _out_hw(h, w, kernel, stride, padding, dilation=(1, 1)):
    sizes = [output_size(s, k, st, p, d) for s, k, st, p, d in zip((h, w), kernel, stride, padding, dilation)]
    for axis, size, got, k, p, d in zip("HW", sizes, (h, w), kernel, padding, dilation):
        if size is None:
            raise ShapeError(f"the kernel ({d * (k - 1) + 1} wide with dilation {d}) is larger than the padded input "
                             f"({got + 2 * p} = {got} + 2*{p}) along {axis}")
    return tuple(sizes)


def _geometry(ctx, node, *names):
    """The node's geometry attributes as kernel parameters, so layers differing only in stride, padding,
    dilation or kernel size can share one library kernel. Each goes offset by 2: KernelContext.size
    keeps 0 and 1 literal (for sizes they decide broadcasting), which would give stride 1 and stride 2
    kernels of their own."""
    return tuple(tuple(f"({ctx.size(v + 2)} - 2)" for v in ctx.attrs(node)[name]) for name in names)


# im2col: x (N, C, H, W) -> patches (groups, N*Ho*Wo, C/groups*kh*kw): per group a matrix whose row
# (n, oh, ow) holds the window of output position (oh, ow) of sample n, column (c, i, j) the tap (i, j)
# of the group's channel c
def _patches_type(image, dtype, kernel, stride, padding, dilation, groups):
    n, c, h, w = _nchw(image)
    if groups < 1 or c % groups:
        raise ShapeError(f"groups ({groups}) must divide the channels ({c})")
    ho, wo = _out_hw(h, w, kernel, stride, padding, dilation)
    return TensorType((groups, _product([n, ho * wo]), c // groups * kernel[0] * kernel[1]), dtype)


def _im2col_infer(types, kernel, stride, padding, dilation, groups):
    (t,) = types
    return _patches_type(t, t.dtype, kernel, stride, padding, dilation, groups)


def _padded(x, padding, fill=0.0):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)


def _taps(xp, ho, wo, kernel, stride, dilation):
    """(i, j, the (N, C, Ho, Wo) view of padded xp that kernel tap (i, j) reads) for every tap."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]


def _im2col_numpy(x, kernel, stride, padding, dilation, groups):
    n, c, h, w = x.shape
    ho, wo = _out_hw(h, w, kernel, stride, padding, dilation)
    cols = np.empty((n, ho, wo, c) + tuple(kernel), x.dtype)
    for i, j, tap in _taps(_padded(x, padding), ho, wo, kernel, stride, dilation):
        cols[..., i, j] = tap.transpose(0, 2, 3, 1)
    cols = cols.reshape(n * ho * wo, groups, -1)
    return np.ascontiguousarray(cols.transpose(1, 0, 2))


def _col2im_numpy(cols, shape, kernel, stride, padding, dilation, groups):
    n, c, h, w = shape
    ho, wo = _out_hw(h, w, kernel, stride, padding, dilation)
    xp = np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), cols.dtype)
    patches = cols.transpose(1, 0, 2).reshape((n, ho, wo, c) + tuple(kernel))
    for i, j, tap in _taps(xp, ho, wo, kernel, stride, dilation):
        tap += patches[..., i, j].transpose(0, 3, 1, 2)  # distinct positions within one tap: no lost adds
    return xp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def _patch_loops(ctx, node, image, body):
    """Loops over every (group, sample, output position, channel of the group, kernel tap) of the
    patches of `image` (N, C, H, W); body(indent, patch index, pixel index, in-range test) gives one
    tap's lines."""
    attrs = ctx.attrs(node)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _geometry(ctx, node, "kernel", "stride", "padding", "dilation")
    groups = f"({ctx.size(attrs['groups'] + 2)} - 2)"
    n, c, h, w = ctx.dims(image)
    geometry = [attrs[k] for k in ("kernel", "stride", "padding", "dilation")]
    ho, wo = (ctx.size(s) for s in _out_hw(*ctx.type(image).shape[2:], *geometry))
    v = ctx.var(node)  # loop names carry the node's, so two ops' loops in one function never share a variable
    head = [f"{v}_per_group = {c} // {groups}",
            f"for {v}_g in range({groups}):",
            f"    for {v}_n in range({n}):",
            f"        for {v}_oh in range({ho}):",
            f"            for {v}_ow in range({wo}):",
            f"                {v}_row = ({v}_n * {ho} + {v}_oh) * {wo} + {v}_ow",
            f"                for {v}_c in range({v}_per_group):",
            f"                    {v}_channel = {v}_g * {v}_per_group + {v}_c",
            f"                    for {v}_i in range({kh}):",
            f"                        {v}_y = {v}_oh * {sh} - {ph} + {v}_i * {dh}",
            f"                        for {v}_j in range({kw}):",
            f"                            {v}_z = {v}_ow * {sw} - {pw} + {v}_j * {dw}",
            f"                            {v}_col = ({v}_c * {kh} + {v}_i) * {kw} + {v}_j"]
    inside = f"0 <= {v}_y < {h} and 0 <= {v}_z < {w}"
    return head + body(" " * 28, f"{v}_g, {v}_row, {v}_col", f"{v}_n, {v}_channel, {v}_y, {v}_z", inside)


def _emit_im2col(ctx, node):
    (x,) = ctx.args(node)
    out, zero = ctx.var(node), ctx.const(0, ctx.type(node).dtype)

    def body(ind, patch, pixel, inside):
        return [f"{ind}if {inside}:", f"{ind}    {out}[{patch}] = {ctx.var(x)}[{pixel}]",
                f"{ind}else:", f"{ind}    {out}[{patch}] = {zero}"]
    return [f"{out} = {ctx.empty(node)}"] + _patch_loops(ctx, node, x, body)


def _im2col_vjp(g, out, x, **geometry):
    return (F.apply("col2im", g, shape=x.shape, **geometry),)


register(OpDef("im2col", _im2col_infer, _im2col_numpy, vjp=_im2col_vjp, emit=_emit_im2col, fresh=True,
               receives=True, numpy_exact=True))


# col2im: patches back to the image (N, C, H, W), the taps that read one pixel added (im2col's adjoint)
def _col2im_infer(types, shape, kernel, stride, padding, dilation, groups):
    (g,) = types
    image = TensorType(shape, g.dtype)
    expected = _patches_type(image, g.dtype, kernel, stride, padding, dilation, groups)
    if g.ndim != 3 or any(resolve(a) != resolve(b) for k, (a, b) in enumerate(zip(g.shape, expected.shape)) if k != 1):
        raise ShapeError(f"patches must be {expected.text()}, got {g.text()}")
    return image


def _emit_col2im(ctx, node):
    (g,) = ctx.args(node)
    out = ctx.var(node)

    def body(ind, patch, pixel, inside):
        return [f"{ind}if {inside}:", f"{ind}    {out}[{pixel}] += {ctx.var(g)}[{patch}]"]
    return ([f"{out} = {ctx.empty(node)}", f"{out}[:] = {ctx.const(0, ctx.type(node).dtype)}"]
            + _patch_loops(ctx, node, node, body))  # the image is node's own output


def _col2im_vjp(gg, out, g, shape, **geometry):
    return (F.apply("im2col", gg, **geometry),)


register(OpDef("col2im", _col2im_infer, _col2im_numpy, vjp=_col2im_vjp, emit=_emit_col2im, fresh=True,
               receives=True))


# pooling: (N, C, H, W) -> (N, C, Ho, Wo), windows of kernel taps (no dilation)
def _pool_infer(dtype=None):
    def infer(types, kernel, stride, padding):
        (t,) = types
        n, c, h, w = _nchw(t)
        if any(p > k // 2 for k, p in zip(kernel, padding)):
            raise ShapeError(f"padding {padding} must be at most half the kernel {kernel} (as PyTorch)")
        ho, wo = _out_hw(h, w, kernel, stride, padding)
        return TensorType((n, c, ho, wo), dtype or t.dtype)
    return infer


def _windows(x, kernel, stride, padding):
    """(oh, ow, the window's rows, its columns) for every output position: the window clipped to x
    (padding holds no elements)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    h, w = x.shape[2:]
    ho, wo = _out_hw(h, w, kernel, stride, padding)
    for oh in range(ho):
        rows = slice(max(oh * sh - ph, 0), min(oh * sh - ph + kh, h))
        for ow in range(wo):
            yield oh, ow, rows, slice(max(ow * sw - pw, 0), min(ow * sw - pw + kw, w))


def _pool_numpy(reduce_window, dtype=None):
    def numpy(x, kernel, stride, padding):
        n, c, h, w = x.shape
        ho, wo = _out_hw(h, w, kernel, stride, padding)
        out = np.empty((n, c, ho, wo), dtype or x.dtype)
        for oh, ow, rows, cols in _windows(x, kernel, stride, padding):
            window = x[:, :, rows, cols].reshape(n, c, -1)
            out[:, :, oh, ow] = reduce_window(window, rows, cols, w)
        return out
    return numpy


def _first_max(window, rows, cols, width):
    """The flat position y*W + z of each window's first maximum (np.argmax: the first NaN if any)."""
    k = np.argmax(window, axis=2)
    span = cols.stop - cols.start
    return (rows.start + k // span) * width + cols.start + k % span


def _window_loops(ctx, node, image, positions):
    """Loops over every output position of a pool (positions' last two sizes) and the taps of its window
    inside image (N, C, H, W). Returns lines(start, tap, end), which writes the loops around the lines
    before the taps, at each tap (names {v}_n, {v}_c, {v}_y, {v}_z) and after them; and the window's
    element count as a kernel expression of node's dtype."""
    (kh, kw), (sh, sw), (ph, pw) = _geometry(ctx, node, "kernel", "stride", "padding")
    n, c, h, w = ctx.dims(image)
    ho, wo = ctx.dims(positions)[2:]
    v = ctx.var(node)

    def lines(start, tap, end):
        return ([f"for {v}_n in range({n}):", f"    for {v}_c in range({c}):",
                 f"        for {v}_oh in range({ho}):", f"            for {v}_ow in range({wo}):"]
                + [" " * 16 + line for line in start]
                + [" " * 16 + f"for {v}_i in range({kh}):",
                   " " * 20 + f"{v}_y = {v}_oh * {sh} - {ph} + {v}_i",
                   " " * 20 + f"if 0 <= {v}_y < {h}:",
                   " " * 24 + f"for {v}_j in range({kw}):",
                   " " * 28 + f"{v}_z = {v}_ow * {sw} - {pw} + {v}_j",
                   " " * 28 + f"if 0 <= {v}_z < {w}:"]
                + [" " * 32 + line for line in tap]
                + [" " * 16 + line for line in end])
    return lines, f"np.{ctx.type(node).dtype}({kh} * {kw})"


def _emit_max_pool(ctx, node):
    (x,) = ctx.args(node)
    v, dtype = ctx.var(node), ctx.type(node).dtype
    at = f"{v}[{v}_n, {v}_c, {v}_oh, {v}_ow]"
    lines, _ = _window_loops(ctx, node, x, node)
    # as np.max: the first NaN wins and stays (a comparison with NaN is false)
    return [f"{v} = {ctx.empty(node)}"] + lines(
        [f"{v}_best = {ctx.const(float('-inf'), dtype)}"],
        [f"{v}_v = {ctx.var(x)}[{v}_n, {v}_c, {v}_y, {v}_z]",
         f"if {v}_v > {v}_best or ({v}_v != {v}_v and {v}_best == {v}_best):", f"    {v}_best = {v}_v"],
        [f"{at} = {v}_best"])


def _emit_max_argmax(ctx, node):
    (x,) = ctx.args(node)
    v = ctx.var(node)
    lines, _ = _window_loops(ctx, node, x, node)
    # the first maximum in the window's row-major order (the first NaN), a real element: padding is never picked
    return [f"{v} = {ctx.empty(node)}"] + lines(
        [f"{v}_best = {ctx.const(float('-inf'), ctx.type(x).dtype)}", f"{v}_k = -1"],
        [f"{v}_v = {ctx.var(x)}[{v}_n, {v}_c, {v}_y, {v}_z]",
         f"if {v}_k < 0 or {v}_v > {v}_best or ({v}_v != {v}_v and {v}_best == {v}_best):",
         f"    {v}_best = {v}_v", f"    {v}_k = {v}_y * {ctx.dims(x)[3]} + {v}_z"],
        [f"{v}[{v}_n, {v}_c, {v}_oh, {v}_ow] = {v}_k"])


def _max_pool_vjp(g, out, x, kernel, stride, padding):
    """The gradient goes to each window's first maximum (the max routes it), summed where windows overlap."""
    n, c, h, w = x.shape
    first = F.apply("max_pool2d_argmax", x, kernel=kernel, stride=stride, padding=padding)
    routed = F.apply("scatter_add_along_axis", F.reshape(g, (n, c, -1)), F.reshape(first, (n, c, -1)),
                     axis=2, shape=(n, c, h * w))
    return (F.reshape(routed, x.shape),)


register(OpDef("max_pool2d", _pool_infer(), _pool_numpy(lambda window, rows, cols, width: np.max(window, axis=2)),
               vjp=_max_pool_vjp, emit=_emit_max_pool, fresh=True, receives=True, numpy_exact=True))
register(OpDef("max_pool2d_argmax", _pool_infer("int64"), _pool_numpy(_first_max, "int64"),
               vjp=lambda g, out, x, kernel, stride, padding: (None,), differentiable=False, emit=_emit_max_argmax,
               fresh=True, receives=True, numpy_exact=True))


# avg_pool2d: the window's sum over kernel[0] * kernel[1] (count_include_pad=True: padding counts as zeros)
def _avg_pool_numpy(x, kernel, stride, padding):
    h, w = x.shape[2:]
    ho, wo = _out_hw(h, w, kernel, stride, padding)
    total = np.zeros(x.shape[:2] + (ho, wo), x.dtype)
    for _, _, tap in _taps(_padded(x, padding), ho, wo, kernel, stride, (1, 1)):
        total += tap
    return total / x.dtype.type(kernel[0] * kernel[1])


def _avg_pool_grad_numpy(g, shape, kernel, stride, padding):
    n, c, h, w = shape
    xp = np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), g.dtype)
    share = g / g.dtype.type(kernel[0] * kernel[1])
    for _, _, tap in _taps(xp, g.shape[2], g.shape[3], kernel, stride, (1, 1)):
        tap += share
    return xp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def _emit_avg_pool(ctx, node):
    (x,) = ctx.args(node)
    v, dtype = ctx.var(node), ctx.type(node).dtype
    lines, count = _window_loops(ctx, node, x, node)
    return [f"{v} = {ctx.empty(node)}"] + lines(
        [f"{v}_total = {ctx.const(0, dtype)}"],
        [f"{v}_total += {ctx.var(x)}[{v}_n, {v}_c, {v}_y, {v}_z]"],
        [f"{v}[{v}_n, {v}_c, {v}_oh, {v}_ow] = {v}_total / {count}"])


def _avg_pool_grad_infer(types, shape, kernel, stride, padding):
    (g,) = types
    image = TensorType(shape, g.dtype)
    expected = _pool_infer()([image], kernel, stride, padding)
    if g.ndim != 4 or any(resolve(a) != resolve(b) for a, b in zip(g.shape[1:], expected.shape[1:])):
        raise ShapeError(f"the gradient must be {expected.text()}, got {g.text()}")
    return image


def _emit_avg_pool_grad(ctx, node):
    (g,) = ctx.args(node)
    v, dtype = ctx.var(node), ctx.type(node).dtype
    pixel, position = f"{v}_n, {v}_c, {v}_y, {v}_z", f"{v}_n, {v}_c, {v}_oh, {v}_ow"
    lines, count = _window_loops(ctx, node, node, g)  # over g's positions, into the image (node's own output)
    return [f"{v} = {ctx.empty(node)}", f"{v}[:] = {ctx.const(0, dtype)}"] + lines(
        [f"{v}_share = {ctx.var(g)}[{position}] / {count}"], [f"{v}[{pixel}] += {v}_share"], [])


register(OpDef("avg_pool2d", _pool_infer(), _avg_pool_numpy,
               vjp=lambda g, out, x, kernel, stride, padding: (F.apply(
                   "avg_pool2d_grad", g, shape=x.shape, kernel=kernel, stride=stride, padding=padding),),
               emit=_emit_avg_pool, fresh=True, receives=True))
register(OpDef("avg_pool2d_grad", _avg_pool_grad_infer, _avg_pool_grad_numpy,
               vjp=lambda gg, out, g, shape, kernel, stride, padding: (F.apply(
                   "avg_pool2d", gg, kernel=kernel, stride=stride, padding=padding),),
               emit=_emit_avg_pool_grad, fresh=True, receives=True))
