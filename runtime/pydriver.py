"""NumPy forms of the helpers a Python driver calls (runtime/codegen.py): the same names as the Numba
intrinsics the kernels use (runtime/arrays.py), so a view or a fill renders to one text for both."""
import numpy as np

empty = np.empty
contiguous = np.ascontiguousarray


def address(a):
    """The address of a's first byte (the overlap check's extents)."""
    return a.__array_interface__["data"][0]
