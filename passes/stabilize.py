"""Numerically stable rewrites: naive formulas become the gates that compute them safely.

Runs before autodiff, so the backward is derived from the gates (s*(1-s) for sigmoid,
(softmax - onehot)/N for the cross-entropy gate) instead of from an exp-laden expression.
All rules are tagged stabilizing: equal in exact arithmetic, different only where the naive
form overflows (exp(1000) = inf) and the gate doesn't.
"""
from graphc import functions as F
from graphc.tensor import apply
from graphc.types import same_shape

from .rewrite import STABILIZING, Const, Var, apply_rules, op, rule

X, I, L = Var("x"), Var("indices"), Var("labels")
AXIS, AXES, KEEP = Var("axis"), Var("axes"), Var("keepdims")


def _softmax_axis_ok(m):
    return len(m.axes) == 1


def _cross_entropy_ok(m):
    """Rank-2 logits, classes on axis 1, one index per row."""
    return m.x.ndim == 2 and m.indices.ndim == 2 and same_shape(m.indices.shape, (m.x.shape[0], 1))


def _one_hot_cross_entropy_ok(m):
    hot = m.node_type("hot")
    return m.x.ndim == 2 and m.labels.ndim == 1 and hot.shape == m.x.type.shape and hot.dtype == m.x.dtype


def _cross_entropy(m):
    return apply("softmax_cross_entropy", m.x, m.indices)


def _one_hot_cross_entropy(m):
    return apply("softmax_cross_entropy", m.x, F.getitem(m.labels, (slice(None), None)))


EXP_X = op("exp", X)
LOG_SOFTMAX_X = op("log_softmax", X, axis=1)

RULES = [
    rule("sigmoid", op("div", Const(1), op("add", op("exp", op("neg", X)), Const(1))), lambda m: F.sigmoid(m.x), STABILIZING),
    rule("sigmoid-ratio", op("div", EXP_X, op("add", EXP_X, Const(1))), lambda m: F.sigmoid(m.x), STABILIZING),
    rule("log-sigmoid", op("log", op("sigmoid", X)), lambda m: -F.softplus(-m.x), STABILIZING),
    rule("log-one-minus-sigmoid", op("log", op("sub", Const(1), op("sigmoid", X))), lambda m: -F.softplus(m.x), STABILIZING),
    rule("softmax", op("div", EXP_X, op("sum", EXP_X, axes=AXES, keepdims=True)),
         lambda m: F.softmax(m.x, m.axes[0]), STABILIZING, when=_softmax_axis_ok),
    rule("log-softmax", op("log", op("softmax", X, axis=AXIS)), lambda m: F.log_softmax(m.x, m.axis), STABILIZING),
    rule("log-take-softmax", op("log", op("take_along_axis", op("softmax", X, axis=AXIS), I, axis=Var("take_axis"))),
         lambda m: F.take_along_axis(F.log_softmax(m.x, m.axis), m.indices, m.take_axis), STABILIZING),
    rule("log-index-softmax", op("log", op("getitem", op("softmax", X, axis=AXIS), index=Var("index"))),
         lambda m: F.apply("getitem", F.log_softmax(m.x, m.axis), index=m.index), STABILIZING),
    rule("logsumexp", op("log", op("sum", EXP_X, axes=AXES, keepdims=KEEP)),
         lambda m: F.apply("logsumexp", m.x, axes=m.axes, keepdims=m.keepdims), STABILIZING),
    # the mean log-probability of the labelled class is -cross_entropy: matching the mean, not the
    # user's minus sign, finds it inside larger losses too (ce + l2 is simplified to l2 - mean(...))
    rule("cross-entropy", op("mean", op("take_along_axis", LOG_SOFTMAX_X, I, axis=1), axes=(0, 1), keepdims=False),
         lambda m: -_cross_entropy(m), STABILIZING, when=_cross_entropy_ok),
    rule("cross-entropy-one-hot",
         op("mean", op("sum", op("mul", LOG_SOFTMAX_X, op("one_hot", L, as_="hot")), axes=(1,), keepdims=False),
            axes=(0,), keepdims=False),
         lambda m: -_one_hot_cross_entropy(m), STABILIZING, when=_one_hot_cross_entropy_ok),
]


def stabilize(graph):
    """Rewrite naive exp/log formulas into sigmoid, softplus, softmax, log_softmax, logsumexp and the cross-entropy gate."""
    return apply_rules(graph, RULES, "stabilize")
