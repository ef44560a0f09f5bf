"""Parallel loops: which loops use prange, and that chunked loops and partial sums give the right
values for any size and any thread count."""
import numpy as np
import pytest

import graphc as gc


@pytest.fixture(scope="module")
def chain():
    x, y = gc.tensor("x", (None,), "float32"), gc.tensor("y", (None,), "float32")
    f = gc.sum(gc.sigmoid(x * y + 0.5) * gc.tanh(x) + gc.exp(-x * x))
    return gc.compile([x, y], [f] + gc.grad(f, [x, y]), name="chain")


def reference(x, y):
    x, y = x.astype(np.float64), y.astype(np.float64)
    s, t, e = 1 / (1 + np.exp(-(x * y + 0.5))), np.tanh(x), np.exp(-x * x)
    return np.sum(s * t + e), s * (1 - s) * y * t + s * (1 - t * t) - 2 * x * e, s * (1 - s) * x * t


def test_call_time_sized_loops_run_in_parallel(chain):
    assert "prange(" in chain.source() and "accumulate(" in chain.source()


def test_a_kernel_calling_blas_keeps_its_loops_serial():
    """BLAS runs on threads of its own; Numba's parallel threads beside it would take its cores."""
    X, W = gc.tensor("X", (None, 4), "float64"), gc.tensor("W", (4, 3), "float64")
    scores = X @ W
    f = gc.compile([X, W], [gc.mean(gc.sum(scores * scores, axis=1))], name="blas_serial")  # mean: over a call-time size
    assert "matmul_into(" in f.source() and "prange(" not in f.source()
    X_value, W_value = np.arange(8.0).reshape(2, 4), np.ones((4, 3))
    (value,) = f(X_value, W_value)
    assert float(value) == pytest.approx(np.mean(np.sum((X_value @ W_value) ** 2, axis=1)))


@pytest.mark.parametrize("n", [1, 5, 65_537, 1_000_003])
def test_values_for_every_chunking(chain, n):
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    value, dx, dy = chain(x, y)
    want_value, want_dx, want_dy = reference(x, y)
    assert value.dtype == np.float32 and dx.dtype == np.float32
    assert float(value) == pytest.approx(want_value, rel=1e-6)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dy, want_dy, rtol=1e-5, atol=1e-6)


def test_same_result_on_one_thread_and_on_all(chain):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(400_000, dtype=np.float32), rng.standard_normal(400_000, dtype=np.float32)
    threads = gc.get_num_threads()
    try:
        gc.set_num_threads(1)
        one = chain(x, y)
    finally:
        gc.set_num_threads(threads)
    every = chain(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(one, every))  # chunks depend on the size only


def test_fixed_small_loops_stay_serial():
    a = gc.tensor("a", (None, 16), "float64")
    f = gc.compile([a], gc.sum(gc.exp(a), axis=1), name="rows")
    assert "prange(" not in f.source()
    x = np.random.default_rng(0).standard_normal((3, 16))
    np.testing.assert_allclose(f(x), np.exp(x).sum(axis=1), rtol=1e-13)


def test_freed_memory_is_kept_for_the_next_call(chain):
    import platform
    from graphc.runtime.allocator import keep_freed_memory
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's malloc only")
    assert keep_freed_memory() and keep_freed_memory()  # tuned once (compiling did it), then a no-op
