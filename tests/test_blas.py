"""Matrix products in kernels (runtime/blas.py's matmul_into): every case np.dot distinguishes (gemm,
gemv with a vector on either side, dot, empty sizes), both layouts of each operand, both float widths."""
import numpy as np
import pytest

import graphc as gc

SHAPES = [(4, 3, 5), (1, 3, 5), (4, 3, 1), (1, 3, 1), (0, 3, 5), (4, 0, 5), (4, 3, 0)]  # (m, k, n)


def product(dtype, transpose_a, transpose_b):
    a = gc.tensor("a", (None, None), dtype)
    b = gc.tensor("b", (None, None), dtype)
    return gc.compile([a, b], (a.T if transpose_a else a) @ (b.T if transpose_b else b),
                      name=f"mm_{dtype}_{transpose_a}_{transpose_b}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_matrix_products_match_numpy(dtype, transpose_a, transpose_b):
    f = product(dtype, transpose_a, transpose_b)
    assert "matmul_into(" in f.source() and "np.dot(" not in f.source()
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
        want = (a.T if transpose_a else a).astype(np.float64) @ (b.T if transpose_b else b).astype(np.float64)
        got = f(a, b)
        assert got.shape == (m, n) and got.dtype == np.dtype(dtype) and got.flags.c_contiguous
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5 if dtype == "float32" else 1e-12)


def test_a_non_contiguous_operand_is_copied_first():
    a = gc.tensor("a", (6, 4), "float64")
    b = gc.tensor("b", (4, 3), "float64")
    f = gc.compile([a, b], a[::2] @ b, name="mm_strided")
    x, y = np.arange(24.0).reshape(6, 4), np.arange(12.0).reshape(4, 3) / 7
    np.testing.assert_allclose(f(x, y), x[::2] @ y, rtol=1e-13)
