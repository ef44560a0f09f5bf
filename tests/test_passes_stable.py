"""Stable rewrites survive extreme inputs (magnitude 1000) where the naive formula overflows."""
import numpy as np
import pytest

import graphc as gc

from passes_helpers import reference

BIG = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 999.0, 1000.0]])
LABELS = np.array([1, 2])


def stable_cross_entropy(z, labels):
    top = z.max(axis=1, keepdims=True)
    log_probs = z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    probs = np.exp(log_probs)
    onehot = np.eye(z.shape[1])[labels]
    return -log_probs[np.arange(len(z)), labels].mean(), (probs - onehot) / len(z)


def naive_softmax_ce(z, labels):
    p = gc.exp(z) / gc.sum(gc.exp(z), axis=1, keepdims=True)
    return -gc.mean(gc.log(gc.take_along_axis(p, labels[:, None], axis=1)))


def one_hot_ce(z, labels):
    return -gc.mean(gc.sum(gc.one_hot(labels, 3, "float64") * gc.log_softmax(z, axis=1), axis=1))


@pytest.fixture(scope="module", params=[(naive_softmax_ce, True), (one_hot_ce, False)], ids=["naive", "one_hot"])
def cross_entropy(request):
    z, labels = gc.tensor("z", (None, 3), "float64"), gc.tensor("labels", (None,), "int64")
    build, naive = request.param
    loss = build(z, labels)
    grads = [loss, gc.grad(loss, z)]
    return [z, labels], grads, gc.compile([z, labels], grads), naive


def test_naive_cross_entropy_becomes_the_gate_and_stays_finite(cross_entropy):
    inputs, outputs, f, naive = cross_entropy
    assert "softmax_cross_entropy" in f.dump() and "log " not in f.dump()
    loss, dz = f(BIG, LABELS)
    want_loss, want_dz = stable_cross_entropy(BIG, LABELS)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    np.testing.assert_allclose(dz, want_dz, rtol=1e-12, atol=1e-15)


def test_naive_cross_entropy_overflows_without_the_rewrite(cross_entropy):
    inputs, outputs, f, naive = cross_entropy
    if not naive:
        pytest.skip("the one-hot form is written with log_softmax: stable already")
    loss, dz = reference(outputs, inputs, BIG, LABELS)
    assert not np.isfinite(loss) or not np.all(np.isfinite(dz))


def test_cross_entropy_gate_matches_on_ordinary_inputs(cross_entropy):
    inputs, outputs, f, naive = cross_entropy
    z = np.random.default_rng(0).standard_normal((5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    for got, want in zip(f(z, labels), reference(outputs, inputs, z, labels)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.fixture(scope="module")
def naive_exps():
    """Naive sigmoid, log-sigmoid and log-sum-exp, with gradients, in one kernel."""
    x = gc.tensor("x", (3,), "float64")
    s = 1 / (1 + gc.exp(-x))
    loss = gc.sum(s) + gc.sum(gc.log(1 / (1 + gc.exp(-x)))) + gc.log(gc.sum(gc.exp(x)))
    outputs = [s, loss, gc.grad(loss, x)]
    return [x], outputs, gc.compile([x], outputs)


def test_naive_exps_survive_magnitude_1000(naive_exps):
    inputs, outputs, f = naive_exps
    x = np.array([-1000.0, 1000.0, 0.0])
    s, loss, dx = f(x)
    np.testing.assert_allclose(s, [0.0, 1.0, 0.5])
    lse = 1000.0 + np.log1p(np.exp(-1000.0) + np.exp(-2000.0))
    np.testing.assert_allclose(loss, 1.5 + (-1000.0 + 0.0 - np.log(2.0)) + lse, rtol=1e-12)
    softmax = np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(dx, [0.0, 0.0, 0.25] + (1 - np.array([0.0, 1.0, 0.5])) + softmax, atol=1e-12)
    want = reference(outputs, inputs, x)
    assert not np.all(np.isfinite(want[1])) or not np.all(np.isfinite(want[2])), "the naive graph should overflow"


def test_naive_exps_match_on_ordinary_inputs(naive_exps):
    inputs, outputs, f = naive_exps
    x = np.array([-0.5, 0.25, 2.0])
    for got, want in zip(f(x), reference(outputs, inputs, x)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sigmoid_gate_is_one_node_forward_and_one_backward():
    """The lecture's neuron: forward one fused sigmoid node, backward one node reading only the saved s."""
    w, x = gc.tensor("w", (3,), "float64"), gc.tensor("x", (2,), "float64")
    f = 1.0 / (1.0 + gc.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    fn = gc.compile([w, x], [f] + gc.grad(f, [w, x]))
    graph = fn.ir
    forward = [n for n in graph.g.nodes if graph[n]["phase"] == "forward" and graph.op(n) not in ("input", "getitem")]
    assert len(forward) == 1 and "sigmoid(" in graph.attrs(forward[0])["body"].text()
    (gate,) = graph.users(forward[0])  # the only reader of s (besides the output list)
    assert graph[gate]["phase"] == "backward" and graph.args(gate) == (forward[0],), "ds reads only the saved s"
    assert graph.attrs(gate)["body"].text() == "i0*(1-i0)"
    assert "exp" not in fn.dump().split("# backward")[1]
    values = fn(np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0]))
    np.testing.assert_allclose(values[0], 0.7310585786300049, rtol=1e-14)
    np.testing.assert_allclose(values[1], [-0.19661193, -0.39322387, 0.19661193], rtol=1e-7)
    np.testing.assert_allclose(values[2], [0.39322387, -0.5898358], rtol=1e-7)
