"""PyTensor: pytensor.function in its Numba mode or its C mode; the W4 parameters are shared variables
updated by the function, as a PyTensor user would write the step. PYTENSOR_FLAGS points its compile
folder (and Numba's cache) at the run's cache folder."""
import os
import types

import numpy as np

from benchmarks.workloads import MLP_LR, MLP_PARAMS, MLP_REG, SVM_C, SVM_REG


def variant(system):
    """The module's functions bound to one mode: "pytensor-numba" -> NUMBA, "pytensor-c" -> C (cvm)."""
    mode = "NUMBA" if system == "pytensor-numba" else "C"
    return types.SimpleNamespace(threads=lambda: threads(mode),
                                 build=lambda workload, d: BUILDERS[workload.name](_mode(mode), d))



def threads(mode):
    try:
        from threadpoolctl import threadpool_info
        blas = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    except Exception:
        blas = f"default ({os.cpu_count()} cores)"
    if mode == "NUMBA":
        import numba
        return f"numba {numba.get_num_threads()}, BLAS {blas}"
    return f"BLAS {blas}"


def _mode(name):
    from pytensor.compile.mode import Mode, get_mode
    return get_mode("NUMBA") if name == "NUMBA" else Mode(linker="cvm", optimizer="fast_run")


def _runner(fn, args, outputs=lambda raw: [np.asarray(r) for r in raw]):
    from benchmarks.systems import Runner
    return Runner(fn, args, outputs)


def _w1(mode, d):
    import pytensor
    import pytensor.tensor as pt
    x, y, z = pt.dscalar("x"), pt.dscalar("y"), pt.dscalar("z")
    f = (x + y) * z
    fn = pytensor.function([x, y, z], [f] + pytensor.grad(f, [x, y, z]), mode=mode)
    fn.trust_input = True
    return _runner(fn, (np.asarray(d["x"]), np.asarray(d["y"]), np.asarray(d["z"])))


def _w2(mode, d):
    import pytensor
    import pytensor.tensor as pt
    w, x = pt.dvector("w"), pt.dvector("x")
    f = 1 / (1 + pt.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    fn = pytensor.function([w, x], [f] + pytensor.grad(f, [w, x]), mode=mode)
    fn.trust_input = True
    return _runner(fn, (d["w"], d["x"]))


def _w3(mode, d):
    import pytensor
    import pytensor.tensor as pt
    x, y = pt.fvector("x"), pt.fvector("y")
    f = pt.sum(pt.sigmoid(x * y + np.float32(0.5)) * pt.tanh(x) + pt.exp(-x * x))
    fn = pytensor.function([x, y], [f] + pytensor.grad(f, [x, y]), mode=mode)
    fn.trust_input = True
    return _runner(fn, (d["x"], d["y"]))


def _w4(mode, d):
    import pytensor
    import pytensor.tensor as pt
    X, labels = pt.fmatrix("X"), pt.lvector("labels")
    params = [pytensor.shared(d[k].copy(), name=k) for k in MLP_PARAMS]
    W1, b1, W2, b2, W3, b3 = params
    h1 = pt.maximum(X @ W1 + b1, 0)
    h2 = pt.maximum(h1 @ W2 + b2, 0)
    logp = pt.special.log_softmax(h2 @ W3 + b3, axis=1)
    data = -pt.mean(logp[pt.arange(X.shape[0]), labels])
    loss = data + np.float32(MLP_REG) * (pt.sum(W1 * W1) + pt.sum(W2 * W2) + pt.sum(W3 * W3))
    grads = pytensor.grad(loss, params)
    fn = pytensor.function([X, labels], loss, mode=mode,
                           updates=[(p, p - np.float32(MLP_LR) * g) for p, g in zip(params, grads)])
    fn.trust_input = True
    return _runner(fn, (d["X"], d["labels"]),
                   lambda raw: [np.asarray(raw)] + [p.get_value().copy() for p in params])


def _w5(mode, d):
    import pytensor
    import pytensor.tensor as pt
    X, labels, W = pt.dmatrix("X"), pt.lvector("labels"), pt.dmatrix("W")
    scores = X @ W
    correct = scores[pt.arange(X.shape[0]), labels][:, None]
    onehot = pt.eq(labels[:, None], pt.arange(SVM_C)[None, :])
    margins = pt.maximum(0.0, scores - correct + 1.0) * (1.0 - onehot)
    loss = pt.mean(pt.sum(margins, axis=1)) + SVM_REG * pt.sum(W * W)
    fn = pytensor.function([X, labels, W], [loss, pytensor.grad(loss, W)], mode=mode)
    fn.trust_input = True
    return _runner(fn, (d["X"], d["labels"], d["W"]))


BUILDERS = {"W1": _w1, "W2": _w2, "W3": _w3, "W4": _w4, "W5": _w5}
