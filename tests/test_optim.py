"""gc.shared values and gc.optim: each optimizer, compiled into the step, against a NumPy reference
of PyTorch's formulas over several steps (float64, a least-squares model whose gradient NumPy
computes exactly)."""
import numpy as np
import pytest

import graphc as gc

N, D, K, STEPS = 8, 3, 2, 4


def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((N, D)), rng.standard_normal((N, K)),
            rng.standard_normal((D, K)), rng.standard_normal(K))


def gradients(X, T, W, b):
    """d/dW, d/db of mean over the batch of sum((X W + b - T)^2)."""
    r = 2 * (X @ W + b - T) / N
    return X.T @ r, r.sum(0)


def sgd_reference(lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    velocity = {}

    def step(name, p, g, t):
        d = g + weight_decay * p
        if momentum:
            v = velocity[name] = momentum * velocity.get(name, 0) + d
            d = d + momentum * v if nesterov else v
        return p - lr * d
    return step


def adam_reference(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    moments = {}

    def step(name, p, g, t):
        m, v = moments.get(name, (0, 0))
        if not decoupled:
            g = g + weight_decay * p
        m, v = betas[0] * m + (1 - betas[0]) * g, betas[1] * v + (1 - betas[1]) * g * g
        moments[name] = m, v
        base = p - lr * weight_decay * p if decoupled else p
        return base - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
    return step


def rmsprop_reference(lr, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
    state = {}

    def step(name, p, g, t):
        s, a, buf = state.get(name, (0, 0, 0))
        s = alpha * s + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g
        denominator = np.sqrt(s - a * a if centered else s) + eps
        buf = momentum * buf + g / denominator
        state[name] = s, a, buf
        return p - lr * (buf if momentum else g / denominator)
    return step


CASES = {
    "sgd": (lambda loss, ps: gc.optim.sgd(loss, ps, lr=0.1), sgd_reference(0.1)),
    "sgd_momentum_decay": (lambda loss, ps: gc.optim.sgd(loss, ps, lr=0.05, momentum=0.9, weight_decay=0.01),
                           sgd_reference(0.05, momentum=0.9, weight_decay=0.01)),
    "sgd_nesterov": (lambda loss, ps: gc.optim.sgd(loss, ps, lr=0.05, momentum=0.8, nesterov=True),
                     sgd_reference(0.05, momentum=0.8, nesterov=True)),
    "adam": (lambda loss, ps: gc.optim.adam(loss, ps, lr=0.01), adam_reference(0.01)),
    "adam_l2": (lambda loss, ps: gc.optim.adam(loss, ps, lr=0.01, weight_decay=0.1),
                adam_reference(0.01, weight_decay=0.1)),
    "adamw": (lambda loss, ps: gc.optim.adamw(loss, ps, lr=0.01, weight_decay=0.1),
              adam_reference(0.01, weight_decay=0.1, decoupled=True)),
    "rmsprop": (lambda loss, ps: gc.optim.rmsprop(loss, ps, lr=0.01), rmsprop_reference(0.01)),
    "rmsprop_centered_momentum": (lambda loss, ps: gc.optim.rmsprop(loss, ps, lr=0.01, momentum=0.5, centered=True),
                                  rmsprop_reference(0.01, momentum=0.5, centered=True)),
}


@pytest.mark.parametrize("case", CASES)
def test_optimizer_matches_numpy_over_steps(case):
    build, reference = CASES[case]
    X, T, W0, b0 = data()
    x, t = gc.tensor("x", (None, D), "float64"), gc.tensor("t", (None, K), "float64")
    W, b = gc.shared(W0, name="W"), gc.shared(b0, name="b")
    loss = gc.mean(gc.sum((x @ W + b - t) ** 2, axis=1))
    step = gc.compile([x, t], loss, updates=build(loss, [W, b]), name=case)
    Wr, br = W0.copy(), b0.copy()
    for k in range(1, STEPS + 1):
        step(X, T)
        gW, gb = gradients(X, T, Wr, br)
        Wr, br = reference("W", Wr, gW, k), reference("b", br, gb, k)
        np.testing.assert_allclose(W.get_value(), Wr, rtol=1e-10, atol=1e-12, err_msg=f"W after step {k}")
        np.testing.assert_allclose(b.get_value(), br, rtol=1e-10, atol=1e-12, err_msg=f"b after step {k}")


def test_a_learning_rate_input_drives_a_schedule():
    X, T, W0, b0 = data()
    x, t, lr = gc.tensor("x", (None, D), "float64"), gc.tensor("t", (None, K), "float64"), gc.scalar("lr", "float32")
    W = gc.shared(W0, name="W")
    loss = gc.mean(gc.sum((x @ W - t) ** 2, axis=1))
    step = gc.compile([x, t, lr], loss, updates=gc.optim.sgd(loss, [W], lr=lr))
    Wr = W0.copy()
    for rate in (0.1, 0.05, 0.0):
        step(X, T, rate)
        Wr = Wr - np.float32(rate) * gradients(X, T, Wr, 0)[0]
        np.testing.assert_allclose(W.get_value(), Wr, rtol=1e-7)


def test_shared_values_are_read_without_passing_and_listed():
    W = gc.shared(np.arange(6.0).reshape(2, 3), name="W")
    count = gc.shared(np.zeros((), "int64"), name="count", trainable=False)
    x = gc.tensor("x", (None, 2), "float64")
    y = x @ W
    f = gc.compile([x], y, updates={count: count + 1})
    X = np.ones((1, 2))
    np.testing.assert_array_equal(f(X), X @ np.arange(6.0).reshape(2, 3))
    f(X)
    assert int(count.get_value()) == 2
    assert f.shared == {"read": [W, count], "written": [count]}
    W.set_value(np.ones((2, 3), "float32"))  # float32 data into a float64 value: within its kind
    np.testing.assert_array_equal(f(X), [[2.0, 2.0, 2.0]])
    assert gc.parameters(y) == [W]


def test_set_value_checks_shape_and_dtype_and_get_value_copies():
    W = gc.shared(np.zeros((2, 3), "float32"), name="W")
    with pytest.raises(gc.ShapeError, match=r"W.*\(3, 2\)"):
        W.set_value(np.zeros((3, 2)))
    with pytest.raises(gc.DTypeError, match="shared .i. is i32.3.: set_value got float64"):
        gc.shared(np.zeros(3, "int32"), name="i").set_value(np.zeros(3))
    W.get_value()[...] = 5
    assert not W.get_value().any()


def test_a_shared_value_passed_as_an_input_is_refused():
    W = gc.shared(np.zeros(3), name="W")
    with pytest.raises(gc.GraphcError, match="'W' is a gc.shared value"):
        gc.compile([W], W * 2)


def test_an_optimizer_refuses_plain_inputs_and_vector_losses():
    w = gc.tensor("w", (3,), "float64")
    with pytest.raises(gc.GraphcError, match="gc.shared"):
        gc.optim.sgd(gc.sum(w * w), [w], lr=0.1)
    W = gc.shared(np.zeros(3), name="W")
    with pytest.raises(gc.GraphcError, match="rank-0"):
        gc.optim.adam(W * 2, [W])


def test_dense_layers_create_seeded_parameters():
    x = gc.tensor("x", (None, 4), "float32")
    h = gc.nn.dense(x, 5, activation="tanh", name="one", seed=3)
    W, b = gc.parameters(h)
    assert (W.name, W.type.shape, b.name, b.dtype) == ("one.W", (4, 5), "one.b", "float32")
    np.testing.assert_array_equal(W.get_value(), gc.init.he_normal((4, 5), seed=3))
    assert not b.get_value().any()
    limit = np.sqrt(6 / (4 + 5))
    assert np.abs(gc.init.glorot_uniform((4, 5), seed=0)).max() <= limit


# ---- the cast policy ---------------------------------------------------------------------------------

def test_a_float64_array_into_a_float32_input_names_the_fix_or_is_cast_on_request():
    x = gc.tensor("x", (None, 3), "float32")
    refusing = gc.compile([x], gc.sum(x), name="refusing")
    with pytest.raises(gc.CallError, match=r"float64 where float32.*x\.astype\(np\.float32\).*cast=\"same_kind\""):
        refusing(np.ones((2, 3)))
    casting = gc.compile([x], gc.sum(x), cast="same_kind", name="casting")
    assert casting(np.full((2, 3), 0.5)) == 3.0
    with pytest.raises(gc.CallError, match="cast='safe' does not convert float64 to float32"):
        gc.compile([x], gc.sum(x), cast="safe", name="safe")(np.ones((2, 3)))


def test_an_updated_input_is_never_cast():
    w = gc.tensor("w", (3,), "float32")
    f = gc.compile([w], gc.sum(w), updates={w: w * 2}, cast="same_kind")
    with pytest.raises(gc.CallError, match="updated in place, so it is never converted"):
        f(np.ones(3))


def test_numpy_constants_take_the_tensors_dtype_or_are_refused():
    x = gc.tensor("x", (4,), "float32")
    assert (x + np.ones(4)).dtype == "float32"
    assert (x @ np.ones((4, 2))).dtype == "float32"
    assert (x * [1, 2, 3, 4]).dtype == "float32"
    i = gc.tensor("i", (3,), "int32")
    assert (i + np.arange(3)).dtype == "int32"
    with pytest.raises(gc.DTypeError, match=r"float64 array beside int32 tensors.*astype\(np.int32\)"):
        i + np.ones(3)
    with pytest.raises(gc.DTypeError, match="beyond int32's range"):
        i + np.array([2 ** 40, 0, 0])
