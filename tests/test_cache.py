"""The disk cache: a warm start in a new process compiles nothing, a miss says why, sizes never recompile."""
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import cache
from graphc.runtime.compile import COUNTS

PROGRAM = textwrap.dedent("""
    import sys, json
    import numpy as np
    import graphc as gc
    from graphc.runtime.compile import COUNTS
    x = gc.tensor("x", (2, 3), "float64")  # fixed sizes: a serial kernel, built ahead of time
    w = gc.tensor("w", (3,), "float64")
    loss = gc.sum(gc.tanh(x @ w)) + 0.5 * gc.sum(x.T @ x)  # matrix-vector and matrix-matrix products
    f = gc.compile([x, w], loss, updates={w: w - gc.grad(loss, w)}, name="warm")
    X, W = np.arange(6.0).reshape(2, 3) / 10, np.array([0.1, -0.2, 0.3])
    value = f(X, W)
    grad = np.array([0.1, -0.2, 0.3]) - W
    try:
        f(X.astype(np.float32), W)
        wrong = "accepted"
    except gc.CallError as error:
        wrong = str(error)
    import glob, os
    from graphc.runtime import aot, cache
    folder = cache.cache_dir()
    builds = {"queued": len(glob.glob(os.path.join(folder, "*.building"))),
              "builder": os.path.exists(os.path.join(folder, aot.BUILDER_LOCK))}
    print(json.dumps({"builds": builds, "digest": cache.source_digest(), "env": cache.environment(), "info": f.cache_info(), "counts": dict(COUNTS), "numba": "numba" in sys.modules,
                      "passes": "graphc.passes" in sys.modules, "value": float(value), "grad": grad.tolist(), "wrong": wrong}))
""")


def run_program(folder, aot=True):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(folder), NUMBA_CACHE_DIR=str(folder / "numba"),
               GRAPHC_AOT="1" if aot else "0")
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    import json
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected():
    X, W = np.arange(6.0).reshape(2, 3) / 10, np.array([0.1, -0.2, 0.3])
    t = np.tanh(X @ W)
    return t.sum() + 0.5 * (X.T @ X).sum(), X.T @ (1 - t * t)


def test_warm_start_in_a_new_process_compiles_nothing(tmp_path):
    cold = run_program(tmp_path)
    assert cold["info"]["status"] == "miss" and cold["info"]["reason"] == "first compile of this graph"
    kernels = cold["info"]["library_kernels"]  # each distinct loop nest, compiled once
    assert kernels >= 1 and cold["counts"] == {"numba compiles": 1, "library kernels compiled": kernels}
    assert cold["info"]["library"] == {"compiled": kernels, "loaded": 0, "reused": 0}
    assert cold["builds"] == {"queued": 1, "builder": False}  # the build starts when the program exits
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", "from graphc.runtime import aot; aot.wait_for_builds()"], env=env, check=True)
    warm = run_program(tmp_path)
    assert warm["info"]["status"] == "hit", (warm, cold)
    assert warm["info"]["kernel"] == "ahead-of-time module"
    assert warm["counts"] == {"ahead-of-time imports": 1} and not warm["numba"]
    assert cold["passes"] and not warm["passes"]  # a warm start runs no pass (nor imports them)
    value, grad = expected()
    for run in (cold, warm):
        assert run["value"] == pytest.approx(value, rel=1e-13) and np.allclose(run["grad"], grad, rtol=1e-13)
        assert "float32" in run["wrong"] and "float64" in run["wrong"]  # the binder checks what the module won't


