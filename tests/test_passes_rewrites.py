"""Each rewrite fires on its pattern and not on near misses; tags, options, provenance, the step limit."""
import numpy as np
import pytest

import graphc as gc
from graphc import passes
from graphc.errors import PassError
from graphc.passes.rewrite import EXACT, STABILIZING, VALUE_CHANGING, Var, apply_rules, op, rule
from graphc.passes.simplify import RULES as SIMPLIFY
from graphc.passes.stabilize import RULES as STABILIZE

from passes_helpers import reference


def x_(shape=(2, 3)):
    return gc.tensor("x", shape, "float64")


def fired(expression, shape=(2, 3), options=None, extra=()):
    """Rewrites fired by canonicalize + simplify + stabilize on `expression(x)`."""
    x = x_(shape)
    graph = gc.lower([expression(x)], [x] + list(extra))
    graph.options = dict(options or {})
    counts = {}
    for p in passes.PIPELINE[:3]:
        graph, before = p.run(graph), graph
        for name, k in (getattr(graph, "fired", {}) if graph is not before else {}).items():
            counts[name] = counts.get(name, 0) + k
        graph.verify(gc.ops.OPS)
    return counts, graph


labels = gc.tensor("labels", (2,), "int64")


def _lowered(expression):
    x = x_()
    return gc.lower([expression(x)], [x, labels])

FIRES = [
    ("sigmoid", lambda x: 1 / (1 + gc.exp(-x))),
    ("sigmoid", lambda x: 1.0 / (gc.exp(-x) + 1.0)),
    ("sigmoid-ratio", lambda x: gc.exp(x) / (1 + gc.exp(x))),
    ("log-sigmoid", lambda x: gc.log(gc.sigmoid(x))),
    ("log-one-minus-sigmoid", lambda x: gc.log(1 - gc.sigmoid(x))),
    ("softmax", lambda x: gc.exp(x) / gc.sum(gc.exp(x), axis=1, keepdims=True)),
    ("log-softmax", lambda x: gc.log(gc.softmax(x, axis=1))),
    ("log-take-softmax", lambda x: gc.log(gc.take_along_axis(gc.softmax(x), labels[:, None], 1))),
    ("log-index-softmax", lambda x: gc.log(gc.softmax(x)[:, 0])),
    ("logsumexp", lambda x: gc.log(gc.sum(gc.exp(x), axis=1))),
    ("cross-entropy", lambda x: -gc.mean(gc.take_along_axis(gc.log_softmax(x, axis=1), labels[:, None], 1))),
    ("cross-entropy", lambda x: gc.mean(-gc.log(gc.take_along_axis(gc.softmax(x), labels[:, None], 1)))),
    ("cross-entropy", lambda x: -gc.mean(gc.log(gc.take_along_axis(
        gc.exp(x) / gc.sum(gc.exp(x), axis=1, keepdims=True), labels[:, None], 1)))),
    ("cross-entropy", lambda x: 1e-3 * gc.sum(x * x) - gc.mean(gc.take_along_axis(gc.log_softmax(x, axis=1), labels[:, None], 1))),
    ("cross-entropy-one-hot", lambda x: -gc.mean(gc.sum(gc.one_hot(labels, 3, "float64") * gc.log_softmax(x, 1), axis=1))),
    ("mul-one", lambda x: x * 1), ("mul-one", lambda x: 1.0 * x), ("div-one", lambda x: x / 1),
    ("add-zero", lambda x: x + 0), ("sub-zero", lambda x: x - 0.0), ("neg-neg", lambda x: -(-x)),
    ("mul-minus-one", lambda x: x * -1), ("add-neg", lambda x: gc.exp(x) + (-x)), ("sub-neg", lambda x: gc.exp(x) - (-x)),
    ("pow-two", lambda x: x ** 2), ("pow-one", lambda x: x ** 1),
    ("mean-neg", lambda x: gc.mean(-x)), ("sum-neg", lambda x: gc.sum(-x, axis=0)),
    ("transpose-transpose", lambda x: gc.exp(x.T.T)), ("transpose-identity", lambda x: gc.transpose(x, (0, 1))),
    ("reshape-reshape", lambda x: gc.reshape(gc.reshape(x, (6,)), (3, 2))), ("reshape-noop", lambda x: gc.reshape(x, (2, 3))),
    ("broadcast-noop", lambda x: gc.broadcast_to(x, (2, 3))), ("cast-noop", lambda x: gc.cast(x, "float64")),
    ("log-exp", lambda x: gc.log(gc.exp(x))),
    ("sum-of-broadcast", lambda x: gc.sum(gc.broadcast_to(x[0], (4, 3)), axis=0)),
]

