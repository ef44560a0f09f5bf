"""runtime/arrays.py: the kernels' empty and contiguous behave as np.empty and np.ascontiguousarray."""
import numba
import numpy as np

from graphc.runtime.arrays import contiguous, empty


@numba.njit
def _as_c(a):
    return contiguous(a)


@numba.njit
def _empty(n):
    return empty((n, 3), np.float32), empty(n, np.int64), empty((), np.float64)


def test_contiguous_copies_only_what_is_not_c_ordered():
    x = np.arange(12.0).reshape(3, 4)
    assert np.shares_memory(_as_c(x), x)
    for view in (x.T, x[:, ::2], x[::2]):
        got = _as_c(view)
        assert got.flags.c_contiguous and not np.shares_memory(got, x) and np.array_equal(got, view)


def test_empty_makes_c_ordered_arrays_of_the_shape_and_dtype():
    matrix, vector, scalar = _empty(5)
    assert (matrix.shape, matrix.dtype, matrix.flags.c_contiguous) == ((5, 3), np.float32, True)
    assert (vector.shape, vector.dtype, scalar.shape, scalar.dtype) == ((5,), np.int64, (), np.float64)
