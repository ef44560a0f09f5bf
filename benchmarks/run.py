"""Run the benchmark suite: every workload on every available system, each in fresh processes (a cold
process on an empty cache folder, then a warm one on the same folder, which also times the calls).
Prints a Markdown table and writes benchmarks/results/latest.json and latest.md.

    python -m benchmarks.run [--workloads W1,W3] [--systems graphc,jax] [--quick] [--peer-python PATH]

Peers run under this Python when they import here, else under --peer-python (or $GRAPHC_BENCH_PEER_PYTHON),
e.g. a virtualenv holding PyTensor's pinned Numba.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.report import markdown
from benchmarks.systems import LIBRARY, SYSTEMS, cache_environment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD_NAMES = ("W1", "W2", "W3", "W4", "W5")


def python_for(system, peer_python):
    """The first interpreter that can import the system's library, or None."""
    for python in dict.fromkeys([sys.executable] + ([peer_python] if peer_python else [])):
        probe = subprocess.run([python, "-c", f"import {LIBRARY[system]}"], capture_output=True, cwd=ROOT)
        if probe.returncode == 0:
            return python
    return None


def environment(system, folder):
    """This process's environment, the system's caches pointed into `folder`, this checkout importable."""
    env = dict(os.environ, **cache_environment(system, folder))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def run_worker(python, system, workload, folder, timed, quick, timeout, extra_env=None):
    env = dict(environment(system, folder), **(extra_env or {}))
    command = [python, "-m", "benchmarks.worker", system, workload] + (["--time"] if timed else []) + (["--quick"] if quick else [])
    return run_result(command, env, timeout)


def run_result(command, env, timeout):
    """Run a worker process; its RESULT line as data, or {"failed": why}."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"failed": (done.stderr.strip().splitlines() or ["no result"])[-1][:200]}


def wait_for_background_builds(system, python, folder, timeout):
    """graphc builds serial kernels ahead of time in a background process when the cold run exits (see
    runtime/aot.py); the warm run starts when that process has ended (graphc's own wait, in a process
    of its own: the reported wait includes its ~0.2 s import of graphc)."""
    start = time.perf_counter()
    if system == "graphc":
        subprocess.run([python, "-c", f"from graphc.runtime import aot; aot.wait_for_builds({timeout})"],
                       cwd=ROOT, env=environment(system, folder), timeout=timeout + 60)
    return time.perf_counter() - start


def measure(system, workload, python, quick, timeout, neighbour=False):
    """Cold (empty cache), the rerun (a second program started right after, beside the background
    build if one runs), then warm once builds are done; with `neighbour`, warm again beside a CPU-bound
    process, with the system's threads and forced to one thread."""
    with tempfile.TemporaryDirectory(prefix=f"graphc-bench-{system}-{workload}-") as folder:
        cold = run_worker(python, system, workload, folder, False, quick, timeout)
        rerun = run_worker(python, system, workload, folder, True, quick, timeout)
        cold["background_s"] = wait_for_background_builds(system, python, folder, timeout)
        warm = run_worker(python, system, workload, folder, True, quick, timeout)
        if warm.get("cache", {}).get("status") == "miss":
            # graphc's key covers its own source: an edit in a shared working tree during the run means
            # a miss, recorded here; the warm run is repeated once on the refilled cache
            wait_for_background_builds(system, python, folder, timeout)
            missed = warm["cache"]["reason"]
            warm = run_worker(python, system, workload, folder, True, quick, timeout)
            warm["retried_after_miss"] = missed
        row = {"system": system, "workload": workload, "cold": cold, "warm": warm, "rerun": rerun}
        if neighbour:
            with cpu_bound_neighbour():
                row["loaded"] = run_worker(python, system, workload, folder, True, quick, timeout)
                row["loaded_one_thread"] = run_worker(python, system, workload, folder, True, quick, timeout, ONE_THREAD)
    print(f"  {workload} {system}: " + summary(row), file=sys.stderr, flush=True)
    return row


class cpu_bound_neighbour:
    """A process spinning on one core for as long as the block runs (another user's job)."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def summary(row):
    cold, warm = row["cold"], row["warm"]
    if "failed" in cold or "failed" in warm:
        return "FAILED " + (cold.get("failed") or warm.get("failed"))
    return (f"cold {cold['first_call_s']:.3f} s, warm {warm['first_call_s']:.3f} s, "
            f"median {warm['median_s'] * 1e6:.1f} us, error {warm['error']:.1e}")


def machine():
    import platform
    info = {"python": platform.python_version(), "machine": platform.machine(), "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOAD_NAMES))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--quick", action="store_true", help="fewer, shorter timing samples")
    parser.add_argument("--peer-python", default=os.environ.get("GRAPHC_BENCH_PEER_PYTHON"))
    parser.add_argument("--timeout", type=float, default=900, help="seconds per process")
    parser.add_argument("--output", default=os.path.join(HERE, "results"))
    parser.add_argument("--neighbour", action="store_true",
                        help="also time each workload beside a CPU-bound process, with its threads and with one")
    args = parser.parse_args(argv)
    rows, skipped = [], []
    for system in args.systems.split(","):
        python = python_for(system, args.peer_python)
        if python is None:
            skipped.append(system)
            continue
        for workload in args.workloads.split(","):
            rows.append(measure(system, workload, python, args.quick, args.timeout, args.neighbour))
    report = {"machine": machine(), "quick": args.quick, "skipped": skipped, "rows": rows}
    table = markdown(report)
    print(table)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "latest.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(args.output, "latest.md"), "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
