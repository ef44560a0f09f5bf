"""Algebraic simplification: identities of arithmetic and movement, each tagged by how it treats values."""
from graphc import functions as F
from graphc.ops.reduce import reduced_shape
from graphc.tensor import constant
from graphc.types import Dim

from .rewrite import EXACT, STABILIZING, VALUE_CHANGING, Const, Var, apply_rules, op, rule

X, Y, L = Var("x"), Var("y"), Var("labels")
AXES, KEEP = Var("axes"), Var("keepdims")


def _zeros(m):
    zero = constant(0, m.type.dtype)
    return F.broadcast_to(zero, m.type.shape) if m.type.ndim else zero


def _is_identity(axes):
    return tuple(axes) == tuple(range(len(axes)))


def _composed(m):
    """transpose(transpose(x, a), b) is transpose(x, a[b])."""
    return F.transpose(m.x, tuple(m.inner[k] for k in m.outer))


def _broadcast_sum_ok(m):
    """The sum runs exactly over axes along which x is constant (stretched or added by the broadcast)."""
    padded, full = _padded(m)
    stretched = {k for k in range(len(full)) if padded[k] == 1 and full[k] != 1}
    return stretched <= set(m.axes) and all(padded[k] == 1 and not isinstance(full[k], Dim) for k in m.axes)


def _padded(m):
    x_shape, full = m.x.shape, m.node_type("b").shape
    return (1,) * (len(full) - len(x_shape)) + tuple(x_shape), full


def _broadcast_sum(m):
    """sum(broadcast_to(x), axes) = x * (number of copies): one rounding instead of n."""
    padded, full = _padded(m)
    count = 1
    for k in m.axes:
        count *= full[k]
    target = reduced_shape(padded, m.axes, m.keepdims)
    x = m.x if tuple(m.x.shape) == tuple(target) else F.reshape(m.x, target)
    return x * float(count) if x.dtype.startswith("float") else x * count


def _counted_sizes(t, axes):
    return [t.shape[a] for a in axes] if t.ndim > max(axes, default=-1) else None


def _size_of_operand(m):
    """size_of an operand of x with x's sizes on the counted axes (None if x has none)."""
    want = _counted_sizes(m.x.type, m.axes)
    for operand in m.operands("x"):
        have = _counted_sizes(operand.type, m.axes)
        if (have is not None and operand.ndim == m.x.ndim and operand.dtype.startswith("float")
                and all(a is b or a == b for a, b in zip(have, want))):
            return F.apply("size_of", operand, axes=m.axes)
    return None


def _one_hot_sum_ok(m):
    x_type = m.x.type
    return m.axes == (x_type.ndim - 1,) and x_type.shape == m.node_type("hot").shape


def _one_hot_pick(m):
    """sum(x * one_hot(labels), last axis) picks x at each label."""
    picked = F.take_along_axis(m.x, F.reshape(m.labels, tuple(m.labels.shape) + (1,)), axis=m.x.ndim - 1)
    return picked if m.keepdims else F.reshape(picked, m.labels.shape)


RULES = [
    rule("mul-one", op("mul", X, Const(1)), lambda m: m.x, EXACT),
    rule("div-one", op("div", X, Const(1)), lambda m: m.x, EXACT),
    # -0.0 + 0.0 is +0.0: dropping "+ 0" keeps -0.0, equal in value, only a zero's sign differs
    rule("add-zero", op("add", X, Const(0)), lambda m: m.x, EXACT),
    rule("sub-zero", op("sub", X, Const(0)), lambda m: m.x, EXACT),
    rule("mul-minus-one", op("mul", X, Const(-1)), lambda m: -m.x, EXACT),
    rule("neg-neg", op("neg", op("neg", X)), lambda m: m.x, EXACT),
    rule("add-neg", op("add", X, op("neg", Y)), lambda m: m.x - m.y, EXACT),
    rule("sub-neg", op("sub", X, op("neg", Y)), lambda m: m.x + m.y, EXACT),
    rule("pow-two", op("pow", X, Const(2)), lambda m: m.x * m.x, EXACT),
    rule("pow-one", op("pow", X, Const(1)), lambda m: m.x, EXACT),
    rule("sum-neg", op("sum", op("neg", X), axes=AXES, keepdims=KEEP),
         lambda m: -F.apply("sum", m.x, axes=m.axes, keepdims=m.keepdims), EXACT),
    rule("mean-neg", op("mean", op("neg", X), axes=AXES, keepdims=KEEP),
         lambda m: -F.apply("mean", m.x, axes=m.axes, keepdims=m.keepdims), EXACT),
    rule("transpose-transpose", op("transpose", op("transpose", X, axes=Var("inner")), axes=Var("outer")), _composed, EXACT),
    rule("transpose-identity", op("transpose", X, axes=AXES), lambda m: m.x, EXACT, when=lambda m: _is_identity(m.axes)),
    rule("reshape-reshape", op("reshape", op("reshape", X), shape=Var("shape")), lambda m: F.reshape(m.x, m.shape), EXACT),
    # the engine only accepts a replacement of the same type: these fire when the op changes nothing
    rule("reshape-noop", op("reshape", X), lambda m: m.x, EXACT),
    rule("broadcast-noop", op("broadcast_to", X), lambda m: m.x, EXACT),
    rule("cast-noop", op("cast", X), lambda m: m.x, EXACT),
    # size_of reads only a shape: counting an operand's sizes instead frees x from a needless reader
    rule("size-of-operand", op("size_of", X, axes=AXES), _size_of_operand, EXACT),
    rule("log-exp", op("log", op("exp", X)), lambda m: m.x, STABILIZING),  # exp(1000) overflows, x doesn't
    rule("sum-of-broadcast", op("sum", op("broadcast_to", X, as_="b"), axes=AXES, keepdims=KEEP), _broadcast_sum,
         STABILIZING, when=_broadcast_sum_ok),
    # value-changing: only with options={"value_changing": True}
    rule("exp-log", op("exp", op("log", X)), lambda m: m.x, VALUE_CHANGING),  # x < 0: NaN before, x after
    rule("sub-self", op("sub", X, X), _zeros, VALUE_CHANGING),  # inf - inf and NaN - NaN are NaN, not 0
    rule("mul-zero", op("mul", X, Const(0)), _zeros, VALUE_CHANGING),  # inf * 0 is NaN
    rule("sum-one-hot", op("sum", op("mul", X, op("one_hot", L, as_="hot")), axes=AXES, keepdims=KEEP), _one_hot_pick,
         VALUE_CHANGING, when=_one_hot_sum_ok),  # drops NaN/Inf at the unpicked positions
]


def simplify(graph):
    """Apply algebraic identities (x*1, x+0, neg(neg x), transpose/reshape chains, ...) to a fixpoint."""
    return apply_rules(graph, RULES, "simplify")
