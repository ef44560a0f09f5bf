"""Every pass preserves results: random small graphs, optimized vs the unoptimized interpreter."""
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import graphc as gc

from passes_helpers import optimized, reference

UNARY = [
    lambda a: -a, gc.exp, gc.tanh, gc.sigmoid, gc.relu, lambda a: a ** 2, lambda a: gc.log(1 + a * a),
    lambda a: 1 / (1 + gc.exp(-a)), lambda a: gc.exp(a) / (1 + gc.exp(a)), lambda a: gc.log(gc.sigmoid(a)),
    lambda a: a * 1, lambda a: a + 0, lambda a: -(-a), lambda a: gc.log(gc.exp(a)), lambda a: a.T.T,
    lambda a: gc.reshape(gc.reshape(a, (-1,)), a.shape),
    lambda a: gc.exp(a) / gc.sum(gc.exp(a), axis=-1, keepdims=True) if a.ndim else a,
    lambda a: gc.log(gc.softmax(a, -1)) if a.ndim else a,
    lambda a: gc.log(gc.sum(gc.exp(a), axis=-1, keepdims=True)) if a.ndim else a,
    lambda a: gc.sum(a, axis=-1, keepdims=True) if a.ndim else a,
    lambda a: gc.mean(a, axis=0, keepdims=True) if a.ndim == 2 else a,
    lambda a: gc.max(a, axis=-1, keepdims=True) if a.ndim else a,
    lambda a: gc.mean(-a),
]
BINARY = [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (1 + b * b),
    # choices compare values a quarter apart: stabilizing rewrites may move a value by a rounding
    # error (log(exp(x)) -> x), which must not flip a comparison between x and itself
    lambda a, b: gc.maximum(a, b + 0.25), lambda a, b: gc.where(a > b + 0.25, a, b * 2),
    lambda a, b: a + (-b), lambda a, b: a - a * 1 + b,
]


def plans(min_size, max_size):
    """Lists of (binary?, which op, first operand, second operand) steps for `build`."""
    step = st.tuples(st.booleans(), st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
    return st.lists(step, min_size=min_size, max_size=max_size)


steps, long_steps = plans(1, 7), plans(5, 14)


def build(plan):
    x, y, s = gc.tensor("x", (3, 4), "float64"), gc.tensor("y", (4,), "float64"), gc.scalar("s", "float64")
    pool = [x, y, s]
    for binary, k, i, j in plan:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        pool.append(BINARY[k % len(BINARY)](a, b) if binary else UNARY[k % len(UNARY)](a))
    loss = gc.sum(pool[-1]) + 0.5 * gc.sum(pool[len(pool) // 2] * pool[-1])
    return [x, y, s], [loss] + gc.grad(loss, [x, y, s])


def arrays(seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-2, 2, (3, 4)), rng.uniform(-2, 2, 4), np.float64(rng.uniform(-2, 2))


def case(plan, seed):
    """The plan's graph, its arrays and the unoptimized interpreter's results (finite, else the example is skipped)."""
    inputs, outputs = build(plan)
    args = arrays(seed)
    want = reference(outputs, inputs, *args)
    assume(all(np.all(np.isfinite(w)) for w in want))
    return inputs, outputs, args, want


def close(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.integers(0, 2 ** 16))
def test_optimized_graph_matches_unoptimized_interpreter(plan, seed):
    inputs, outputs, args, want = case(plan, seed)
    with np.errstate(all="ignore"):
        got = gc.interpret(optimized(outputs, inputs).graph, *args)[0]
    close(got, want)


@pytest.mark.parametrize("disabled", [(), ("fuse_elementwise",), ("stabilize", "simplify", "simplify_backward")])
@settings(max_examples=3, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: each step compiles
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps, st.integers(0, 2 ** 16))
def test_compiled_optimized_graph_matches_unoptimized_interpreter(disabled, plan, seed):
    """Few examples: each compiles a kernel with Numba."""
    inputs, outputs, args, want = case(plan, seed)
    close(gc.compile(inputs, outputs, disable=disabled)(*args), want)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(long_steps, st.integers(0, 2 ** 16))
def test_fusion_alone_never_creates_a_cycle_and_keeps_values(plan, seed):  # with its loop merges
    import networkx as nx
    from graphc import passes
    inputs, outputs = build(plan)
    before_fusion = optimized(outputs, inputs, disable=["fuse_elementwise", "plan_memory"]).graph
    fused = passes.join_reduction(passes.share_loops(passes.fuse_elementwise(before_fusion)))
    assert nx.is_directed_acyclic_graph(fused.g)
    fused.verify(gc.ops.OPS)
    args = arrays(seed)
    with np.errstate(all="ignore"):
        want = gc.interpret(before_fusion, *args)[0]
        got = gc.interpret(fused, *args)[0]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, equal_nan=True)
