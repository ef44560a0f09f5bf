"""The per-call path: the generated binder converts and checks only what Numba's dispatcher can't."""
import timeit

import numpy as np
import pytest

import graphc as gc


@pytest.fixture(scope="module")
def lecture():
    x, y, z = (gc.scalar(k, "float64") for k in "xyz")
    f = (x + y) * z
    return gc.compile([x, y, z], [f] + gc.grad(f, [x, y, z]), name="lecture")


@pytest.fixture(scope="module")
def counted():
    n = gc.scalar("n", "int64")
    v = gc.tensor("v", (None,), "float32")
    return gc.compile([n, v], gc.sum(v) * gc.cast(n, "float32"), name="counted")


def test_scalars_accept_python_and_numpy_numbers(lecture):
    for args in [(-2.0, 5.0, -4.0), (-2, 5, -4), (np.float32(-2), np.float64(5), np.array(-4.0))]:
        out = lecture(*args)
        assert [float(o) for o in out] == [-12.0, -4.0, -4.0, 3.0]
        assert all(isinstance(o, np.ndarray) and o.shape == () and o.dtype == np.float64 for o in out)


def test_int_input_rejects_a_float_instead_of_truncating(counted):
    v = np.ones(3, np.float32)
    assert float(counted(2, v)) == 6.0
    with pytest.raises(gc.CallError, match="expects a scalar of int64"):
        counted(2.5, v)


def test_single_output_is_returned_bare_with_its_dtype(counted):
    out = counted(np.int64(3), np.ones(4, np.float32))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == () and float(out) == 12.0


def test_wrong_arguments_reach_the_slow_path_errors(lecture):
    with pytest.raises(gc.CallError, match="takes 3 arguments"):
        lecture(1.0, 2.0, 3.0, 4.0)
    with pytest.raises(gc.CallError, match="no input named w"):
        lecture(1.0, 2.0, w=3.0)


def test_binder_source_is_straight_line(lecture):
    source = lecture.binder_source()
    assert "for " not in source and "{" not in source  # no per-call loops or dict building
    assert source.count("_kernel(") == 1


def test_call_overhead_is_microseconds(lecture):
    """A regression guard, generous for a busy shared machine: the measured figure is ~1 µs."""
    lecture(1.0, 2.0, 3.0)
    best = min(timeit.repeat(lambda: lecture(1.0, 2.0, 3.0), number=2000, repeat=5)) / 2000
    assert best < 20e-6, f"{best * 1e6:.1f} µs per call"
