"""Hand-written NumPy forward and backward: what a careful user writes without a compiler."""
import numpy as np

from benchmarks.workloads import MLP_LR, MLP_PARAMS, mlp_loss_and_grads, svm_loss_and_grad



def threads():
    try:
        from threadpoolctl import threadpool_info
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    except Exception:
        import os
        return f"BLAS default ({os.cpu_count()} cores)"


def build(workload, d):
    return BUILDERS[workload.name](d)


def w1(x, y, z):
    q = x + y
    return q * z, z, z, q


def w2(w, x):
    f = 1.0 / (1.0 + np.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    s = f * (1.0 - f)
    return f, s * np.array([x[0], x[1], 1.0]), s * w[:2]


def w3(x, y):
    s = 1 / (1 + np.exp(-(x * y + np.float32(0.5))))
    t = np.tanh(x)
    e = np.exp(-x * x)
    value = np.sum(s * t + e)
    ds = s * (1 - s)
    dy = ds * t
    dx = dy * y + s * (1 - t * t) - 2 * x * e
    dy *= x
    return value, dx, dy


def w4(X, labels, *params):
    d = dict(zip(MLP_PARAMS, params), X=X, labels=labels)
    loss, grads = mlp_loss_and_grads(d)
    for p, g in zip(params, grads):
        p -= np.float32(MLP_LR) * g
    return (loss,)


def w5(X, labels, W):
    return svm_loss_and_grad({"X": X, "labels": labels, "W": W})


def _runner(fn, args, outputs=list):
    from benchmarks.systems import Runner
    return Runner(fn, args, outputs)


BUILDERS = {
    "W1": lambda d: _runner(w1, (float(d["x"]), float(d["y"]), float(d["z"]))),
    "W2": lambda d: _runner(w2, (d["w"], d["x"])),
    "W3": lambda d: _runner(w3, (d["x"], d["y"])),
    "W4": lambda d: _runner(w4, (d["X"], d["labels"]) + tuple(d[k] for k in MLP_PARAMS),
                            lambda raw, d=d: [raw[0]] + [d[k].copy() for k in MLP_PARAMS]),
    "W5": lambda d: _runner(w5, (d["X"], d["labels"], d["W"])),
}
