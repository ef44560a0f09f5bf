"""The depth sweep: an MLP 64-(128 x depth, tanh)-10 training step (batch 64, float32, softmax
cross-entropy, SGD) for graphc and JAX, each depth in fresh processes with empty caches.

    python -m benchmarks.depth --depths 1,2,4,8,16,32,64 --systems graphc,jax [--peer-python PY]

Per depth and system: cold compile + first call (in a process of its own, from an empty cache), the
per-call median, and for graphc a second program with one layer more or another batch size, run
right after against the same cache (kernel library hits, `f.cache_info()`). Written to
OUTPUT/depth.json, depth.md and, when matplotlib is installed, depth.png.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BATCH, WIDTH, IN, OUT, LR = 64, 128, 64, 10, 0.01


def data(depth, batch):
    rng = np.random.default_rng(0)
    sizes = [IN] + [WIDTH] * depth + [OUT]
    params = []
    for a, b in zip(sizes, sizes[1:]):
        params += [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32), np.zeros(b, np.float32)]
    return rng.standard_normal((batch, IN)).astype(np.float32), rng.integers(0, OUT, batch), params


def graphc_step(depth):
    import graphc as gc
    x, y = gc.tensor("x", (None, IN), "float32"), gc.tensor("y", (None,), "int64")
    sizes, params, h = [IN] + [WIDTH] * depth + [OUT], [], x
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        W, bias = gc.tensor(f"W{k}", (a, b), "float32"), gc.tensor(f"b{k}", (b,), "float32")
        params += [W, bias]
        h = h @ W + bias
        h = gc.tanh(h) if k < depth else h
    loss = -gc.mean(gc.take_along_axis(gc.log_softmax(h, axis=1), y[:, None], axis=1))
    updates = {p: p - LR * g for p, g in zip(params, gc.grad(loss, params))}
    f = gc.compile([x, y] + params, loss, updates=updates, name=f"mlp{depth}")
    return lambda X, Y, P: f(X, Y, *P), f


def jax_step(depth):
    import jax
    import jax.numpy as jnp

    def loss_fn(params, X, Y):
        h = X
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            h = jnp.tanh(h) if k + 2 < len(params) else h
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h, axis=1), Y[:, None], axis=1))

    @jax.jit
    def step(params, X, Y):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, Y)
        return loss, [p - LR * g for p, g in zip(params, grads)]

    state = {}

    def call(X, Y, P):
        params = state.get("params", [jax.device_put(p) for p in P])
        loss, state["params"] = step(params, X, Y)
        return jax.block_until_ready(loss)
    return call, None


def worker(system, depth, batch, samples):
    start = time.perf_counter()
    call, f = (graphc_step if system == "graphc" else jax_step)(depth)
    X, Y, P = data(depth, batch)
    call(X, Y, P)
    cold = time.perf_counter() - start
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        call(X, Y, P)
        times.append(time.perf_counter() - t)
    info = f.cache_info() if f is not None else {}
    return {"cold_s": cold, "per_call_ms": 1000 * float(np.median(times)),
            "library": info.get("library"), "library_kernels": info.get("library_kernels")}


def run(python, system, depth, batch, folder, samples=20, timeout=1800):
    env = dict(os.environ, GRAPHC_CACHE_DIR=os.path.join(folder, "graphc"), GRAPHC_AOT="0",
               JAX_COMPILATION_CACHE_DIR=os.path.join(folder, "jax"), PYTHONPATH=ROOT)
    from benchmarks.run import run_result
    return run_result([python, "-m", "benchmarks.depth", "--worker", system, str(depth), str(batch), str(samples)],
                      env, timeout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="1,2,4,8,16,32,64")
    parser.add_argument("--systems", default="graphc,jax")
    parser.add_argument("--peer-python", default=os.environ.get("GRAPHC_BENCH_PEER_PYTHON"))
    parser.add_argument("--output", default=os.path.join(HERE, "results"))
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        system, depth, batch, samples = args.worker
        print("RESULT " + json.dumps(worker(system, int(depth), int(batch), int(samples))), flush=True)
        return
    rows = []
    for depth in [int(d) for d in args.depths.split(",")]:
        row = {"depth": depth}
        for system in args.systems.split(","):
            python = sys.executable if system == "graphc" else (args.peer_python or sys.executable)
            with tempfile.TemporaryDirectory() as folder:
                row[system] = run(python, system, depth, BATCH, folder)
                if system == "graphc":  # the next program: one layer more, then another batch size
                    row["graphc_next_depth"] = run(python, system, depth + 1, BATCH, folder)
                    row["graphc_next_batch"] = run(python, system, depth, 2 * BATCH, folder)
            print(json.dumps(row), flush=True)
        rows.append(row)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "depth.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(args.output, "depth.md"), "w") as f:
        f.write(table(rows) + "\n")
    print(table(rows))
    plot(rows, os.path.join(args.output, "depth.png"))


def _cell(result, key, scale="{:.2f}"):
    return scale.format(result[key]) if result and key in result else (result or {}).get("failed", "-")[:30]


def table(rows):
    lines = ["| depth | graphc cold s | JAX cold s | graphc ms/call | JAX ms/call | next program (depth+1) cold s, library | next program (batch x2) cold s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        g, j, nd, nb = r.get("graphc"), r.get("jax"), r.get("graphc_next_depth"), r.get("graphc_next_batch")
        lib = (nd or {}).get("library") or {}
        lines.append(f"| {r['depth']} | {_cell(g, 'cold_s')} | {_cell(j, 'cold_s')} | {_cell(g, 'per_call_ms', '{:.3f}')} | "
                     f"{_cell(j, 'per_call_ms', '{:.3f}')} | {_cell(nd, 'cold_s')} ({lib.get('compiled', '?')} compiled, "
                     f"{lib.get('loaded', '?')} loaded) | {_cell(nb, 'cold_s')} |")
    return "\n".join(lines)


def plot(rows, target):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    fig, (cold, call) = plt.subplots(1, 2, figsize=(10, 4))
    for system, style in (("graphc", "o-"), ("jax", "s--"), ("graphc_next_depth", "^:")):
        points = [(r["depth"], r[system]) for r in rows if system in r and "cold_s" in r[system]]
        if points:
            cold.plot([d for d, _ in points], [p["cold_s"] for _, p in points], style, label=system)
            if "next" not in system:
                call.plot([d for d, _ in points], [p["per_call_ms"] for _, p in points], style, label=system)
    for ax, title in ((cold, "cold compile + first call (s)"), (call, "per call (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("hidden layers")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    print(f"plot: {target}")


if __name__ == "__main__":
    main()
