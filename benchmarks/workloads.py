"""The workloads W1..W5 of issue 5: seeded inputs (the same for every system) and float64 references.

A workload's inputs are a dict of NumPy arrays; its reference returns the float64 values every system
must produce, in a fixed order (W4 reports the loss and each parameter's change by the step, so an
update that is wrong shows even though parameters move only a little).
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

MLP_SIZES = (784, 512, 256, 10)
MLP_BATCH, MLP_LR, MLP_REG = 256, 0.1, 1e-4
SVM_N, SVM_D, SVM_C, SVM_REG = 500, 3073, 10, 1e-3
W3_N = 4_000_000


@dataclass
class Workload:
    name: str
    title: str
    make_inputs: Callable[[], dict]
    reference: Callable[[dict], list]
    work: Callable[[dict], tuple]  # (amount per call, unit): bytes -> GB/s, flops -> GFLOP/s, or (0, "")
    stateful: bool = False         # the call updates its inputs in place (W4)


def _w1_inputs():
    x, y, z = np.random.default_rng(1).standard_normal(3)
    return {"x": np.float64(x), "y": np.float64(y), "z": np.float64(z)}


def _w1_reference(d):
    x, y, z = (float(d[k]) for k in "xyz")
    return [np.float64((x + y) * z), np.float64(z), np.float64(z), np.float64(x + y)]


def _w2_inputs():
    rng = np.random.default_rng(2)
    return {"w": rng.standard_normal(3), "x": rng.standard_normal(2)}


def _w2_reference(d):
    w, x = d["w"].astype(np.float64), d["x"].astype(np.float64)
    f = 1 / (1 + np.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    s = f * (1 - f)
    return [np.float64(f), s * np.array([x[0], x[1], 1.0]), s * w[:2]]


def _w3_inputs():
    rng = np.random.default_rng(3)
    return {"x": rng.standard_normal(W3_N, dtype=np.float32), "y": rng.standard_normal(W3_N, dtype=np.float32)}


def _w3_reference(d):
    x, y = d["x"].astype(np.float64), d["y"].astype(np.float64)
    s = 1 / (1 + np.exp(-(x * y + 0.5)))
    t = np.tanh(x)
    e = np.exp(-x * x)
    value = np.sum(s * t + e)
    ds = s * (1 - s)
    dx = ds * y * t + s * (1 - t * t) - 2 * x * e
    dy = ds * x * t
    return [np.float64(value), dx, dy]


def mlp_params(dtype=np.float32):
    rng = np.random.default_rng(4)
    params = {}
    for k, (fan_in, fan_out) in enumerate(zip(MLP_SIZES, MLP_SIZES[1:]), 1):
        params[f"W{k}"] = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)
        params[f"b{k}"] = np.zeros(fan_out, dtype)
    return params


MLP_PARAMS = ("W1", "b1", "W2", "b2", "W3", "b3")


def _w4_inputs():
    rng = np.random.default_rng(5)
    d = {"X": rng.standard_normal((MLP_BATCH, MLP_SIZES[0])).astype(np.float32),
         "labels": rng.integers(0, MLP_SIZES[-1], MLP_BATCH).astype(np.int64)}
    d.update(mlp_params())
    return d


def mlp_loss_and_grads(d, xp=np):
    """The W4 forward and backward by hand, in the inputs' dtype (also the NumPy system's code)."""
    X, labels = d["X"], d["labels"]
    W1, b1, W2, b2, W3, b3 = (d[k] for k in MLP_PARAMS)
    z1 = X @ W1 + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W2 + b2
    h2 = np.maximum(z2, 0)
    logits = h2 @ W3 + b3
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    n = X.shape[0]
    rows = np.arange(n)
    reg = MLP_REG
    loss = (np.log(total[:, 0]) - shifted[rows, labels]).mean() + reg * (np.sum(W1 * W1) + np.sum(W2 * W2) + np.sum(W3 * W3))
    dlogits = e / total
    dlogits[rows, labels] -= 1
    dlogits /= n
    dW3 = h2.T @ dlogits + 2 * reg * W3
    db3 = dlogits.sum(axis=0)
    dh2 = dlogits @ W3.T
    dh2 *= z2 > 0
    dW2 = h1.T @ dh2 + 2 * reg * W2
    db2 = dh2.sum(axis=0)
    dh1 = dh2 @ W2.T
    dh1 *= z1 > 0
    dW1 = X.T @ dh1 + 2 * reg * W1
    db1 = dh1.sum(axis=0)
    return loss, [dW1, db1, dW2, db2, dW3, db3]


def _w4_reference(d):
    d64 = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in d.items()}
    loss, grads = mlp_loss_and_grads(d64)
    return [np.float64(loss)] + [-MLP_LR * g for g in grads]


def _w4_work(d):
    """GEMM flops: per layer the forward product and the weight gradient, and the input gradient but
    for the first layer (no gradient flows to X)."""
    n, flops = MLP_BATCH, 0
    for layer, (fan_in, fan_out) in enumerate(zip(MLP_SIZES, MLP_SIZES[1:])):
        flops += (2 if layer == 0 else 3) * 2 * n * fan_in * fan_out
    return flops, "GFLOP/s"


def _w5_inputs():
    rng = np.random.default_rng(6)
    return {"X": rng.standard_normal((SVM_N, SVM_D)), "labels": rng.integers(0, SVM_C, SVM_N).astype(np.int64),
            "W": rng.standard_normal((SVM_D, SVM_C)) * 1e-3}


def svm_loss_and_grad(d):
    """The W5 hinge loss and its gradient by hand (also the NumPy system's code)."""
    X, labels, W = d["X"], d["labels"], d["W"]
    n = X.shape[0]
    rows = np.arange(n)
    scores = X @ W
    margins = np.maximum(0, scores - scores[rows, labels][:, None] + 1)
    margins[rows, labels] = 0
    loss = margins.sum() / n + SVM_REG * np.sum(W * W)
    mask = (margins > 0).astype(X.dtype)
    mask[rows, labels] = -mask.sum(axis=1)
    dW = X.T @ mask / n + 2 * SVM_REG * W
    return loss, dW


def _w5_reference(d):
    loss, dW = svm_loss_and_grad(d)
    return [np.float64(loss), dW]


WORKLOADS = {w.name: w for w in [
    Workload("W1", "(x+y)*z, value + 3 grads, f64 scalars", _w1_inputs, _w1_reference, lambda d: (0, "")),
    Workload("W2", "sigmoid neuron, value + 5 grads, f64", _w2_inputs, _w2_reference, lambda d: (0, "")),
    Workload("W3", "elementwise chain, 4M f32, value + 2 grads", _w3_inputs, _w3_reference,
             lambda d: (16 * d["x"].size, "GB/s")),
    Workload("W4", "MLP 784-512-256-10 SGD step, batch 256, f32", _w4_inputs, _w4_reference, _w4_work, stateful=True),
    Workload("W5", "SVM loss + grad, 500x3073 f64", _w5_inputs, _w5_reference, lambda d: (0, "")),
]}


def scale_relative_error(got, want):
    """max |got - want| / max |want| over every output (each output scaled by its own magnitude)."""
    worst = 0.0
    for g, w in zip(got, want):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g.shape != w.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(w))) if w.size else 0.0, 1e-300)
        worst = max(worst, float(np.max(np.abs(g - w))) / scale if w.size else 0.0)
    return worst