NEAR_MISSES = [
    ("sigmoid", lambda x: 1 / (2 + gc.exp(-x))), ("sigmoid", lambda x: 1 / (1 - gc.exp(-x))),
    ("sigmoid", lambda x: 2 / (1 + gc.exp(-x))), ("sigmoid", lambda x: 1 / (1 + gc.exp(x))),
    ("sigmoid-ratio", lambda x: gc.exp(x + 1) / (1 + gc.exp(x))), ("sigmoid-ratio", lambda x: gc.exp(x) / (2 + gc.exp(x))),
    ("log-sigmoid", lambda x: gc.log(gc.tanh(x))), ("log-one-minus-sigmoid", lambda x: gc.log(2 - gc.sigmoid(x))),
    ("softmax", lambda x: gc.exp(x + 1) / gc.sum(gc.exp(x), axis=1, keepdims=True)),
    ("softmax", lambda x: gc.exp(x) / gc.sum(gc.exp(x), axis=(0, 1), keepdims=True)),
    ("log-softmax", lambda x: gc.log(gc.softmax(x) + 1)),
    ("logsumexp", lambda x: gc.log(gc.sum(gc.exp(x) + 1, axis=1))), ("logsumexp", lambda x: gc.log(gc.mean(gc.exp(x), axis=1))),
    ("cross-entropy", lambda x: -gc.sum(gc.take_along_axis(gc.log_softmax(x, axis=1), labels[:, None], 1))),
    ("cross-entropy", lambda x: -gc.mean(gc.take_along_axis(gc.log_softmax(x, axis=1), labels[:, None], 1) * 2)),
    ("cross-entropy", lambda x: -gc.mean(gc.take_along_axis(gc.log_softmax(x, axis=1) + 1, labels[:, None], 1))),
    ("mul-one", lambda x: x * 1.5), ("add-zero", lambda x: x + 1e-300), ("neg-neg", lambda x: -gc.abs(-x)),
    ("pow-two", lambda x: x ** 3), ("log-exp", lambda x: gc.log(gc.exp(x) + 1)),
    ("transpose-identity", lambda x: gc.reshape(x, (3, 2)).T), ("reshape-noop", lambda x: gc.reshape(x, (3, 2))),
    ("sum-of-broadcast", lambda x: gc.sum(gc.broadcast_to(x[0], (4, 3)), axis=1)),
    ("mul-one", lambda x: gc.sum(x, axis=0) * gc.broadcast_to(1.0, (2, 3))),  # x*1 that broadcasts: shapes differ
]