def test_parallel_kernels_warm_start_from_numbas_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    program = "import graphc as gc; v = gc.tensor('v', (None,), 'float32'); f = gc.compile([v], gc.sum(gc.exp(v)), name='par'); "
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "numba"), GRAPHC_AOT="1")
    check = "import numpy as np; assert abs(float(f(np.zeros(300_000, np.float32))) - 300_000) < 1; print(f.cache_info()['kernel'])"
    runs = [subprocess.run([sys.executable, "-c", program + check], capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["compiled by Numba", "Numba's cache"], [r.stderr[-500:] for r in runs]
    assert any("prange(" in open(module).read() for module in tmp_path.glob("graphc_*.py"))  # a library kernel


def test_without_the_ahead_of_time_module_numba_cache_serves(tmp_path):
    run_program(tmp_path, aot=False)
    warm = run_program(tmp_path, aot=False)
    assert warm["info"]["status"] == "hit" and warm["info"]["kernel"] == "Numba's cache"
    assert warm["counts"] == {"numba cache loads": 1}


def test_a_miss_says_which_input_changed_and_logs_the_recompile(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))

    def build(dtype):
        v = gc.tensor("v", (None,), dtype)
        return gc.compile([v], gc.sum(v * v), name="changing")
    assert build("float32").cache_info()["reason"] == "first compile of this graph"
    with caplog.at_level(logging.WARNING, logger="graphc"):
        again = build("float64")
    assert again.cache_info()["status"] == "miss"
    assert again.cache_info()["reason"] == "input v changed float32 -> float64"
    assert "recompiling changing: input v changed float32 -> float64" in caplog.text
    assert build("float64").cache_info()["status"] == "hit"


def test_no_recompile_across_batch_sizes(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    X = gc.tensor("X", (None, 5), "float32")
    labels = gc.tensor("labels", (None,), "int64")
    W = gc.tensor("W", (5, 3), "float32")
    loss = -gc.mean(gc.take_along_axis(gc.log_softmax(gc.relu(X @ W), axis=1), labels[:, None], axis=1))
    step = gc.compile([X, labels, W], loss, updates={W: W - 0.1 * gc.grad(loss, W)}, name="batches")
    before = dict(COUNTS)
    rng = np.random.default_rng(0)
    for n in (1, 7, 256, 10_000):
        x, y = rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, 3, n)
        w = rng.standard_normal((5, 3)).astype(np.float32)
        z = np.maximum(x @ w, 0)
        z = z - z.max(axis=1, keepdims=True)
        want = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(n), y])
        assert float(step(x, y, w)) == pytest.approx(want, rel=1e-4)
    assert dict(COUNTS) == before


def test_key_ignores_locations_but_not_constants():
    def lowered(scale):
        x = gc.tensor("x", (3,), "float64")
        return gc.lower([x * gc.constant(np.full(3, scale))], [x])
    config = "same"
    a, b, c = lowered(2.0), lowered(2.0), lowered(3.0)
    assert cache.make_key(cache.canonical_text(a), config) == cache.make_key(cache.canonical_text(b), config)
    assert cache.make_key(cache.canonical_text(a), config) != cache.make_key(cache.canonical_text(c), config)


def test_writes_are_atomic(tmp_path):
    target = tmp_path / "file.bin"
    cache.write_atomic(str(target), b"one")
    cache.write_atomic(str(target), b"two")
    assert target.read_bytes() == b"two" and os.listdir(tmp_path) == ["file.bin"]


def test_which_kernels_are_built_ahead_of_time():
    from graphc.runtime.compile import wants_ahead_of_time
    w = gc.tensor("w", (3,), "float64")
    tiny = gc.compile([w], [gc.sum(w * w), gc.grad(gc.sum(w * w), w)], name="tiny")
    assert not wants_ahead_of_time(tiny.ir, tiny._kernel)  # returns an array: boxing cost dominates
    scalar = gc.compile([w], gc.sum(w * w), name="scalar")
    assert wants_ahead_of_time(scalar.ir, scalar._kernel)
    v = gc.tensor("v", (None,), "float64")
    parallel = gc.compile([v], gc.sum(v * v), name="parallel")
    assert not wants_ahead_of_time(parallel.ir, parallel._kernel)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_builder_runs_at_idle_priority():
    from graphc.runtime import aot
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        aot._lower_priority(child.pid)
        assert os.sched_getscheduler(child.pid) == os.SCHED_IDLE
        aot._normal_priority(child.pid)  # what waiting for the build does
        assert os.sched_getscheduler(child.pid) == os.SCHED_OTHER and os.getpriority(os.PRIO_PROCESS, child.pid) == 10
    finally:
        child.kill()
        child.wait()


def test_waiting_for_builds_waits_for_the_builders_exit(tmp_path, monkeypatch):
    """The builder drops its lock, then takes a while to exit: the wait lasts until it is gone."""
    import time
    from graphc.runtime import aot
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    script = textwrap.dedent(f"""
        import fcntl, os, time
        from graphc.runtime import aot
        lock = os.open(aot.lock_path(), os.O_RDWR | os.O_CREAT)
        fcntl.flock(lock, fcntl.LOCK_EX)
        aot._name_holder(os.getpid())
        time.sleep(0.3)
        os.close(lock)
        time.sleep(0.7)
    """)
    builder = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path)))
    while aot._running_builder() != builder.pid:
        assert builder.poll() is None
        time.sleep(0.01)
    start = time.perf_counter()
    aot.wait_for_builds(timeout=30)
    assert time.perf_counter() - start > 0.9
    builder.wait()


