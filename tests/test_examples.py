"""The lecture's two examples give the lecture's numbers."""
import importlib.util
import os

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_add_multiply_gates():
    f, dx, dy, dz = load("add_multiply").build()(-2.0, 5.0, -4.0)
    assert (f, dx, dy, dz) == (-12.0, -4.0, -4.0, 3.0)


def test_sigmoid_neuron():
    fn, _ = load("sigmoid_neuron").build()
    f, dw, dx = fn(np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0]))
    s = 1 / (1 + np.exp(-1.0))  # w.x + b = 1 at the lecture's point
    assert f == pytest.approx(s, rel=1e-15)
    np.testing.assert_allclose(dw, s * (1 - s) * np.array([-1.0, -2.0, 1.0]), rtol=1e-14)
    np.testing.assert_allclose(dx, s * (1 - s) * np.array([2.0, -3.0]), rtol=1e-14)
    np.testing.assert_allclose(np.round(dw, 2), [-0.20, -0.39, 0.20])
    np.testing.assert_allclose(np.round(dx, 2), [0.39, -0.59])


@pytest.mark.parametrize("name", ["add_multiply", "sigmoid_neuron"])
def test_examples_run_and_print_ir(name, capsys):
    load(name).main()
    out = capsys.readouterr().out
    assert "# backward" in out and "graph" in out
