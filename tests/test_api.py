"""The public API contract of issue 3."""
import numpy as np
import pytest

import graphc as gc


@pytest.fixture(scope="module")
def model():
    x = gc.tensor("x", shape=(None, 3), dtype="float64")
    w = gc.tensor("w", shape=(3,), dtype="float64")
    b = gc.scalar("b", dtype="float64")
    p = gc.sigmoid(x @ w + b)
    loss = gc.mean((p - 1.0) ** 2)
    gw, gb = gc.grad(loss, [w, b])
    f = gc.compile([x, w, b], [loss, gw, gb])
    return dict(x=x, w=w, b=b, loss=loss, gw=gw, gb=gb, f=f)


def data(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)), rng.standard_normal(3), np.array(0.3)


def reference(X, W, B):
    p = 1 / (1 + np.exp(-(X @ W + B)))
    loss = np.mean((p - 1) ** 2)
    dz = 2 * (p - 1) / len(X) * p * (1 - p)
    return loss, X.T @ dz, dz.sum()


def test_values_and_gradients_match_hand_derived(model):
    X, W, B = data()
    out = model["f"](X, W, B)
    for got, want in zip(out, reference(X, W, B)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert out[0].shape == () and isinstance(out[0], np.ndarray)


def test_keyword_call_and_other_batch_sizes(model):
    for n in (1, 7, 300):
        X, W, B = data(n, seed=n)
        np.testing.assert_allclose(model["f"](x=X, w=W, b=B)[1], reference(X, W, B)[1], rtol=1e-12)


def test_updates_write_in_place(model):
    m = model
    step = gc.compile([m["x"], m["w"], m["b"]], [m["loss"]], updates={m["w"]: m["w"] - 0.1 * m["gw"], m["b"]: m["b"] - 0.1 * m["gb"]})
    X, W, B = data()
    W0, B0 = W.copy(), B.copy()
    (loss,) = step(X, W, B)
    want_loss, gw, gb = reference(X, W0, B0)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    np.testing.assert_allclose(W, W0 - 0.1 * gw, rtol=1e-12)
    np.testing.assert_allclose(B, B0 - 0.1 * gb, rtol=1e-12)


def test_inspection(model):
    f = model["f"]
    assert "sigmoid" in f.dump() and "# backward" in f.dump()
    assert "grad" in f.dump(after="input") and "grad" not in f.dump(after="autodiff").split("->")[1].split("# backward")[0].replace("# grad of", "")
    assert "def kernel" in f.source()
    assert f.graph.number_of_nodes() > 5


def test_check_grad(model):
    X, W, B = data()
    report = gc.check_grad(model["loss"], [model["w"], model["b"]], {model["x"]: X, model["w"]: W, model["b"]: B})
    assert report, str(report)
    assert "w" in str(report)


def test_wrong_dtype_is_a_graphc_error(model):
    X, W, B = data()
    with pytest.raises(gc.CallError, match="float32"):
        model["f"](X.astype(np.float32), W, B)
    with pytest.raises(gc.CallError, match="missing"):
        model["f"](X, W)
    with pytest.raises(gc.CallError, match="axis 1 must be 3"):
        model["f"](np.ones((4, 2)), W, B)


def test_the_same_structure_written_on_another_line_dumps_its_own_line():
    def build():
        a = gc.scalar("a", "float64")
        return a, gc.exp(a)

    first_a, first = build()
    second_a = gc.scalar("a", "float64")
    second = gc.exp(second_a)  # the same graph, written on this line
    f1 = gc.compile([first_a], [first], name="same_structure")
    f2 = gc.compile([second_a], [second], name="same_structure")
    assert f"test_api.py:{build.__code__.co_firstlineno + 2}" in f1.dump()
    line = second_a.loc.split(":")[1]
    assert f"test_api.py:{int(line) + 1}" in f2.dump() and f"test_api.py:{int(line) + 1}" not in f1.dump()


def test_compile_errors_name_the_callers_line():
    a, b = gc.scalar("a", "float64"), gc.scalar("b", "float64")
    with pytest.raises(gc.GraphcError, match=r"inputs not passed to gc.compile: b \(declared at test_api.py:\d+\) \(at test_api.py:\d+\)"):
        gc.compile([a], [a * b])
    with pytest.raises(gc.GraphcError, match=r"update target .* \(at test_api.py:\d+\)"):
        gc.compile([a], [a], updates={b: a})
