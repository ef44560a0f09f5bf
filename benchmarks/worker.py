"""One (system, workload) in this fresh process: import, build + compile + first call, optionally the
per-call timings, correctness against the float64 reference. Prints one JSON line prefixed RESULT.

    python -m benchmarks.worker SYSTEM WORKLOAD [--time] [--quick]

The caller points the system's caches at a folder through the environment (systems.cache_environment).
"""
import time

START = time.perf_counter()

import copy  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402


def measure(system_name, workload_name, timed, quick):
    from benchmarks.systems import LIBRARY, load
    before = time.perf_counter()
    importlib.import_module(LIBRARY[system_name])
    result = {"import_s": time.perf_counter() - before}
    system = load(system_name)
    from benchmarks.workloads import WORKLOADS, scale_relative_error
    workload = WORKLOADS[workload_name]
    inputs = workload.make_inputs()
    pristine = copy.deepcopy(inputs)
    before = time.perf_counter()
    runner = system.build(workload, inputs)
    raw = runner.sync(runner.fn(*runner.args))
    result["first_call_s"] = time.perf_counter() - before
    got = runner.outputs(raw)
    if workload.stateful:  # report each parameter's change by the step
        got = [got[0]] + [new.astype("float64") - pristine[k].astype("float64")
                          for k, new in zip(sorted_params(), got[1:])]
    result["error"] = scale_relative_error(got, workload.reference(pristine))
    result["threads"] = str(system.threads())
    result.update(system_facts(runner))
    if timed:
        runner.extra.get("before_timing", lambda: None)()
        result.update(time_calls(runner, quick))
        amount, unit = workload.work(inputs)
        if unit:
            result["throughput"] = f"{amount / result['median_s'] / 1e9:.1f} {unit}"
    return result


def sorted_params():
    from benchmarks.workloads import MLP_PARAMS
    return MLP_PARAMS


def system_facts(runner):
    compiled = runner.extra.get("compiled")
    if compiled is None:
        return {}
    facts = {"cache": compiled.cache_info()}
    if "after" in runner.extra:
        facts.update(runner.extra["after"]())
    try:
        facts["memory"] = compiled.memory(**runner.extra.get("sizes", {}))
    except Exception as error:  # a fact missing from the report, never a failed benchmark
        facts["memory"] = f"unavailable: {error}"
    return json.loads(json.dumps(facts, default=str))


def time_calls(runner, quick):
    """Median and minimum per-call time over samples; a sample averages enough calls to last ~2-5 ms."""
    fn, args, sync = runner.fn, runner.args, runner.sync
    clock = time.perf_counter
    target, batch = (0.002 if quick else 0.005), 1
    while True:  # calibrate: double the batch until one sample lasts `target`
        start = clock()
        for _ in range(batch):
            sync(fn(*args))
        one = (clock() - start) / batch
        if one * batch >= target:
            break
        batch *= 2
    budget = 1.0 if quick else 4.0
    samples = max(3 if quick else 7, min(15 if quick else 41, int(budget / max(batch * one, 1e-9))))
    times = []
    for _ in range(samples):
        start = clock()
        for _ in range(batch):
            sync(fn(*args))
        times.append((clock() - start) / batch)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "samples": samples, "calls_per_sample": batch}


def main(argv):
    system, workload = argv[:2]
    try:
        result = measure(system, workload, "--time" in argv, "--quick" in argv)
        result["total_s"] = time.perf_counter() - START
    except Exception as error:  # reported in the table, never hidden
        import traceback
        traceback.print_exc()
        result = {"failed": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200]}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
