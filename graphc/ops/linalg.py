"""matmul with NumPy's semantics (rank-1 operands promoted, batch dimensions broadcast), and the diagonal
einsum takes for a repeated subscript. Products go to BLAS through runtime/blas.py's matmul_into, a vector
passed as a matrix of one row or column (gemv or dot, as np.dot would call; np.dot itself is a Numba
function compiled per operand layouts, ~0.5 s each): one product when the right operand has no batch
(the left's batch folds into its rows), else one per batch element, on 2-D slices."""
import numpy as np

from .. import functions as F
from ..errors import DTypeError, ShapeError
from ..types import Dim, TensorType, broadcast_shapes, is_float, resolve, size_text, unify
from .registry import OpDef, register


def _shape_text(shape):
    return "(" + ",".join(size_text(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


# matmul
def _matmul_infer(types):
    a, b = types
    if not (is_float(a.dtype) and a.dtype == b.dtype):
        raise DTypeError("needs two float32 or two float64 operands")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("needs operands of rank 1 or more (multiply by a scalar with *)")
    inner_a, inner_b = a.shape[-1], b.shape[-2 if b.ndim >= 2 else 0]
    if unify(inner_a, inner_b) is None:
        raise ShapeError(f"inner sizes {size_text(inner_a)} and {size_text(inner_b)} differ")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if batch is None:
        raise ShapeError(f"batch dimensions {_shape_text(a.shape[:-2])} and {_shape_text(b.shape[:-2])} "
                         "don't broadcast")
    return TensorType(batch + a.shape[-2:-1] + (b.shape[-1:] if b.ndim >= 2 else ()), a.dtype)


def _swap_last(x):
    """x with its last two axes exchanged (a matrix's transpose, batched)."""
    return F.transpose(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def _matmul_vjp(g, out, a, b):
    """g @ b^T and a^T @ g, rank-1 operands promoted as the forward did; autodiff sums the gradient
    over batch axes an operand was broadcast along."""
    if a.ndim <= 2 and b.ndim <= 2:
        if a.ndim == 2 and b.ndim == 2:
            return g @ b.T, a.T @ g
        if a.ndim == 2:  # matrix @ vector
            return F.reshape(g, (-1, 1)) * F.reshape(b, (1, -1)), a.T @ g
        if b.ndim == 2:  # vector @ matrix
            return b @ g, F.reshape(a, (-1, 1)) * F.reshape(g, (1, -1))
        return g * b, g * a
    k = a.shape[-1]
    rows = a.shape[-2] if a.ndim >= 2 else 1
    cols = b.shape[-1] if b.ndim >= 2 else 1
    batch = out.shape[:out.ndim - (a.ndim >= 2) - (b.ndim >= 2)]
    g_full = F.reshape(g, batch + (rows, cols)) if a.ndim == 1 or b.ndim == 1 else g
    b_full = b if b.ndim >= 2 else F.reshape(b, (k, 1))
    grad_a = g_full @ _swap_last(b_full)  # batch + (rows, k)
    if a.ndim == 1:
        grad_a = F.reshape(grad_a, batch + (k,))
    if b.ndim <= 2:  # b was not batched: one product over a's batch folded into its rows
        a_rows = F.reshape(a, (-1, k))
        grad_b = a_rows.T @ (F.reshape(g, (-1, cols)) if b.ndim == 2 else F.reshape(g, (-1,)))
        return grad_a, grad_b
    a_full = a if a.ndim >= 2 else F.reshape(a, (1, k))
    grad_b = _swap_last(a_full) @ g_full  # batch + (k, cols)
    return grad_a, grad_b


def _emit_matmul(ctx, node):
    a, b = ctx.args(node)
    ta, tb = ctx.type(a), ctx.type(b)
    out, dtype = ctx.var(node), ctx.type(node).dtype
    k = ctx.dims(a)[-1]
    cols = ctx.dims(b)[-1] if tb.ndim >= 2 else "1"
    if tb.ndim <= 2:  # one product: a vector is a matrix of one row or column, a's batch folds into its rows
        all_rows = " * ".join(ctx.dims(a)[:-1]) or "1"
        left = ctx.blas_operand(a) if ta.ndim == 2 else f"{ctx.contiguous(a)}.reshape(({all_rows}, {k}))"
        right = ctx.blas_operand(b) if tb.ndim == 2 else f"{ctx.contiguous(b)}.reshape(({k}, 1))"
        if ctx.type(node).ndim == 0:  # vector . vector
            return [f"{out}_full = empty((1, 1), np.{dtype})", f"matmul_into({left}, {right}, {out}_full)",
                    f"{out} = {out}_full[0, 0]"]
        product = out if ta.ndim == tb.ndim == 2 else f"{out}.reshape(({all_rows}, {cols}))"
        return [f"{out} = empty({ctx.shape(node)}, np.{dtype})", f"matmul_into({left}, {right}, {product})"]
    rows = ctx.dims(a)[-2] if ta.ndim >= 2 else "1"
    batch_rank = ctx.type(node).ndim - (ta.ndim >= 2) - 1
    batch = ctx.dims(node)[:batch_rank]
    names = [f"i{j}" for j in range(batch_rank)]
    full = f"{out}_full"  # the product with a promoted vector's axis of size 1 kept
    lines = [f"{full} = empty(({', '.join(batch + [rows, cols])},), np.{dtype})"]
    operands = []
    for x, t, name in ((a, ta, f"{out}_a"), (b, tb, f"{out}_b")):
        if t.ndim == 1:
            lines.append(f"{name} = {ctx.contiguous(x)}.reshape((1, {k}))")
        elif t.ndim == 2:
            lines.append(f"{name} = {ctx.blas_operand(x)}")
        else:  # sliced per batch element: C order keeps every slice a C-ordered matrix
            lines.append(f"{name} = {ctx.contiguous(x)}")
            lead = batch_rank - (t.ndim - 2)
            picks = ["0" if _is_one(s) else names[lead + j] for j, s in enumerate(t.shape[:-2])]
            name = f"{name}[{', '.join(picks)}]"
        operands.append(name)
    head, ind = ctx.nest(batch, names)
    lines += head + [f"{ind}matmul_into({operands[0]}, {operands[1]}, {full}[{', '.join(names)}])"]
    return lines + [f"{out} = {full}" if ta.ndim >= 2 else f"{out} = {full}.reshape({ctx.shape(node)})"]


def _is_one(size):
    size = resolve(size)
    return not isinstance(size, Dim) and size == 1


register(OpDef("matmul", _matmul_infer, np.matmul, vjp=_matmul_vjp, emit=_emit_matmul, cost=100,
               fresh=True, threaded=True))


# diagonal (einsum's repeated subscript, "ii->i") and its gradient, diagonal_grad
def _diagonal_infer(types, axis1, axis2):
    (t,) = types
    if not 0 <= axis1 < axis2 < t.ndim:
        raise ShapeError(f"axes {axis1} and {axis2} are not two distinct axes of a rank-{t.ndim} tensor")
    size = unify(t.shape[axis1], t.shape[axis2])
    if size is None:
        raise ShapeError(f"a diagonal needs equal sizes on axes {axis1} and {axis2}, "
                         f"got {size_text(t.shape[axis1])} and {size_text(t.shape[axis2])}")
    rest = tuple(s for k, s in enumerate(t.shape) if k not in (axis1, axis2))
    return TensorType(rest + (size,), t.dtype)


def _diagonal_position(names, rank, axis1, axis2):
    """An index into the full array from loop names over (the other axes..., the diagonal)."""
    others = iter(names[:-1])
    return [names[-1] if k in (axis1, axis2) else next(others) for k in range(rank)]


def _emit_diagonal(ctx, node):
    (x,) = ctx.args(node)
    attrs = ctx.attrs(node)
    out = ctx.var(node)
    names = [f"i{k}" for k in range(ctx.type(node).ndim)]
    head, ind = ctx.nest(ctx.dims(node), names)
    picks = _diagonal_position(names, ctx.type(x).ndim, attrs["axis1"], attrs["axis2"])
    return ([f"{out} = {ctx.empty(node)}"] + head
            + [f"{ind}{out}[{', '.join(names)}] = {ctx.var(x)}[{', '.join(picks)}]"])


register(OpDef("diagonal", _diagonal_infer, lambda x, axis1, axis2: np.diagonal(x, 0, axis1, axis2).copy(),
               vjp=lambda g, out, x, axis1, axis2: (
                   F.apply("diagonal_grad", g, axis1=axis1, axis2=axis2, shape=x.shape),),
               emit=_emit_diagonal, fresh=True, receives=True, numpy_exact=True))


def _diagonal_grad_infer(types, axis1, axis2, shape):
    return TensorType(shape, types[0].dtype)


def _diagonal_grad_numpy(g, axis1, axis2, shape):
    out = np.zeros(tuple(int(s) for s in shape), g.dtype)
    for d in range(g.shape[-1]):
        out[tuple(d if k in (axis1, axis2) else slice(None) for k in range(out.ndim))] = g[..., d]
    return out


def _emit_diagonal_grad(ctx, node):
    (g,) = ctx.args(node)
    attrs = ctx.attrs(node)
    out = ctx.var(node)
    names = [f"i{k}" for k in range(ctx.type(g).ndim)]
    head, ind = ctx.nest(ctx.dims(g), names)
    picks = _diagonal_position(names, ctx.type(node).ndim, attrs["axis1"], attrs["axis2"])
    return (ctx.full(node, ctx.const(0, ctx.type(node).dtype)) + head
            + [f"{ind}{out}[{', '.join(picks)}] = {ctx.var(g)}[{', '.join(names)}]"])


register(OpDef("diagonal_grad", _diagonal_grad_infer, _diagonal_grad_numpy,
               vjp=lambda gg, out, g, axis1, axis2, shape: (F.apply("diagonal", gg, axis1=axis1, axis2=axis2),),
               emit=_emit_diagonal_grad, fresh=True, numpy_exact=True))
