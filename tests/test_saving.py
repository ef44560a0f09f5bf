"""Saved graphs (graphc/saving.py): JSON round trips that compile to the same kernel and results,
a property test over random graphs, a catalogue of malformed files that loading refuses, and
pickles that travel to another process with their shared values."""
import copy
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.runtime import cache

from passes_helpers import reference
from test_passes_property import build, steps


def mlp_step():
    """A two-layer classifier trained with Adam: shared parameters, moments and a step count."""
    x, y = gc.tensor("x", (None, 4), "float32"), gc.tensor("y", (None,), "int64")
    hidden = gc.nn.dense(x, 6, activation="tanh", name="hidden", seed=0)
    loss = gc.nn.cross_entropy(gc.nn.dense(hidden, 3, name="out", seed=1), y)
    return [x, y], loss, gc.optim.adam(loss, gc.parameters(loss), lr=0.05)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((10, 4)).astype(np.float32), rng.integers(0, 3, 10)


@pytest.fixture(scope="module")
def trained():
    inputs, loss, updates = mlp_step()
    f = gc.compile(inputs, loss, updates=updates, name="mlp_step")
    f(*batch())
    return f


def values(f):
    return [s.get_value() for s in f.shared["read"]]


def test_save_and_load_behave_the_same(trained, tmp_path):
    path = tmp_path / "step.json"
    trained.save(path)
    loaded = gc.load(path)
    assert loaded.cache_info()["status"] == "hit"  # the same graph: the same key, the kernel from the cache
    assert loaded.cache_info()["key"] == trained.cache_info()["key"]
    for a, b in zip(values(trained), values(loaded)):
        np.testing.assert_array_equal(a, b)
    for seed in (1, 2):
        assert trained(*batch(seed)) == loaded(*batch(seed))
    for a, b in zip(values(trained), values(loaded)):
        np.testing.assert_array_equal(a, b)
    assert [s.name for s in loaded.shared["written"]] == [s.name for s in trained.shared["written"]]


def test_a_loaded_function_has_its_own_shared_values(trained, tmp_path):
    loaded = gc.loads(trained.to_json())
    before = values(trained)
    loaded(*batch(3))
    for a, b in zip(before, values(trained)):
        np.testing.assert_array_equal(a, b)


def test_to_json_keeps_names_locations_updates_and_settings(trained):
    declaration = gc.from_json(trained.to_json())
    assert [t.name for t in declaration.inputs] == ["x", "y"]
    assert declaration.single and declaration.name == "mlp_step"
    assert {t.name for t in declaration.updates} == {s.name for s in trained.shared["written"]}
    assert declaration.outputs[0].loc.startswith("test_saving.py:")
    assert declaration.settings["cast"] == "no"
    uncompiled = gc.from_json(gc.to_json(*reversed(mlp_step()[:2])))
    assert uncompiled.settings is None and uncompiled.updates == {}


def test_the_lecture_example_round_trips():
    w, x = gc.tensor("w", (3,), "float64"), gc.tensor("x", (2,), "float64")
    f = 1.0 / (1.0 + gc.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    text = gc.to_json([f] + gc.grad(f, [w, x]), inputs=[w, x], name="neuron")
    loaded = gc.from_json(text).compile()
    got = loaded(np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0]))
    s = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(got[1], s * (1 - s) * np.array([-1.0, -2.0, 1.0]), rtol=1e-14)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_graphs_round_trip_to_the_same_lowered_graph(plan):
    """A declaration loaded back lowers to the same canonical text (so the same cache key) and the
    interpreter gives the same values."""
    from graphc.compiler import declare
    inputs, outputs = build(plan)
    declaration = gc.from_json(gc.to_json(outputs, inputs=inputs))
    original, _, _ = declare(inputs, outputs)
    loaded, _, _ = declare(declaration.inputs, declaration.outputs)
    assert cache.canonical_text(loaded) == cache.canonical_text(original)
    rng = np.random.default_rng(0)
    args = rng.uniform(-2, 2, (3, 4)), rng.uniform(-2, 2, 4), np.float64(0.5)
    for a, b in zip(reference(outputs, inputs, *args), reference(declaration.outputs, declaration.inputs, *args)):
        np.testing.assert_array_equal(a, b)


# ---- malformed files ---------------------------------------------------------------------------------

def _saved(trained):
    return json.loads(trained.to_json())


def _node(data, op):
    return next(n for n in data["graph"]["nodes"] if n["op"] == op)


