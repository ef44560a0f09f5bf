"""The `graphc` command line: dump, passes, gradcheck, bench, build, cache.

A MODEL is a Python file and the function in it that declares the graph, `path/model.py:NAME`
(NAME defaults to `model`), or a JSON file written by f.save / gc.to_json. The function takes no
arguments and returns the declaration: a dict {"inputs": [...], "outputs": [...] or a tensor,
"updates": {...}} (updates optional), a tuple (inputs, outputs[, updates]), or a gc.Declaration.
Sizes declared None take --size at call time (random inputs: floats standard normal, integers in
[0, --int-high)).
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np

FORMATS = ("text", "dot", "svg", "png", "json")


def main(argv=None):
    args = _parser().parse_args(argv)
    from .errors import GraphcError
    try:
        return args.run(args) or 0
    except GraphcError as error:
        print(f"graphc {args.command}: {error}", file=sys.stderr)
        return 2


def _parser():
    parser = argparse.ArgumentParser(prog="graphc", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    dump = commands.add_parser("dump", help="the IR of a model's graph, after the last pass or a named one")
    _model_arguments(dump)
    which = dump.add_mutually_exclusive_group()
    which.add_argument("--after", metavar="PASS", help="the graph after this pass (see `graphc passes`)")
    which.add_argument("--all-passes", action="store_true", help="one dump per pass, into the folder -o names")
    dump.add_argument("--format", choices=FORMATS, default="text")
    dump.add_argument("--dense", action="store_true", help="text: renumber nodes %%0, %%1, ... in order of appearance")
    dump.add_argument("-o", "--output", metavar="OUT", help="a file (a folder with --all-passes); default stdout")
    dump.set_defaults(run=_dump)

    passes = commands.add_parser("passes", help="the pass pipeline, in order")
    passes.set_defaults(run=_passes)

    gradcheck = commands.add_parser("gradcheck", help="analytic gradients of the first output against central "
                                                      "differences, per input; exit code 1 on a failure")
    _model_arguments(gradcheck, size=4)
    gradcheck.set_defaults(run=_gradcheck)

    bench = commands.add_parser("bench", help="cold compile, warm start and per-call time, as a table")
    _model_arguments(bench)
    bench.add_argument("--calls", type=int, default=200, help="calls timed (default 200)")
    bench.set_defaults(run=_bench)

    build = commands.add_parser("build", help="compile into the kernel cache ahead of training")
    _model_arguments(build)
    build.set_defaults(run=_build)

    cache = commands.add_parser("cache", help="the kernel cache: info or clear")
    cache.add_argument("action", choices=("info", "clear"))
    cache.set_defaults(run=_cache)

    timing = commands.add_parser("_compile-time")  # bench's cold and warm runs, each in a fresh process
    _model_arguments(timing)
    timing.set_defaults(run=_compile_time)
    return parser


def _model_arguments(parser, size=64):
    parser.add_argument("model", metavar="MODEL", help="path/model.py[:NAME] or a saved .json graph")
    parser.add_argument("--size", type=int, default=size, help=f"every call-time size (default {size})")
    parser.add_argument("--int-high", type=int, default=2, help="random integer inputs are in [0, INT_HIGH)")
    parser.add_argument("--seed", type=int, default=0)


# ---- reading a model ---------------------------------------------------------------------------------

def load_declaration(spec):
    """The gc.Declaration a MODEL names."""
    from .errors import GraphcError
    from .saving import Declaration, from_json
    path, _, name = spec.partition(":") if not os.path.exists(spec) else (spec, "", "")
    if not os.path.isfile(path):
        raise GraphcError(f"no model file {path!r}")
    if path.endswith(".json"):
        with open(path, "rb") as f:
            return from_json(f.read())
    module = _import_file(path)
    name = name or "model"
    declare = getattr(module, name, None)
    if not callable(declare):
        functions = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                           and getattr(v, "__module__", None) == module.__name__)
        raise GraphcError(f"{path} has no function {name!r}; its functions: {', '.join(functions) or 'none'}")
    result = declare()
    if isinstance(result, Declaration):
        return result
    if isinstance(result, dict) and {"inputs", "outputs"} <= set(result) <= {"inputs", "outputs", "updates", "name"}:
        inputs, outputs, updates = result["inputs"], result["outputs"], result.get("updates") or {}
        label = result.get("name", name)
    elif isinstance(result, tuple) and len(result) in (2, 3):
        inputs, outputs, updates, label = result[0], result[1], (result[2] if len(result) == 3 else {}), name
    else:
        raise GraphcError(f"{path}:{name}() must return {{'inputs', 'outputs'[, 'updates']}} or "
                          f"(inputs, outputs[, updates]), got {type(result).__name__}")
    from .tensor import Tensor
    single = isinstance(outputs, Tensor)
    return Declaration(inputs=list(inputs), outputs=[outputs] if single else list(outputs), updates=dict(updates),
                       name=label, single=single)


def _import_file(path):
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # the model's own imports of files beside it
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_inputs(declaration, size, int_high, seed):
    """Arrays for the call inputs: their declared shapes, None sizes `size`."""
    from .types import Dim
    rng = np.random.default_rng(seed)
    arrays = []
    for t in declaration.inputs:
        shape = tuple(size if isinstance(s, Dim) else s for s in t.shape)
        if t.dtype.startswith("float"):
            arrays.append(rng.standard_normal(shape).astype(t.dtype))
        elif t.dtype == "bool":
            arrays.append(rng.random(shape) < 0.5)
        else:
            arrays.append(rng.integers(0, int_high, shape).astype(t.dtype))
    return arrays


# ---- commands ----------------------------------------------------------------------------------------

def _dump(args):
    from .printer import format_graph
    declaration = load_declaration(args.model)
    f = declaration.compile()
    if args.all_passes:
        if not args.output:
            print("graphc dump --all-passes writes one file per pass: give the folder with -o", file=sys.stderr)
            return 2
        os.makedirs(args.output, exist_ok=True)
        snapshots = f._pipeline.snapshots
        for k, (name, graph) in enumerate(snapshots.items()):
            target = os.path.join(args.output, f"{k:02d}-{name}.{_suffix(args.format)}")
            _write(target, _formatted(graph, args, format_graph))
            print(target)
        return 0
    graph = f.ir if args.after is None else _snapshot(f, args.after)
    data = _formatted(graph, args, format_graph)
    if args.output:
        _write(args.output, data)
    else:
        sys.stdout.buffer.write(data if data.endswith(b"\n") else data + b"\n")
    return 0


def _snapshot(f, name):
    from .errors import GraphcError
    snapshots = f._pipeline.snapshots
    if name not in snapshots:
        raise GraphcError(f"no pass named {name!r}; passes: {', '.join(snapshots)}")
    return snapshots[name]


def _formatted(graph, args, format_graph):
    format = args.format
    if format == "text":
        return format_graph(graph, dense=args.dense).encode()
    if format == "json":
        import json
        from .serialize import graph_to_json
        return json.dumps(graph_to_json(graph), sort_keys=True, indent=1).encode()
    from .dot import render, to_dot
    return render(to_dot(graph), format)


def _suffix(format):
    return {"text": "txt"}.get(format, format)


def _write(target, data):
    with open(target, "wb") as out:
        out.write(data)


def _passes(args):
    from graphc import passes
    width = max(len(p.name) for p in passes.PIPELINE)
    for k, p in enumerate(passes.PIPELINE, 1):
        print(f"{k:>2}. {p.name:<{width}}  {p.description}")
    return 0


def _gradcheck(args):
    from .check import check_grad
    from .errors import GraphcError
    from .shared import reachable_shared
    declaration = load_declaration(args.model)
    loss = declaration.outputs[0]
    if loss.ndim != 0 or not loss.dtype.startswith("float"):
        raise GraphcError(f"gradcheck differentiates the first output, which must be a float scalar; it is {loss.type}")
    arrays = random_inputs(declaration, args.size, args.int_high, args.seed)
    feeds = dict(zip(declaration.inputs, arrays))
    wrt = [t for t in declaration.inputs if t.dtype.startswith("float")]
    wrt += [s for s in reachable_shared([loss]) if s.trainable and s.dtype.startswith("float")]
    report = check_grad(loss, wrt, feeds, seed=args.seed)
    print(report)
    return 0 if report else 1


def _bench(args):
    import tempfile
    declaration = load_declaration(args.model)
    with tempfile.TemporaryDirectory(prefix="graphc-bench-") as folder:
        env = dict(os.environ, GRAPHC_CACHE_DIR=folder)
        command = [sys.executable, "-m", "graphc.cli", "_compile-time", args.model, "--size", str(args.size)]
        cold = _timed_process(command, env)
        from graphc.runtime import aot
        previous = os.environ.get("GRAPHC_CACHE_DIR")
        os.environ["GRAPHC_CACHE_DIR"] = folder
        try:
            aot.wait_for_builds()
        finally:
            if previous is None:
                os.environ.pop("GRAPHC_CACHE_DIR")
            else:
                os.environ["GRAPHC_CACHE_DIR"] = previous
        warm = _timed_process(command, env)
    f = declaration.compile()
    arrays = random_inputs(declaration, args.size, args.int_high, args.seed)
    f(*arrays)
    times = []
    for _ in range(args.calls):
        start = time.perf_counter()
        f(*arrays)
        times.append(time.perf_counter() - start)
    rows = [("cold compile + first call", f"{cold:.3f} s"), ("warm start (cache) + first call", f"{warm:.3f} s"),
            (f"per call, median of {args.calls}", f"{np.median(times) * 1e6:.1f} µs"),
            ("per call, min", f"{min(times) * 1e6:.1f} µs")]
    width = max(len(r[0]) for r in rows)
    print(f"{declaration.name} (call-time sizes {args.size})")
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>12}")
    return 0


def _timed_process(command, env):
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        from .errors import GraphcError
        raise GraphcError(f"the timing process failed: {out.stderr.strip()[-2000:]}")
    return float(out.stdout.split()[-1])


def _ready(args):
    """(the declaration, its compiled function, seconds to load, compile and call it once)."""
    start = time.perf_counter()
    declaration = load_declaration(args.model)
    f = declaration.compile()
    f(*random_inputs(declaration, args.size, args.int_high, args.seed))
    return declaration, f, time.perf_counter() - start


def _compile_time(args):
    print(_ready(args)[2])
    return 0


def _build(args):
    from graphc.runtime import aot
    declaration, f, elapsed = _ready(args)
    info = f.cache_info()
    print(f"{declaration.name}: {info['status']} ({info['reason']}) in {elapsed:.2f} s")
    print(f"  kernel: {info['kernel']}, library kernels: {info['library_kernels']} "
          f"(compiled {info['library']['compiled']}, loaded {info['library']['loaded']}, "
          f"reused {info['library']['reused']})")
    print(f"  cache: {info['folder']}, key {info['key'][:16]}")
    if aot.enabled():
        aot.wait_for_builds()
        from graphc.runtime import cache
        record = cache.recorded_on_disk(info["key"], "aot")
        print(f"  ahead-of-time module: {record['file'] if record else 'none (Numba cache used)'}")
    return 0


def _cache(args):
    from graphc.runtime import cache
    folder = cache.cache_dir()
    files = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names] \
        if os.path.isdir(folder) else []
    if args.action == "info":
        total = sum(os.path.getsize(p) for p in files)
        graphs = sum(1 for p in files if p.endswith(".json") and os.path.basename(p).startswith("graphc_"))
        print(f"{folder}: {len(files)} files, {total / 1e6:.1f} MB, {graphs} compiled graphs")
        return 0
    import shutil
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    print(f"removed {folder} ({len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
