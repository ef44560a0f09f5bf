"""matmul_into(a, b, out): out = a @ b for 2-D float arrays, a Numba intrinsic the kernels call.

np.dot in a kernel makes Numba compile its own implementation, one function per combination of
operand layouts, each a separate pipeline (~0.2-0.5 s apiece on a cold start). This intrinsic is
code inlined into the kernel that makes the BLAS calls np.dot makes (Numba's call_xx* helpers, in
the same cases: gemm; gemv or dot when a side is a vector; zeros when a size is 0), so the results
are the same. Operands are C or F ordered (a transpose is a flag to BLAS); out is C ordered, fresh,
and of shape (rows of a, columns of b): graphc's shape inference has checked the sizes. graphc's
matmul passes a vector as a matrix of one row or column, and a batched product as 2-D slices of C
ordered arrays, one call per batch element (graphc/ops/linalg.py).
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np import linalg
from numba.np.arrayobj import make_array

_C_INT_MAX = 2 ** 31 - 1


@intrinsic
def matmul_into(typingctx, a, b, out):
    arrays = (a, b, out)
    if not (all(isinstance(t, types.Array) and t.ndim == 2 for t in arrays) and a.dtype == b.dtype == out.dtype
            and a.dtype in (types.float32, types.float64) and a.layout in "CF" and b.layout in "CF"
            and out.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        from .aot import preload_blas
        preload_blas()  # what ensure_blas imports, without loading all of scipy.linalg
        linalg.ensure_blas()
        x, y, z = (make_array(t)(context, builder, v) for t, v in zip(arrays, args))
        x_shapes, y_shapes = cgutils.unpack_tuple(builder, x.shape), cgutils.unpack_tuple(builder, y.shape)
        out_shapes = cgutils.unpack_tuple(builder, z.shape)
        (m, k), (_, n) = x_shapes, y_shapes
        _raise_unless_c_ints(context, builder, (m, k, n))
        zero, one = (context.get_constant(types.intp, v) for v in (0, 1))
        empty = builder.or_(builder.icmp_signed("==", k, zero),
                            builder.or_(builder.icmp_signed("==", m, zero), builder.icmp_signed("==", n, zero)))
        with builder.if_else(empty, likely=False) as (no_work, work):
            with no_work:
                cgutils.memset(builder, z.data, builder.mul(z.itemsize, z.nitems), 0)
            with work:
                _blas_product(context, builder, arrays, (x, y, z), (x_shapes, y_shapes, out_shapes),
                              builder.icmp_signed("==", m, one), builder.icmp_signed("==", n, one))
        return context.get_dummy_value()

    return types.none(a, b, out), codegen


def _blas_product(context, builder, arrays, structs, shapes, left_is_vector, right_is_vector):
    """np.dot's choice of routine (numba.np.linalg.dot_3_mm): a (1, k) or (k, 1) side is a vector."""
    (xty, yty, outty), (x, y, z), (x_shapes, y_shapes, out_shapes) = arrays, structs, shapes
    with builder.if_else(right_is_vector) as (right_vector, right_matrix):
        with right_vector:
            with builder.if_else(left_is_vector) as (both, matrix_vector):
                with both:
                    linalg.call_xxdot(context, builder, False, xty.dtype, x_shapes[1], x.data, y.data, z.data)
                with matrix_vector:
                    linalg.call_xxgemv(context, builder, xty.layout == outty.layout, xty, x_shapes, x.data,
                                       y.data, z.data)
        with right_matrix:
            with builder.if_else(left_is_vector) as (vector_matrix, both_matrices):
                with vector_matrix:
                    linalg.call_xxgemv(context, builder, yty.layout != outty.layout, yty, y_shapes, y.data,
                                       x.data, z.data)
                with both_matrices:
                    linalg.call_xxgemm(context, builder, xty, x_shapes, x.data, yty, y_shapes, y.data,
                                       outty, out_shapes, z.data)


def _raise_unless_c_ints(context, builder, sizes):
    """BLAS takes C ints: larger sizes raise OverflowError (as np.dot does)."""
    limit = ir.Constant(sizes[0].type, _C_INT_MAX)
    for size in sizes:
        with builder.if_then(builder.icmp_signed(">", size, limit), likely=False):
            context.call_conv.return_user_exc(builder, OverflowError, ("array size too large to fit in C int",))
