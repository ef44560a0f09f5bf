"""JAX: jax.jit(jax.value_and_grad(...)), float64 enabled for the float64 workloads, its persistent
compilation cache pointed at the run's cache folder. Every timed call waits for its result."""
import os

import numpy as np

from benchmarks.workloads import MLP_LR, MLP_PARAMS, MLP_REG, SVM_C, SVM_REG

FLOAT64 = {"W1", "W2", "W5"}



def threads():
    return f"XLA default ({os.cpu_count()} cores)"


def build(workload, d):
    import jax
    jax.config.update("jax_enable_x64", workload.name in FLOAT64)
    return BUILDERS[workload.name](jax, d)


def _runner(jax, fn, args, outputs=lambda raw: [np.asarray(r) for r in raw]):
    from benchmarks.systems import Runner
    return Runner(fn, args, outputs, sync=jax.block_until_ready)


def _w1(jax, d):
    vg = jax.jit(jax.value_and_grad(lambda x, y, z: (x + y) * z, argnums=(0, 1, 2)))
    return _runner(jax, vg, (float(d["x"]), float(d["y"]), float(d["z"])),
                   lambda raw: [np.asarray(raw[0])] + [np.asarray(g) for g in raw[1]])


def _w2(jax, d):
    import jax.numpy as jnp

    def neuron(w, x):
        return 1 / (1 + jnp.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    vg = jax.jit(jax.value_and_grad(neuron, argnums=(0, 1)))
    args = tuple(jax.device_put(d[k]) for k in ("w", "x"))
    return _runner(jax, vg, args, lambda raw: [np.asarray(raw[0])] + [np.asarray(g) for g in raw[1]])


def _w3(jax, d):
    import jax.numpy as jnp

    def chain(x, y):
        return jnp.sum(jax.nn.sigmoid(x * y + 0.5) * jnp.tanh(x) + jnp.exp(-x * x))
    vg = jax.jit(jax.value_and_grad(chain, argnums=(0, 1)))
    args = tuple(jax.device_put(d[k]) for k in ("x", "y"))
    return _runner(jax, vg, args, lambda raw: [np.asarray(raw[0])] + [np.asarray(g) for g in raw[1]])


def _w4(jax, d):
    import jax.numpy as jnp

    def loss_fn(params, X, labels):
        W1, b1, W2, b2, W3, b3 = params
        h1 = jax.nn.relu(X @ W1 + b1)
        h2 = jax.nn.relu(h1 @ W2 + b2)
        logp = jax.nn.log_softmax(h2 @ W3 + b3, axis=1)
        data = -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))
        return data + MLP_REG * (jnp.sum(W1 * W1) + jnp.sum(W2 * W2) + jnp.sum(W3 * W3))

    @jax.jit
    def step(params, X, labels):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, labels)
        return loss, tuple(p - MLP_LR * g for p, g in zip(params, grads))
    params = tuple(jax.device_put(d[k]) for k in MLP_PARAMS)
    args = (params, jax.device_put(d["X"]), jax.device_put(d["labels"].astype(np.int32)))
    return _runner(jax, step, args, lambda raw: [np.asarray(raw[0])] + [np.asarray(p) for p in raw[1]])


def _w5(jax, d):
    import jax.numpy as jnp

    def svm(W, X, labels):
        scores = X @ W
        correct = jnp.take_along_axis(scores, labels[:, None], axis=1)
        margins = jnp.maximum(0.0, scores - correct + 1.0) * (1.0 - jax.nn.one_hot(labels, SVM_C, dtype=X.dtype))
        return jnp.mean(jnp.sum(margins, axis=1)) + SVM_REG * jnp.sum(W * W)
    vg = jax.jit(jax.value_and_grad(svm))
    args = (jax.device_put(d["W"]), jax.device_put(d["X"]), jax.device_put(d["labels"]))
    return _runner(jax, vg, args, lambda raw: [np.asarray(raw[0]), np.asarray(raw[1])])


BUILDERS = {"W1": _w1, "W2": _w2, "W3": _w3, "W4": _w4, "W5": _w5}