def _set(path_fn):
    def change(data):
        path_fn(data)
        return data
    return change


MALFORMED = {
    "not JSON": (lambda d: "{not json", "not JSON"),
    "another schema": (_set(lambda d: d.update(schema="something-else")), "not a graphc saved graph"),
    "a later version": (_set(lambda d: d.update(version=99)), "version 99"),
    "an unknown top-level field": (_set(lambda d: d.update(code="import os")), "unknown fields"),
    "an unknown op": (_set(lambda d: _node(d, "matmul").update(op="os.system")), "unknown op 'os.system'"),
    "an attribute the op does not take": (_set(lambda d: _node(d, "tanh")["attrs"].update(evil=1)), "evil"),
    "a wrong shape": (_set(lambda d: _node(d, "matmul")["type"][1].__setitem__(-1, 7)), "matmul"),
    "a negative size": (_set(lambda d: d["graph"]["nodes"][0]["type"][1].__setitem__(-1, -4)), "negative"),
    "a constant larger than its data": (_set(lambda d: _node(d, "constant")["attrs"]["value"].__setitem__(
        "shape", [10 ** 6]) if isinstance(_node(d, "constant")["attrs"]["value"], dict) else
        _node(d, "constant")["attrs"].update(value={"array": "AAAA", "dtype": "float32", "shape": [10 ** 6]})),
        "does not fit its shape"),
    "a shared value of another shape": (_set(lambda d: d["shared"][0]["value"].update(shape=[1, 1])),
                                        "does not fit its shape|does not match"),
    "a shared value renamed": (_set(lambda d: d["shared"][0].update(name="other")), "does not match its input"),
    "a missing shared value": (_set(lambda d: d["shared"].pop()), "do not match"),
    "an edge to nowhere": (_set(lambda d: d["graph"]["edges"].append([0, 10 ** 6])), "missing nodes"),
    "unknown compile settings": (_set(lambda d: d["compile"].update(run="rm -rf /")), "compile settings"),
    "a pickle in a constant's dtype": (_set(lambda d: _node(d, "constant")["attrs"].update(
        value={"array": "gASVAAAAAAAAAAA=", "dtype": "object", "shape": [1]})), "dtype"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_loading_refuses_a_malformed_file(trained, case):
    change, message = MALFORMED[case]
    data = change(copy.deepcopy(_saved(trained)))
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(gc.GraphcError, match=message):
        gc.from_json(text)


def test_a_constant_for_the_malformed_catalogue_exists(trained):
    """The catalogue's constant cases need a constant node in the saved step (the 1 - beta ** t terms)."""
    assert any(n["op"] == "constant" for n in _saved(trained)["graph"]["nodes"])


# ---- pickles -----------------------------------------------------------------------------------------

def test_a_pickle_runs_in_another_process_with_its_shared_values(trained, tmp_path):
    path = tmp_path / "step.pickle"
    path.write_bytes(pickle.dumps(trained))
    expected = pickle.loads(path.read_bytes())(*batch(5))  # a copy here: `trained` keeps its values
    script = textwrap.dedent(f"""
        import pickle, sys
        import numpy as np
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_saving import batch
        f = pickle.load(open({str(path)!r}, "rb"))
        print(repr(float(f(*batch(5)))), f.cache_info()["status"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    value, status = out.stdout.split()
    assert float(value) == float(expected)
    assert status == "hit"  # this machine's cache had the kernel


EXAMPLE_MODELS = [("spiral", "linear_model"), ("spiral", "two_layer_model"), ("digits", "svm_model"),
                  ("digits", "mlp_model")]


@pytest.mark.parametrize("example, model", EXAMPLE_MODELS)
def test_every_example_model_round_trips(example, model):
    """Compiled, saved as JSON, loaded and compiled again: the same kernel, the same step."""
    from test_examples_training import load
    declaration = getattr(load(example), model)()
    f = gc.compile(declaration["inputs"], declaration["outputs"], updates=declaration["updates"],
                   name=declaration.get("name", model))
    g = gc.loads(f.to_json())
    assert g.cache_info()["key"] == f.cache_info()["key"]
    rng = np.random.default_rng(0)
    features = declaration["inputs"][0].shape[1]
    X, y = rng.standard_normal((7, features)).astype(np.float32), rng.integers(0, 3, 7)
    for a, b in zip(f(X, y), g(X, y)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(f.shared["read"], g.shared["read"]):
        assert a.name == b.name
        np.testing.assert_array_equal(a.get_value(), b.get_value())
