"""Scalar math the generated kernels call by bare name (exp, log, tanh, ...), and size helpers."""
import math

from numba import njit

exp = math.exp
log = math.log
tanh = math.tanh
sqrt = math.sqrt
log1p = math.log1p
expm1 = math.expm1


@njit(inline="always", cache=True)
def slice_length(size, start, stop, step):
    """len(range(size)[start:stop:step]) for a size known only at call time."""
    return len(range(size)[slice(start, stop, step)])
