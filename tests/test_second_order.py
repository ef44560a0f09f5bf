"""Second-order gradients: gc.grad of a gradient, checked against central differences of the
first-order gradient (float64, element by element on tiny shapes).

For a case out = op(x, ...), z = sum(grad(sum(out * R), x) * S) is a projection of the gradient;
gc.grad(z, x) must equal dz/dx computed numerically through the interpreter. The named ops of issue 3
get their own compiled function; every other differentiable case of tests/test_ops.py shares one.
"""
import numpy as np
import pytest

import graphc as gc

from numeric_gradient import central_differences
from test_ops import CASES_BY_NAME, _shape_of, declare, sample_inputs, scalar_function

NAMED = ["tanh", "sigmoid", "exp", "mul", "matmul_matrix_matrix", "matmul_matrix_vector", "softmax", "log"]
OTHERS = ["div", "pow", "sqrt", "log_softmax", "logsumexp_axis", "max_axis", "mean_axis_keepdims",
          "maximum", "where_comparison", "getitem_slice", "take_along_axis_repeats", "concatenate_axis1",
          "transpose_axes", "reshape_call_time", "softplus", "one_hot_cross_entropy", "clip", "abs",
          "cross_entropy", "cross_entropy_one_hot", "concatenate_call_time_axis", "getitem_step_none",
          "logsumexp_axes", "max_axes_keepdims", "matmul_vector_matrix", "matmul_vector_vector", "rdiv",
          "minimum", "broadcast_to_ones", "scalar_inputs", "naive_sigmoid", "take_along_axis_broadcast_x"]


def second_order(name):
    """Inputs, z (a projection of the first-order gradient), and gc.grad(z, wrt), in float64."""
    case = CASES_BY_NAME[name]
    part = declare(case, "float64", tag=f"_{name}")
    first = part["outputs"][1:]
    projections = [gc.tensor(f"s{k}_{name}", _shape_of(g), "float64") for k, g in enumerate(first)]
    z = sum((gc.sum(g * s) for g, s in zip(first, projections)), gc.constant(0.0))
    inputs = part["all_inputs"] + projections
    return {"name": name, "inputs": inputs, "wrt": part["wrt"], "z": z, "second": gc.grad(z, part["wrt"])}


def _feeds(entry, seed=1):
    """Arrays for every input: the case's values, then random R and S of the shapes they meet."""
    rng = np.random.default_rng(seed)
    case = CASES_BY_NAME[entry["name"]]
    values = sample_inputs(case, rng, "float64")
    out_shape = np.shape(case.reference(*values))
    values.append(rng.standard_normal(out_shape))
    for spec, value in zip(case.inputs, values):
        if spec.is_float:
            values.append(rng.standard_normal(np.shape(value)))
    return values


def _group(names):
    entries = [second_order(name) for name in names]
    inputs = [t for e in entries for t in e["inputs"]]
    outputs = [t for e in entries for t in e["second"]]
    return entries, gc.compile(inputs, outputs, name="second_order")


@pytest.fixture(scope="module")
def named():
    return _group(NAMED)


@pytest.fixture(scope="module")
def others():
    return _group(OTHERS)


def _check(entries, f):
    feeds = [_feeds(e) for e in entries]
    results = list(f(*[a for fs in feeds for a in fs]))
    for entry, values in zip(entries, feeds):
        z = scalar_function(entry["z"], entry["inputs"])
        for target in entry["wrt"]:
            k = next(i for i, t in enumerate(entry["inputs"]) if t is target)
            numeric = central_differences(z, values, k)
            got = results.pop(0)
            np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-7,
                                       err_msg=f"{entry['name']}: second order d/d{target.name}")


def test_second_order_of_the_named_ops(named):
    _check(*named)


def test_second_order_of_other_ops(others):
    _check(*others)


def test_third_order_tanh():
    """grad of grad of grad: d3/dx3 tanh(x) = -2 (1 - t^2) (1 - 3 t^2), t = tanh(x)."""
    x = gc.tensor("x", (3,), "float64")
    g1 = gc.grad(gc.sum(gc.tanh(x)), x)
    g2 = gc.grad(gc.sum(g1), x)
    g3 = gc.grad(gc.sum(g2), x)
    X = np.array([-1.0, 0.2, 0.7])
    t = np.tanh(X)
    np.testing.assert_allclose(gc.compile([x], g3)(X), -2 * (1 - t ** 2) * (1 - 3 * t ** 2), rtol=1e-12)
