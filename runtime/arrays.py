"""empty(shape, dtype), contiguous(a) and overlaps(a, b) for the kernels. The first two are
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
def overlaps(typingctx, a, b):
    """True when arrays a and b share a byte of memory (their extents meet; exact for C-contiguous
    arrays, which every kernel argument is). A kernel with updates checks its arguments with it before
    anything else, so the binder can copy or refuse overlapping ones before any caller array is written."""
    if not (isinstance(a, types.Array) and isinstance(b, types.Array)):
        return None

    def codegen(context, builder, signature, args):
        word = ir.IntType(64)
        spans = []
        for array_type, value in zip(signature.args, args):
            array = context.make_array(array_type)(context, builder, value)
            start = builder.ptrtoint(array.data, word)
            spans.append((start, builder.add(start, builder.mul(array.nitems, array.itemsize))))
        (a0, a1), (b0, b1) = spans
        meet = builder.and_(builder.icmp_unsigned("<", a0, b1), builder.icmp_unsigned("<", b0, a1))
        both_sized = builder.and_(builder.icmp_unsigned("<", a0, a1), builder.icmp_unsigned("<", b0, b1))
        return builder.and_(meet, both_sized)
    return types.boolean(a, b), codegen
