"""Differential fuzzing of the call path against NumPy: random update maps (permutations and views),
random call-time sizes (consistent ones must compute, inconsistent ones must raise), random layouts.
A bounded number of examples in CI; GRAPHC_FUZZ_EXAMPLES=500 runs more."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc

EXAMPLES = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0"))


def fuzz(examples):
    return settings(max_examples=EXAMPLES or examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# An update's value, as a function of the declared tensors (graphc) or the arrays (NumPy), by index.
VALUES = [
    ("X[j]", lambda xs, j, k: xs[j], lambda xs, j, k: xs[j]),
    ("X[j].T", lambda xs, j, k: xs[j].T, lambda xs, j, k: xs[j].T),
    ("reshape", lambda xs, j, k: gc.reshape(gc.reshape(xs[j], (4,)), (2, 2)), lambda xs, j, k: xs[j].reshape(4).reshape(2, 2)),
    ("row-swap", lambda xs, j, k: xs[j][::-1], lambda xs, j, k: xs[j][::-1]),
    ("X[j]*2+X[k]", lambda xs, j, k: xs[j] * 2.0 + xs[k], lambda xs, j, k: xs[j] * 2.0 + xs[k]),
    ("X[j]-X[k].T", lambda xs, j, k: xs[j] - xs[k].T, lambda xs, j, k: xs[j] - xs[k].T),
]
update_maps = st.lists(st.tuples(st.integers(0, 2), st.integers(0, len(VALUES) - 1), st.integers(0, 2), st.integers(0, 2)),
                       min_size=1, max_size=3, unique_by=lambda u: u[0])


@fuzz(6)
@given(update_maps)
def test_random_update_maps_read_the_values_from_before_the_call(plan):
    xs = [gc.tensor(f"x{i}", (2, 2), "float64") for i in range(3)]
    updates = {xs[t]: VALUES[v][1](xs, j, k) for t, v, j, k in plan}
    f = gc.compile(xs, gc.sum(xs[0]) + gc.sum(xs[1] * xs[2]), updates=updates)
    arrays = [np.arange(4.0).reshape(2, 2) + 10 * i for i in range(3)]
    old = [a.copy() for a in arrays]
    value = f(*arrays)
    assert float(value) == pytest.approx(old[0].sum() + (old[1] * old[2]).sum())
    want = [a.copy() for a in old]
    for t, v, j, k in plan:
        want[t] = VALUES[v][2](old, j, k)
    for got, expected in zip(arrays, want):
        np.testing.assert_array_equal(got, expected)


@pytest.fixture(scope="module")
def sized():
    x, y = gc.tensor("x", (None, 3), "float64"), gc.tensor("y", (None, 3), "float64")
    z, v = gc.tensor("z", (None,), "float64"), gc.tensor("v", (None,), "float64")
    return gc.compile([x, y, z, v], [gc.sum(x * y, axis=1), z[1:] - z[:-1] + v[1:]], name="sized")


@fuzz(60)
@given(st.integers(0, 5), st.integers(0, 5), st.integers(1, 6), st.integers(1, 6), st.integers(2, 4), st.integers(2, 4))
def test_call_time_sizes_agree_or_the_call_raises(sized, n_x, n_y, n_z, n_v, width_x, width_y):
    x, y = np.ones((n_x, width_x)), np.full((n_y, width_y), 2.0)
    z, v = np.arange(float(n_z)) ** 2, np.arange(float(n_v))
    if n_x != n_y or width_x != 3 or width_y != 3 or n_z != n_v:
        with pytest.raises((gc.CallError, gc.RunError), match="size|shape"):  # RunError: derived sizes (z[1:], v[1:])
            sized(x, y, z, v)
        return
    rows, differences = sized(x, y, z, v)
    np.testing.assert_array_equal(rows, (x * y).sum(axis=1))
    np.testing.assert_array_equal(differences, np.diff(z) + v[1:])


def _layout(array, kind):
    """array's values in the layout `kind` (a copy; the values are the same)."""
    if kind == "fortran":
        return np.asfortranarray(array)
    if kind == "strided":
        wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), array.dtype)
        wide[..., ::2] = array
        return wide[..., ::2]
    if kind == "read-only":
        out = array.copy()
        out.flags.writeable = False
        return out
    if kind == "big-endian":
        return array.astype(array.dtype.newbyteorder(">"))
    if kind == "unaligned":
        raw = np.zeros(array.nbytes + 1, np.uint8)[1:].view(array.dtype).reshape(array.shape)
        raw[...] = array
        return raw
    if kind == "reversed":
        return array[::-1].copy()[::-1]
    return array.copy()


LAYOUTS = ["c", "fortran", "strided", "read-only", "big-endian", "unaligned", "reversed"]


@pytest.fixture(scope="module")
def stepped():
    w, x = gc.tensor("w", (3, 2), "float32"), gc.tensor("x", (None, 3), "float32")
    loss = gc.mean(gc.tanh(x @ w))
    return gc.compile([w, x], loss, updates={w: w - 0.5 * gc.grad(loss, w)}, name="stepped")


@fuzz(40)
@given(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS), st.integers(1, 5))
def test_any_layout_gives_numpys_answer_and_targets_are_never_copied_silently(stepped, w_layout, x_layout, n):
    rng = np.random.default_rng(n)
    w0, x0 = rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32)
    w, x = _layout(w0, w_layout), _layout(x0, x_layout)
    if w_layout not in ("c",):  # an update target is written in place: only a plain C array will do
        with pytest.raises(gc.CallError, match="updated in place"):
            stepped(w, x)
        np.testing.assert_array_equal(w, w0)
        return
    t = np.tanh(x0.astype(np.float64) @ w0)
    loss = stepped(w, x)
    assert float(loss) == pytest.approx(t.mean(), rel=1e-5)
    grad = x0.T.astype(np.float64) @ (1 - t * t) / t.size
    np.testing.assert_allclose(w, w0 - 0.5 * grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, x0)  # inputs are never written
