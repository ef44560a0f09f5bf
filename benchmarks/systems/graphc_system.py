"""graphc: each workload written with graphc's functions, compiled once, called with NumPy arrays."""

from benchmarks.workloads import MLP_LR, MLP_PARAMS, MLP_REG, MLP_SIZES, SVM_C, SVM_REG


def threads():
    import numba
    return numba.get_num_threads()


def build(workload, d):
    return BUILDERS[workload.name](d)


def _w1(d):
    import graphc as gc
    x, y, z = (gc.scalar(k, "float64") for k in "xyz")
    f = (x + y) * z
    fn = gc.compile([x, y, z], [f] + gc.grad(f, [x, y, z]), name="w1")
    return _runner(fn, (d["x"], d["y"], d["z"]))


def _w2(d):
    import graphc as gc
    w, x = gc.tensor("w", (3,), "float64"), gc.tensor("x", (2,), "float64")
    f = 1 / (1 + gc.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    fn = gc.compile([w, x], [f] + gc.grad(f, [w, x]), name="w2")
    return _runner(fn, (d["w"], d["x"]))


def _w3(d):
    import graphc as gc
    x, y = gc.tensor("x", (None,), "float32"), gc.tensor("y", (None,), "float32")
    f = gc.sum(gc.sigmoid(x * y + 0.5) * gc.tanh(x) + gc.exp(-x * x))
    fn = gc.compile([x, y], [f] + gc.grad(f, [x, y]), name="w3")
    return _runner(fn, (d["x"], d["y"]))


def mlp_step(gc):
    """The W4 SGD step, compiled (the batch size is given at call time)."""
    X = gc.tensor("X", (None, MLP_SIZES[0]), "float32")
    labels = gc.tensor("labels", (None,), "int64")
    params = []
    for k, (fan_in, fan_out) in enumerate(zip(MLP_SIZES, MLP_SIZES[1:]), 1):
        params += [gc.tensor(f"W{k}", (fan_in, fan_out), "float32"), gc.tensor(f"b{k}", (fan_out,), "float32")]
    W1, b1, W2, b2, W3, b3 = params
    h1 = gc.relu(X @ W1 + b1)
    h2 = gc.relu(h1 @ W2 + b2)
    logits = h2 @ W3 + b3
    data_loss = -gc.mean(gc.take_along_axis(gc.log_softmax(logits, axis=1), labels[:, None], axis=1))
    loss = data_loss + MLP_REG * (gc.sum(W1 * W1) + gc.sum(W2 * W2) + gc.sum(W3 * W3))
    grads = gc.grad(loss, params)
    updates = {p: p - MLP_LR * g for p, g in zip(params, grads)}
    return gc.compile([X, labels] + params, [loss], updates=updates, name="w4")


def _w4(d):
    import graphc as gc
    fn = mlp_step(gc)
    args = (d["X"], d["labels"]) + tuple(d[k] for k in MLP_PARAMS)
    runner = _runner(fn, args, lambda raw: [raw[0]] + [a.copy() for a in args[2:]])
    runner.extra["after"] = lambda: {"compiles across batch sizes 1, 7, 256, 10000": batch_recompiles(fn, d)}
    return runner


def batch_recompiles(fn, d):
    """How many kernels were compiled or loaded while the same step ran on four batch sizes (issue 5:
    none). Runs after the first call, before the timings (the worker gathers the facts then), on copies
    of the parameters."""
    import numpy as np
    from graphc.runtime.compile import COUNTS
    before = sum(COUNTS.values())
    rng = np.random.default_rng(0)
    for n in (1, 7, 256, 10_000):
        X = rng.standard_normal((n, d["X"].shape[1])).astype(np.float32)
        fn(X, rng.integers(0, 10, n), *(d[k].copy() for k in MLP_PARAMS))
    return sum(COUNTS.values()) - before


def _w5(d):
    import graphc as gc
    X = gc.tensor("X", (None, d["X"].shape[1]), "float64")
    labels = gc.tensor("labels", (None,), "int64")
    W = gc.tensor("W", d["W"].shape, "float64")
    scores = X @ W
    correct = gc.take_along_axis(scores, labels[:, None], axis=1)
    margins = gc.maximum(0.0, scores - correct + 1.0) * (1.0 - gc.one_hot(labels, SVM_C, "float64"))
    loss = gc.mean(gc.sum(margins, axis=1)) + SVM_REG * gc.sum(W * W)
    fn = gc.compile([X, labels, W], [loss, gc.grad(loss, W)], name="w5")
    return _runner(fn, (d["X"], d["labels"], d["W"]))


def _runner(fn, args, outputs=list):
    """The compiled function is timed directly; N (the first call-time size) sizes its memory report."""
    from benchmarks.systems import Runner
    batch = next((a.shape[0] for a in args if getattr(a, "ndim", 0) >= 1), None)
    return Runner(fn, args, outputs, extra={"compiled": fn, "sizes": {"N": batch} if batch else {},
                                            "before_timing": _wait_for_builds})


def _wait_for_builds():
    """A cache miss queues an ahead-of-time build (runtime/aot.py): calls are timed once it is done."""
    from graphc.runtime import aot
    aot.wait_for_builds()


BUILDERS = {"W1": _w1, "W2": _w2, "W3": _w3, "W4": _w4, "W5": _w5}
