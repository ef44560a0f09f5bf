"""The kernel library: one compiled function per distinct loop nest, shared by layers, graphs and processes.
Reuse is asserted by counters (compiles, cache loads), never by timings."""
import json
import os
import subprocess
import sys

import numpy as np

import graphc as gc
from graphc.schedule import Launch

from passes_helpers import kernel_calls

PROGRAM = """
import json, numpy as np, graphc as gc
from graphc.runtime.compile import COUNTS
x = gc.tensor("x", (None, 8), "float32")
h, params = x, []
for k in range({depth}):
    W = gc.tensor(f"W{{k}}", (8, 8), "float32")
    params.append(W)
    h = gc.tanh(h @ W)
f = gc.compile([x] + params, gc.sum(h * h), name="stack")
args = [np.ones((3, 8), np.float32)] + [np.full((8, 8), 0.1, np.float32)] * {depth}
print(json.dumps({{"value": float(f(*args)), "info": f.cache_info(), "counts": dict(COUNTS)}}))
"""


def stack(depth):
    x = gc.tensor("x", (None, 8), "float32")
    h, params = x, []
    for k in range(depth):
        W = gc.tensor(f"W{k}", (8, 8), "float32")
        params.append(W)
        h = gc.tanh(h @ W + 0.5)
    return [x] + params, gc.sum(h * h)


def test_layers_of_the_same_shape_share_one_kernel():
    inputs, loss = stack(3)
    f = gc.compile(inputs, [loss] + gc.grad(loss, inputs[1:]), name="three")
    launches = f.ir.schedule.launches()
    calls = kernel_calls(f)
    assert len(calls) >= len(launches) >= 6
    distinct = f.cache_info()["library_kernels"]
    assert distinct < len(launches) / 2, (distinct, len(launches), f.dump(after="schedule"))
    assert len({call.split(" = ")[1].split("(")[0] for call in calls}) == distinct
    assert all(isinstance(s, Launch) or s.why for s in f.ir.schedule.steps)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((4, 8)).astype(np.float32)] + [rng.standard_normal((8, 8)).astype(np.float32) * 0.3
                                                             for _ in range(3)]
    from graphc.interpret import interpret
    for got, want in zip(f(*args), interpret(f.ir, *args)[0]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_a_deeper_graph_reuses_the_kernels_of_a_shallower_one():
    f = gc.compile(*stack(2), name="two")
    g = gc.compile(*stack(4), name="four")
    use = g.cache_info()["library"]
    assert use["compiled"] == 0 and use["reused"] == g.cache_info()["library_kernels"], (f.cache_info(), g.cache_info())


def test_a_library_written_by_one_process_is_loaded_by_the_next(tmp_path):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path), GRAPHC_AOT="0")
    run = lambda depth: json.loads(subprocess.run([sys.executable, "-c", PROGRAM.format(depth=depth)], env=env,  # noqa: E731
                                                  capture_output=True, text=True, check=True, timeout=300).stdout)
    first, deeper = run(4), run(5)  # another graph: its driver compiles, its kernels load
    assert first["info"]["library"]["compiled"] == first["info"]["library_kernels"] >= 2
    # another graph (a miss): its Python driver compiles nothing, its kernels come from Numba's cache
    assert deeper["info"]["status"] == "miss" and deeper["info"]["kernel"] == "Numba's cache (Python driver, library kernels)"
    assert deeper["info"]["library"] == {"compiled": 0, "loaded": deeper["info"]["library_kernels"], "reused": 0}
    assert deeper["counts"].get("library kernels compiled", 0) == 0
    h = np.ones((3, 8))
    for _ in range(5):
        h = np.tanh(h @ np.full((8, 8), 0.1))
    assert np.isclose(deeper["value"], np.sum(h * h), rtol=1e-5), deeper


def test_a_python_driver_updates_simultaneously_and_keeps_float32():
    """A deep step runs as a Python driver over library kernels: an update target passed again as the
    data (the same memory) gives what a copy of it gives, and float32 stays float32 between kernels."""
    inputs, loss = stack(4)
    params = inputs[1:]
    mean = gc.mean(loss * 0.5)  # a float32 scalar computed by one kernel, read by the next
    grads = gc.grad(mean, params)
    f = gc.compile(inputs, [mean], updates={p: p - 0.1 * g for p, g in zip(params, grads)}, name="deep_sgd")
    assert f._kernel.python and f.cache_info()["library_kernels"] >= 4
    rng = np.random.default_rng(1)
    weights = [(rng.standard_normal((8, 8)) * 0.3).astype(np.float32) for _ in params]
    aliased = [w.copy() for w in weights]
    separate = [w.copy() for w in weights]
    (value,) = f(aliased[0], *aliased)             # the data is W0 itself
    (expected,) = f(separate[0].copy(), *separate)  # the data is a copy of W0
    assert value.dtype == np.float32 and value == expected
    for got, want in zip(aliased, separate):
        np.testing.assert_array_equal(got, want)
    assert not all(np.array_equal(w, s) for w, s in zip(weights, separate))  # the step moved the weights
