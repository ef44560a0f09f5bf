"""Data-parallel scaling of the W4 step on a local Dask cluster (not a timed test).

W4 (benchmarks/workloads.py): an MLP 784-512-256-10 with ReLU, softmax cross-entropy over int64 labels
plus L2 1e-4 on the weights, SGD lr 0.1, float32; here at batch 4096, trained by gc.dask.DataParallel
on LocalCluster(n_workers=n, threads_per_worker=1, processes=True) for n = 1 and 2 (Dask's workers
run BLAS on one thread each), beside the same step compiled into one kernel in this process on one
BLAS thread. Reported per configuration: median step time, rows per second, the worker's share (its
gradient task), the client's update and the rest (communication and scheduling), and the cost
model's bytes per step; and the machine's ceiling for this workload: the gradient function timed on
every worker at once on its share of a batch, with no communication (on a shared or SMT-backed
2-core VM two BLAS processes may not get twice one's throughput).

    pip install -e ".[dask]" && python -m benchmarks.dask_scaling [--epochs 5] [--rows 16384]
"""
import argparse
import os
import time

import numpy as np

SIZES, BATCH, LR, REG = (784, 512, 256, 10), 4096, 0.1, 1e-4


def w4_model():
    """(inputs, loss): W4's graph with gc.shared parameters (the same seeds for every configuration)."""
    import graphc as gc
    x, labels = gc.tensor("X", (None, SIZES[0]), "float32"), gc.tensor("labels", (None,), "int64")
    h = x
    for k, units in enumerate(SIZES[1:], 1):
        h = gc.nn.dense(h, units, activation="relu" if k < len(SIZES) - 1 else None, name=f"layer{k}", seed=k)
    W1, W2, W3 = [p for p in gc.parameters(h) if p.ndim == 2]
    loss = gc.nn.cross_entropy(h, labels) + REG * (gc.sum(W1 * W1) + gc.sum(W2 * W2) + gc.sum(W3 * W3))
    return [x, labels], loss


def dataset(rows):
    rng = np.random.default_rng(5)
    return rng.standard_normal((rows, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], rows)


def single_process(X, y, epochs):
    """Seconds per step of the fused W4 step in this process, BLAS on one thread."""
    from threadpoolctl import threadpool_limits
    import graphc as gc
    from graphc.dask import batch_indices
    rng = np.random.default_rng(0)
    with threadpool_limits(1):  # before the compile: graphc's thread choice reads the BLAS's count then
        inputs, loss = w4_model()
        step = gc.compile(inputs, loss, updates=gc.optim.sgd(loss, gc.parameters(loss), lr=LR), name="w4_dask_single")
        for rows in batch_indices(len(y), BATCH, rng):  # warm-up epoch
            step(X[rows], y[rows])
        times = []
        for _ in range(epochs):
            for rows in batch_indices(len(y), BATCH, rng):
                start = time.perf_counter()
                step(X[rows], y[rows])
                times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_gradients(graph, values, rows, calls=10):
    """On a worker: median seconds of the gradient function on `rows` rows of its own, no communication."""
    import graphc.dask as gcd
    f = gcd.worker_function(graph)
    X, y = dataset(rows)
    times = []
    for _ in range(calls + 1):
        start = time.perf_counter()
        f(X, y, *values)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def on_cluster(workers, X, y, epochs):
    """(median step seconds, cost report) of DataParallel on a fresh LocalCluster of `workers` processes;
    the report also holds "kernel_seconds": the slowest worker's gradient call on its share of a batch
    with every worker computing at once."""
    from distributed import Client, LocalCluster
    import graphc as gc
    import graphc.dask as gcd
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        inputs, loss = w4_model()
        trainer = gcd.DataParallel(loss, inputs, gc.optim.sgd, client=client, lr=LR, name="w4_dask")
        trainer.fit(X, y, batch_size=BATCH, epochs=1, progress=False)  # places the data; first calls
        measured = len(trainer.timings)
        trainer.fit(X, y, batch_size=BATCH, epochs=epochs, progress=False)
        trainer.timings = trainer.timings[measured:]
        print(f"\n{workers} worker(s):")
        cost = trainer.print_cost(BATCH)
        values = [v.get_value() for v in trainer._values]
        cost["kernel_seconds"] = max(client.run(time_gradients, trainer._gradients, values, BATCH // workers).values())
        print(f"  gradient call alone on {BATCH // workers} rows, all workers at once: "
              f"{cost['kernel_seconds'] * 1e3:.1f} ms")
        if trainer.retries:
            print(f"  retries: {trainer.retries}")
        return cost["step_seconds"], cost


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="measured epochs per configuration (default %(default)s)")
    parser.add_argument("--rows", type=int, default=4 * BATCH,
                        help="dataset rows (default %(default)s: 4 steps an epoch)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRAPHC_AOT", "0")  # no background builds from exiting workers between the runs
    X, y = dataset(args.rows)
    print(f"W4 step, batch {BATCH}, float32; {args.rows} rows, {args.epochs} measured epochs; "
          f"{os.cpu_count()} cores; load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    single = single_process(X, y, args.epochs)
    print(f"\nin-process fused step (1 BLAS thread): {single * 1e3:.1f} ms a step, {BATCH / single:,.0f} rows/s")
    results = {n: on_cluster(n, X, y, args.epochs) for n in (1, 2)}
    print("\nworkers | step (median) | rows/s | worker task | update | communication and scheduling")
    for n, (seconds, cost) in results.items():
        print(f"{n:>7} | {seconds * 1e3:>10.1f} ms | {BATCH / seconds:>6,.0f} | "
              f"{cost['worker_seconds'] * 1e3:>8.1f} ms | "
              f"{cost['update_seconds'] * 1e3:>4.1f} ms | {cost['communication_share']:.0%}")
    speedup = results[1][0] / results[2][0]
    ceiling = results[1][1]["kernel_seconds"] / results[2][1]["kernel_seconds"]
    print(f"\nspeedup 1 -> 2 workers: {speedup:.2f}x (target 1.6x); this machine's ceiling for the workload "
          f"(gradient calls alone, no communication): {ceiling:.2f}x; 1 worker against the in-process step: "
          f"{single / results[1][0]:.2f}x; load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return {"single": single, "steps": {n: r[0] for n, r in results.items()}, "speedup": speedup, "ceiling": ceiling}


if __name__ == "__main__":
    main()
