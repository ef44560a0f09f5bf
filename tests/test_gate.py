"""User-defined gates (graphc/gate.py): one named node, the user's gradient rule as its backward
(checked against numerical gradients), fusion after inlining, second order, saving."""
import numpy as np
import pytest

import graphc as gc
from graphc.gate import gate

from numeric_gradient import central_differences


@gate
def my_sigmoid(x):
    return 1 / (1 + gc.exp(-x))


@my_sigmoid.defvjp
def _sigmoid_rule(g, out, x):
    return (g * out * (1 - out),)  # the lecture's sigmoid gate: the backward reuses the output


@gate
def scaled_tanh(x, w):  # no rule: the gate differentiates its body
    return gc.tanh(x * w) * w


@gate(grad=lambda g, out, x: (g * 3.0,))
def wrong_square(x):  # a rule that is not the body's derivative, to see the rule is what runs
    return x * x


X = np.array([-2.0, -0.3, 0.0, 0.7, 1.9])
W = np.array([0.5, -1.5, 2.0, 0.1, -0.4])


def loss_of(value):
    return gc.sum(value * gc.constant(np.arange(1.0, 6.0)))


@pytest.fixture(scope="module")
def compiled():
    x, w = gc.tensor("x", (None,), "float64"), gc.tensor("w", (None,), "float64")
    sig = loss_of(my_sigmoid(x))
    both = loss_of(scaled_tanh(x, w))
    wrong = loss_of(wrong_square(x))
    first = gc.grad(sig, x)
    second = gc.grad(gc.sum(first * first), x)  # differentiates the rule's ops and the gate again
    outputs = [sig, first, second, both, *gc.grad(both, [x, w]), gc.grad(wrong, x)]
    return {"x": x, "w": w, "sig": sig, "first": first, "both": both, "wrong": wrong,
            "f": gc.compile([x, w], outputs, name="gates")}


def numeric(function, *args, k=0):
    return central_differences(lambda arrays: function(*arrays), list(args), k)


def test_the_gate_is_one_named_node_until_it_is_inlined(compiled):
    f = compiled["f"]
    assert "gate[my_sigmoid] %0" in f.dump(after="autodiff")
    assert "gate[" not in f.dump(after="inline_gates") and "gate" not in [f.ir.op(n) for n in f.ir.g]


def test_the_rule_gives_the_gradient_and_matches_numerical_gradients(compiled):
    _, first, _, _, _, _, wrong_grad = compiled["f"](X, W)
    s = 1 / (1 + np.exp(-X))
    np.testing.assert_allclose(first, np.arange(1.0, 6.0) * s * (1 - s), rtol=1e-13)
    np.testing.assert_allclose(wrong_grad, 3.0 * np.arange(1.0, 6.0), rtol=1e-15)  # the rule, not 2x
    sigmoid_loss = lambda x: float(np.sum(np.arange(1.0, 6.0) / (1 + np.exp(-x))))  # noqa: E731
    np.testing.assert_allclose(first, numeric(sigmoid_loss, X), rtol=1e-7)


def test_check_grad_checks_the_users_rule(compiled):
    x = compiled["x"]
    assert gc.check_grad(compiled["sig"], [x], {x: X})
    report = gc.check_grad(compiled["wrong"], [x], {x: X})
    assert not report and "FAIL" in str(report)


def test_without_a_rule_the_body_is_differentiated(compiled):
    _, _, _, value, dx, dw, _ = compiled["f"](X, W)
    weights = np.arange(1.0, 6.0)
    body = lambda x, w: float(np.sum(weights * np.tanh(x * w) * w))  # noqa: E731
    assert value == pytest.approx(body(X, W), rel=1e-14)
    np.testing.assert_allclose(dx, numeric(body, X, W, k=0), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(dw, numeric(body, X, W, k=1), rtol=1e-7, atol=1e-10)


def test_second_order_through_the_rule(compiled):
    second = compiled["f"](X, W)[2]
    weights = np.arange(1.0, 6.0)

    def squared_first(x):
        s = 1 / (1 + np.exp(-x))
        return float(np.sum((weights * s * (1 - s)) ** 2))
    np.testing.assert_allclose(second, numeric(squared_first, X), rtol=1e-6, atol=1e-9)


def test_the_body_fuses_like_built_in_ops():
    x = gc.tensor("x", (None,), "float32")
    f = gc.compile([x], my_sigmoid(x) * 2 + 1, name="gate_fused")
    ops = [f.ir.op(n) for n in f.ir.order() if f.ir.op(n) != "input"]
    assert ops == ["fused"], f.dump()
    np.testing.assert_allclose(f(X.astype(np.float32)), 2 / (1 + np.exp(-X)) + 1, rtol=1e-6)


def test_gates_round_trip_through_json_and_rules_are_part_of_the_key():
    from graphc.runtime import cache
    x = gc.tensor("x", (3,), "float64")
    declaration = gc.from_json(gc.to_json([gc.grad(gc.sum(my_sigmoid(x)), x)], inputs=[x]))
    np.testing.assert_allclose(declaration.compile()(X[:3])[0], (lambda s: s * (1 - s))(1 / (1 + np.exp(-X[:3]))),
                               rtol=1e-14)

    def key(rule):
        g = gate(lambda v: v * v, name="square", grad=rule)
        graph = gc.lower([g(x)], [x])
        return cache.make_key(cache.canonical_text(graph), "")
    assert key(lambda g, out, v: (g * 2 * v,)) != key(lambda g, out, v: (g * 3 * v,))


def test_mistakes_in_a_gate_are_named():
    x, w = gc.tensor("x", (3,), "float64"), gc.tensor("w", (3,), "float64")
    closes_over = gate(lambda v: v * w, name="closes_over")
    with pytest.raises(gc.GraphcError, match="gate closes_over: its body uses a tensor that is not one of the gate's inputs"):
        closes_over(x)
    too_many = gate(lambda v: v * 2, name="too_many", grad=lambda g, out, v: (g, g))
    with pytest.raises(gc.GradientError, match="gate too_many: its gradient rule returned 2 gradients for 1 inputs"):
        too_many(x)
    with pytest.raises(gc.GraphcError, match="must return one graphc tensor"):
        gate(lambda v: 3.0, name="number")(x)
    with pytest.raises(gc.ShapeError, match="gate bad_shapes, its body"):
        gate(lambda v: v @ v.T @ gc.constant(np.ones((2, 2))), name="bad_shapes")(gc.tensor("m", (3, 3), "float64"))
