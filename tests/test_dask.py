"""graphc.dask on a LocalCluster of two worker processes started here: map_batches against the
single-process call, the data-parallel step against the single-process step (SGD with momentum,
Adam), one compile per worker and kernel, a worker that cannot compile, and a worker killed
mid-epoch. Float64 models, so "within rounding" is a tight tolerance."""
import os
import re
import signal

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import dask  # noqa: E402

import graphc as gc  # noqa: E402
import graphc.dask as gcd  # noqa: E402

ROUNDING = dict(rtol=1e-12, atol=1e-14)  # float64: sums over other shards differ by a few ulps


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def classifier(seed=0):
    """([x, labels], loss, scores): a float64 MLP 4-5-3 (tanh), cross-entropy plus L2 on the hidden weights."""
    x, labels = gc.tensor("x", (None, 4), "float64"), gc.tensor("labels", (None,), "int64")
    hidden = gc.nn.dense(x, 5, activation="tanh", name="hidden", seed=seed)
    scores = gc.nn.dense(hidden, 3, name="out", seed=seed + 1)
    W = gc.parameters(scores)[0]
    return [x, labels], gc.nn.cross_entropy(scores, labels) + 1e-3 * gc.sum(W * W), scores


SGD, ADAM = (gc.optim.sgd, {"lr": 0.3, "momentum": 0.9}), (gc.optim.adam, {"lr": 0.05})


# graphs are built on these lines only: source locations are part of a kernel's cache key, so tests
# share the compiled steps, updates and gradient graphs
def reference_step(optimizer, seed=0):
    inputs, loss, _ = classifier(seed)
    return gc.compile(inputs, loss, updates=optimizer[0](loss, gc.parameters(loss), **optimizer[1]), name="dask_ref")


def data_parallel(client, optimizer, seed=0):
    inputs, loss, _ = classifier(seed)
    return gcd.DataParallel(loss, inputs, optimizer[0], client=client, **optimizer[1])


def data(rows, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, 4)), rng.integers(0, 3, rows)


@pytest.fixture(scope="module")
def evaluation():
    """x, labels and a fixed weight w as inputs: row scores, a mean loss (with a batch-free L2 term),
    a sum, a negated max, a min over the batch axis only, and the loss's gradient for w."""
    x, labels, w = gc.tensor("x", (None, 4), "float64"), gc.tensor("labels", (None,), "int64"), \
        gc.tensor("w", (4, 3), "float64")
    scores = gc.tanh(x @ w)
    loss = gc.nn.cross_entropy(scores, labels) + 1e-3 * gc.sum(w * w)
    return gc.compile([x, labels, w], [scores, loss, gc.sum(scores), -gc.max(scores), gc.min(scores, axis=0),
                       gc.grad(loss, w)], name="dask_evaluation")


def test_map_batches_equals_the_single_process_call(client, evaluation):
    X, Y = data(20, 0)
    w = np.random.default_rng(1).standard_normal((4, 3))
    outputs = gcd.map_batches(evaluation, da.from_array(X, chunks=(7, 4)), da.from_array(Y, chunks=5), w=w)
    expected = evaluation(X, Y, w)
    assert [o.shape for o in outputs] == [e.shape for e in expected]
    assert outputs[0].chunks == ((7, 7, 6), (3,))  # the batch chunks of x; labels were rechunked to them
    for output, value in zip(outputs, expected):
        assert output.dtype == value.dtype and type(output._meta) is np.ndarray and output._meta.ndim == value.ndim
    computed = dask.compute(*outputs)
    np.testing.assert_array_equal(computed[0], expected[0])  # row by row: the same kernel on the same rows
    for got, want in zip(computed[1:], expected[1:]):
        np.testing.assert_allclose(got, want, **ROUNDING)
    per_chunk = gcd.map_batches(evaluation, da.from_array(X, chunks=(7, 4)), da.from_array(Y, chunks=7), w,
                                combine={2: "chunks"})[2].compute()
    np.testing.assert_allclose(per_chunk, [evaluation(X[k:k + 7], Y[k:k + 7], w)[2] for k in (0, 7, 14)], **ROUNDING)