# ---- the entry's graph as plain data (graphc/serialize.py) --------------------------------------------

@pytest.fixture(scope="module")
def optimized():
    """An MLP step's final graph: fused bodies, loop tags, reuse tags, call-time sizes, array constants."""
    from graphc import passes
    X, labels = gc.tensor("X", (None, 4), "float32"), gc.tensor("labels", (None,), "int64")
    W = gc.tensor("W", (4, 3), "float32")
    logits = gc.relu(X @ W + gc.constant(np.arange(3, dtype=np.float32)))
    loss = -gc.mean(gc.take_along_axis(gc.log_softmax(logits, axis=1), labels[:, None], axis=1))
    graph = gc.lower([loss], [X, labels, W], [(W, W - 0.1 * gc.grad(loss, W))], "mlp")
    return passes.run_pipeline(graph, passes.PIPELINE).graph


def test_a_graph_survives_json(optimized):
    import json
    from graphc.printer import format_graph
    from graphc.runtime import codegen
    from graphc.serialize import graph_from_json, graph_to_json
    loaded = graph_from_json(json.loads(json.dumps(graph_to_json(optimized))))
    assert format_graph(loaded) == format_graph(optimized)
    assert codegen.generate(loaded).source == codegen.generate(optimized).source
    assert loaded.memory_plan.report(N=7) == optimized.memory_plan.report(N=7)
    assert [dict(loaded[n]).keys() for n in loaded.g] == [dict(optimized[n]).keys() for n in optimized.g]


@pytest.mark.parametrize("damage", ["unknown op", "unknown attribute", "attribute of a fused step", "unknown field", "wrong type",
                                    "newer version", "array too short", "size cycle"])
def test_a_graph_that_is_not_valid_data_is_refused(optimized, damage):
    import copy
    from graphc.serialize import SerializeError, graph_from_json, graph_to_json
    data = copy.deepcopy(graph_to_json(optimized))
    node = next(n for n in data["nodes"] if n["op"] not in ("input", "constant"))
    if damage == "unknown op":
        node["op"] = "os.system"
    elif damage == "unknown attribute":
        node["attrs"]["command"] = "rm -rf /"
    elif damage == "attribute of a fused step":
        fused = next(n for n in data["nodes"] if n["op"] == "fused")
        fused["attrs"]["body"]["body"][0]["attrs"] = [["command", "rm -rf /"]]
    elif damage == "unknown field":
        node["__reduce__"] = 1
    elif damage == "wrong type":
        node["type"][0] = "float16"
    elif damage == "newer version":
        data["version"] += 1
    elif damage == "array too short":
        array = next(n for n in data["nodes"] if n["op"] == "constant" and isinstance(n["attrs"]["value"], dict))
        array["attrs"]["value"]["shape"] = [1000]
    else:
        data["dims"][0]["parent"] = 0
    with pytest.raises(SerializeError):
        graph_from_json(data)


def test_a_process_queues_a_bounded_number_of_builds_and_none_without_pycc(tmp_path, monkeypatch):
    from graphc.runtime import aot
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_AOT", "1")
    monkeypatch.setattr(aot, "_queued_here", [])
    monkeypatch.setattr(aot, "_start_at_exit", True)  # no builder from this test process
    keys = [f"{k:064x}" for k in range(aot.QUEUE_PER_PROCESS + 3)]
    assert [aot.build_in_background(k) for k in keys] == [True] * aot.QUEUE_PER_PROCESS + [False] * 3
    assert len(list(tmp_path.glob("graphc_*.building"))) == aot.QUEUE_PER_PROCESS
    for marker in tmp_path.glob("graphc_*.building"):
        marker.unlink()
    monkeypatch.setattr(aot, "_queued_here", [])
    aot._pycc_available.cache_clear()
    monkeypatch.setattr(aot.importlib.util, "find_spec", lambda name: None)
    try:
        assert not aot.build_in_background(keys[0]) and not list(tmp_path.glob("graphc_*.building"))
    finally:
        monkeypatch.undo()
        aot._pycc_available.cache_clear()
