"""empty(shape, dtype), contiguous(a) and address(a) for the kernels. The first two are
np.empty and np.ascontiguousarray as Numba intrinsics made of the code Numba's own versions run
(numba.np.arrayobj), so the results are the same.

NumPy's functions in a kernel are Numba functions of their own, compiled once per argument type
(np.empty ~0.03-0.08 s per shape rank and dtype on a cold start); an intrinsic is code inlined into
the kernel and costs no compile of its own.
"""
from llvmlite import ir
from numba import types
from numba.core.typing.npydecl import parse_dtype, parse_shape
from numba.extending import intrinsic
from numba.np.arrayobj import _as_layout_array, _empty_nd_impl, _parse_empty_args


@intrinsic
def empty(typingctx, shape, dtype):
    ndim, element = parse_shape(shape), parse_dtype(dtype)
    if ndim is None or element is None:
        return None
    array = types.Array(element, ndim, "C")

    def codegen(context, builder, signature, args):
        array_type, sizes = _parse_empty_args(context, builder, signature, args)
        return _empty_nd_impl(context, builder, array_type, sizes)._getvalue()
    return array(shape, dtype), codegen


@intrinsic
def contiguous(typingctx, a):
    if not isinstance(a, types.Array):
        return None
    result = a.copy(layout="C", ndim=max(a.ndim, 1), readonly=False)  # a copy when a is not C ordered

    def codegen(context, builder, signature, args):
        return _as_layout_array(context, builder, signature, args, output_layout="C")
    return result(a), codegen


@intrinsic
def address(typingctx, a):
    """The address of a's first byte, as an int64 (user-space addresses fit): with a.size * a.itemsize it
    gives the extent of memory a C-contiguous array covers, which the driver's overlap check compares
    (runtime/codegen.py overlap_checks)."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.ptrtoint(array.data, ir.IntType(64))
    return types.int64(a), codegen
