"""matmul: NumPy's semantics for rank-1 and rank-2 operands; BLAS in the kernel (runtime/blas.py's
matmul_into for two matrices, np.dot otherwise)."""
import numpy as np

from .. import functions as F
from ..errors import DTypeError, ShapeError
from ..types import TensorType, is_float, unify
from .registry import OpDef, register


def _matmul_infer(types):
    a, b = types
    if not (is_float(a.dtype) and a.dtype == b.dtype):
        raise DTypeError("needs two float32 or two float64 operands")
    if not (1 <= a.ndim <= 2 and 1 <= b.ndim <= 2):
        raise ShapeError("supports rank-1 and rank-2 operands")
    inner_a = a.shape[-1]
    inner_b = b.shape[0]
    if unify(inner_a, inner_b) is None:
        raise ShapeError(f"inner sizes {inner_a} and {inner_b} differ")
    shape = a.shape[:-1] + b.shape[1:]
    return TensorType(shape, a.dtype)


def _matmul_vjp(g, out, a, b):
    if a.ndim == 2 and b.ndim == 2:
        return g @ b.T, a.T @ g
    if a.ndim == 2:  # matrix @ vector
        return F.reshape(g, (-1, 1)) * F.reshape(b, (1, -1)), a.T @ g
    if b.ndim == 2:  # vector @ matrix
        return b @ g, F.reshape(a, (-1, 1)) * F.reshape(g, (1, -1))
    return g * b, g * a


def _emit_matmul(ctx, node):
    a, b = ctx.args(node)
    if ctx.type(a).ndim == ctx.type(b).ndim == 2:
        return [f"{ctx.var(node)} = empty({ctx.shape(node)}, np.{ctx.type(node).dtype})",
                f"matmul_into({ctx.blas_operand(a)}, {ctx.blas_operand(b)}, {ctx.var(node)})"]
    return [f"{ctx.var(node)} = np.dot({ctx.blas_operand(a)}, {ctx.blas_operand(b)})"]


register(OpDef("matmul", _matmul_infer, np.matmul, vjp=_matmul_vjp, emit=_emit_matmul, cost=100,
               fresh=True, threaded=True))