@pytest.mark.parametrize("name, expression", FIRES, ids=[f"{n}-{k}" for k, (n, _) in enumerate(FIRES)])
def test_rule_fires_on_its_pattern_and_keeps_values(name, expression):
    counts, graph = fired(expression, extra=[labels])
    assert counts.get(name, 0) >= 1, counts
    x, lab = np.random.default_rng(1).standard_normal((2, 3)), np.array([2, 0])
    with np.errstate(all="ignore"):
        want = gc.interpret(_lowered(expression), x, lab)[0][0]
        got = gc.interpret(graph, x, lab)[0][0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, expression", NEAR_MISSES, ids=[f"{n}-{k}" for k, (n, _) in enumerate(NEAR_MISSES)])
def test_rule_does_not_fire_on_a_near_miss(name, expression):
    counts, _ = fired(expression, extra=[labels])
    assert name not in counts, counts


def test_every_rule_is_tagged_and_located_and_tested():
    tested = {name for name, _ in FIRES} | {"exp-log", "sub-self", "mul-zero", "sum-one-hot", "size-of-operand"}
    for r in SIMPLIFY + STABILIZE:
        assert r.tag in (EXACT, STABILIZING, VALUE_CHANGING)
        assert r.loc.endswith(".py:" + r.loc.rsplit(":", 1)[1]) and r.loc.startswith(("simplify", "stabilize"))
        assert r.name in tested, f"rule {r.name} has no test"
    assert all(r.tag == STABILIZING for r in STABILIZE)


VALUE_CHANGING_CASES = [
    ("exp-log", lambda x: gc.exp(gc.log(x))), ("sub-self", lambda x: gc.exp(x) - gc.exp(x)),
    ("mul-zero", lambda x: gc.exp(x) * 0), ("sum-one-hot", lambda x: gc.sum(x * gc.one_hot(labels, 3, "float64"), axis=1)),
]


@pytest.mark.parametrize("name, expression", VALUE_CHANGING_CASES)
def test_value_changing_rules_only_on_request(name, expression):
    assert name not in fired(expression, extra=[labels])[0]
    counts, graph = fired(expression, options={"value_changing": True}, extra=[labels])
    assert counts.get(name) == 1
    x, lab = np.abs(np.random.default_rng(2).standard_normal((2, 3))), np.array([1, 2])
    want = gc.interpret(_lowered(expression), x, lab)[0][0]
    np.testing.assert_allclose(gc.interpret(graph, x, lab)[0][0], want, rtol=1e-12, atol=1e-14)


def test_value_changing_option_reaches_the_compiled_function():
    x = x_((3,))
    y = gc.exp(gc.log(x))
    assert "exp" in gc.compile([x], [y]).dump()
    f = gc.compile([x], [y], options={"value_changing": True})
    assert "exp" not in f.dump() and "exp-log" in f.report()


def test_rewrites_keep_the_users_line_and_phase():
    x = x_()
    y = 1 / (1 + gc.exp(-x)); line = __import__("inspect").currentframe().f_lineno  # noqa: E702
    graph = passes.stabilize(passes.canonicalize(gc.lower([y], [x])))
    (node,) = [n for n in graph.g.nodes if graph.op(n) == "sigmoid"]
    assert graph[node]["loc"] == f"test_passes_rewrites.py:{line}" and graph[node]["phase"] == "forward"


def test_gradient_targets_are_never_rewritten_away():
    """grad wrt h where h = exp(x) is used through log(h): log(exp(x)) -> x would lose h."""
    x = x_((3,))
    h = gc.exp(x)
    loss = gc.sum(gc.log(h))
    (gh,) = gc.grad(loss, [h])
    X = np.array([0.1, 0.5, -1.0])
    from passes_helpers import optimized
    got = gc.interpret(optimized([gh], [x]).graph, X)[0][0]
    np.testing.assert_allclose(got, reference([gh], [x], X)[0], rtol=1e-12)
    np.testing.assert_allclose(got, np.exp(-X), rtol=1e-12)


def test_a_rewrite_loop_is_a_pass_error_naming_the_rule():
    x = x_((3,))
    graph = gc.lower([gc.exp(x)], [x])
    forever = rule("exp-forever", op("exp", Var("x")), lambda m: gc.exp(-(-m.x)), EXACT)  # neg-neg is not in this table
    with pytest.raises(PassError, match=r"exp-forever x\d+ \(test_passes_rewrites.py:\d+\)"):
        apply_rules(graph, [forever], "test")


def test_rule_counters_count_fires():
    r = next(r for r in STABILIZE if r.name == "sigmoid")
    before = r.fired
    fired(lambda x: 1 / (1 + gc.exp(-x)))
    assert r.fired == before + 1


def test_size_of_counts_an_operand_so_the_value_can_fuse():
    """mean's gradient counts elements with size_of(x*x): counting x instead leaves x*x one reader."""
    from passes_helpers import optimized
    x = gc.tensor("x", (None, 4), "float64")
    result = optimized([gc.grad(gc.mean(x * x), x)], [x])
    assert "size-of-operand" in result.report()
    (size,) = result.graph.nodes_with("size_of")
    assert result.graph.args(size) == (result.graph.inputs[0],)


def test_size_of_never_counts_an_integer_operand():
    """size_of needs a float operand: a picked value's count must not move to the int labels."""
    from passes_helpers import optimized
    x, labels = gc.tensor("x", (None, 3), "float64"), gc.tensor("labels", (None,), "int64")
    picked = gc.take_along_axis(x, labels[:, None], 1)
    result = optimized([gc.grad(gc.mean(picked), x)], [x, labels])
    for node in result.graph.nodes_with("size_of"):
        assert result.graph.type(result.graph.args(node)[0]).dtype == "float64"