def test_fixed_inputs_and_the_graph_are_one_key_each(evaluation):
    X, Y = data(20, 0)
    w = np.ones((4, 3))
    scores = gcd.map_batches(evaluation, da.from_array(X, chunks=(5, 4)), da.from_array(Y, chunks=5), w)[0]
    graph = dict(scores.__dask_graph__())
    weight = dask.delayed(w, pure=True).key
    source = dask.delayed(gcd.SavedGraph(evaluation.to_json(), "dask_evaluation"), pure=True).key
    chunks = [k for k in graph if str(k).startswith("_run_chunk-")]
    assert len(chunks) == 4
    for key in chunks:
        assert {weight, source} <= set(dask.core.get_dependencies(graph, key))
    assert sum(str(k).startswith("ndarray-") for k in graph) == 1  # w: only the batch blocks are split


def test_map_batches_refuses_outputs_chunks_cannot_compute():
    x = gc.tensor("x", (None, 2), "float64")
    f = gc.compile([x], [gc.exp(gc.mean(x)), x - gc.mean(x, axis=0)], name="dask_not_by_chunks")
    chunked = da.zeros((6, 2), chunks=(3, 2))
    with pytest.raises(gc.GraphcError, match=r"output 0 \(exp .*combine=\{0: 'mean'"):
        gcd.map_batches(f, chunked)
    with pytest.raises(gc.GraphcError, match="output 1 .* depends on other rows of the batch"):
        gcd.map_batches(f, chunked, combine={0: "chunks"})
    with pytest.raises(gc.CallError, match="input 'x' is f64\\[\\?,2\\], got a dask array of float32"):
        gcd.map_batches(f, chunked.astype(np.float32), combine={0: "chunks"})


@pytest.mark.parametrize("optimizer", [SGD, ADAM], ids=["sgd", "adam"])
def test_a_step_equals_the_single_process_step(client, optimizer):
    reference, trainer = reference_step(optimizer), data_parallel(client, optimizer)
    assert trainer.reduction == "mean"
    for seed in range(3):
        X, Y = data(11, seed)  # shards of 6 and 5 rows, weighted by their sizes
        np.testing.assert_allclose(trainer.step(X, Y), reference(X, Y), **ROUNDING)
    assert trainer.steps == 3 and not trainer.retries
    state = {unnumbered(s.name): s.get_value() for s in reference.shared["written"]}
    assert sorted(state) == sorted(unnumbered(s.name) for s in trainer.params + trainer.optimizer_state)
    for s in trainer.params + trainer.optimizer_state:  # parameters, moments and Adam's step count
        np.testing.assert_allclose(s.get_value(), state[unnumbered(s.name)], **ROUNDING)
    cost = trainer.cost(11)
    parameter_bytes = sum(p.get_value().nbytes for p in trainer.params)
    assert cost["broadcast_bytes"] == 2 * parameter_bytes and cost["reduced_bytes"] == 2 * (parameter_bytes + 8)
    assert cost["batch_bytes"] == 11 * (4 * 8 + 8)


def unnumbered(name):
    return re.sub(r"\d+$", "", name)  # adam_step0 and adam_step1: each optimizer numbers its step count


def test_each_worker_compiles_each_kernel_once(client, evaluation):
    X, Y = data(12, 4)
    w = np.ones((4, 3))
    trainer = data_parallel(client, SGD)
    ready = trainer.prepare()
    assert sorted(ready) == sorted(client.nthreads()) and {i["status"] for i in ready.values()} <= {"hit", "miss"}

    def run():
        dask.compute(*gcd.map_batches(evaluation, da.from_array(X, chunks=(3, 4)), da.from_array(Y, chunks=3), w))
        trainer.step(X, Y)
    run()
    before = gcd.worker_cache_info(client)
    run()
    run()
    after = gcd.worker_cache_info(client)
    for worker, report in after.items():
        assert report["counts"] == before[worker]["counts"]  # nothing compiled or loaded again
        digests = [f["digest"] for f in report["functions"]]
        assert len(digests) == len(set(digests))
        kernels = ("numba compiles", "numba cache loads", "ahead-of-time imports")
        loads = sum(report["counts"].get(k, 0) for k in kernels)
        assert loads == len(digests)  # one kernel compiled or loaded per function held, no more
        uses = {f["name"]: f["uses"] for f in report["functions"]}
        assert uses[f"{trainer.name}_gradients"] > {f["name"]: f["uses"] for f in before[worker]["functions"]}[
            f"{trainer.name}_gradients"]


def test_workers_cache_folders_are_configured(client):
    shared_folder = os.environ["GRAPHC_CACHE_DIR"]
    try:
        folders = gcd.configure_workers(client, shared_folder, per_worker=True)
        assert sorted(folders) == sorted(client.nthreads()) and len(set(folders.values())) == len(folders)
        assert all(os.path.dirname(f) == shared_folder for f in folders.values())
    finally:
        assert set(gcd.configure_workers(client, shared_folder).values()) == {shared_folder}


def test_a_worker_that_cannot_compile_names_itself(client):
    broken = sorted(client.nthreads())[1]

    def break_cache(file_path):  # the cache folder is a file, and no temporary folder can be made
        import tempfile
        from graphc.runtime import cache
        saved = os.environ.get("GRAPHC_CACHE_DIR"), tempfile.tempdir, list(cache._fallback)
        open(file_path, "w").close()
        os.environ["GRAPHC_CACHE_DIR"], tempfile.tempdir = file_path, "/nonexistent-graphc-tmp"
        cache._fallback.clear()
        return saved

    def restore(saved):
        import tempfile
        from graphc.runtime import cache
        os.environ["GRAPHC_CACHE_DIR"], tempfile.tempdir = saved[0], saved[1]
        cache._fallback[:] = saved[2]

    path = os.path.join(os.environ["GRAPHC_CACHE_DIR"], f"not-a-folder-{os.getpid()}")
    saved = client.run(break_cache, path, workers=[broken])[broken]
    try:
        x = gc.tensor("x", (None,), "float64")
        with pytest.raises(gcd.WorkerError) as error:  # a graph the broken worker has not loaded
            gcd.prepare(client, gc.to_json(gc.sum(x * 3.0 + 1.0), inputs=[x], name="dask_broken_cache"))
    finally:
        client.run(restore, saved, workers=[broken])
        os.remove(path)
    message = str(error.value)
    assert f"worker {broken} " in message and "could not compile graph 'dask_broken_cache'" in message
    assert f"kernel cache {path}" in message and "FileNotFoundError" in message


def test_training_survives_a_worker_killed_mid_epoch(client):
    X, Y = data(64, 5)
    step, rng = reference_step(SGD, seed=2), np.random.default_rng(7)
    expected = [float(step(X[rows], Y[rows])) for _ in range(2) for rows in gcd.batch_indices(64, 8, rng)]
    reference = [s.get_value() for s in step.shared["read"] if s.trainable]

    trainer = data_parallel(client, SGD, seed=2)
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]

    def kill_one(step_number, _loss):
        if step_number == 5:
            os.kill(pids[victim], signal.SIGKILL)
    history = trainer.fit(X, Y, batch_size=8, epochs=2, seed=7, callback=kill_one)
    assert trainer.retries and trainer.retries[0]["step"] == 5
    assert all(victim in t["workers"] for t in trainer.timings[:5])  # both workers computed, then the survivor
    assert not any(victim in t["workers"] for t in trainer.timings[5:])  # (and later the restarted worker)
    assert trainer.steps == 16  # every update applied, once: the losses and parameters are the reference's
    np.testing.assert_allclose(history["step_loss"], expected, **ROUNDING)
    for p, value in zip(trainer.params, reference):
        np.testing.assert_allclose(p.get_value(), value, **ROUNDING)
