"""The disk cache: everything a compile produced, under one key built from what the user wrote.

Key = sha256 of: the canonical text of the *lowered* graph (renumbered SSA with dtypes, ranks, sizes,
input names and updates, and each node's source location, so the cached graph's dumps and the
kernel's messages name the caller's lines) plus the bytes of its array constants; the disabled
passes and the options; a digest of graphc's own source files (so an edited graphc, its pass
pipeline included, never reads a stale entry); Numba's, NumPy's and Python's versions; the CPU (model and flags).

Per key the folder holds `graphc_<key>.py` (the kernel source; Numba's own cache of the compiled
kernel sits beside it in __pycache__), `graphc_<key>.pkl` (the optimized graph and the kernel
description) and, for serial kernels, `graphc_<key>.<ext>` (the kernel compiled ahead of time, see
runtime/aot.py). `graphc_<shape-key>.last` remembers the input types a graph structure was last
compiled for, so a miss can say why ("input x changed float32 -> float64"). Every write is atomic
(a temporary file renamed into place). GRAPHC_CACHE_DIR moves the folder (default ~/.cache/graphc).
"""
import functools
import hashlib
import importlib.metadata
import os
import pickle
import platform
import re
import sys
import tempfile

import numpy as np

FORMAT = 2  # bump when the artifact layout changes


def cache_dir():
    path = os.environ.get("GRAPHC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphc")
    os.makedirs(path, exist_ok=True)
    return path


@functools.lru_cache(maxsize=None)
def source_digest():
    """A digest of graphc's own Python sources: any edit to graphc invalidates the cache. The packages
    are found, not imported (a warm start never imports the passes)."""
    import importlib.util

    import graphc
    digest = hashlib.sha256()
    for package in ("graphc", "graphc.passes", "graphc.runtime"):
        folder = os.path.dirname(importlib.util.find_spec(package).origin)
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(f for f in files if f.endswith(".py")):
                with open(os.path.join(root, name), "rb") as f:
                    digest.update(name.encode() + f.read())
    return f"{graphc.__version__}+{digest.hexdigest()[:16]}"


@functools.lru_cache(maxsize=None)
def environment():
    """Versions and CPU, read without importing Numba (a warm start may never need it)."""
    return (f"numba {importlib.metadata.version('numba')}, numpy {np.__version__}, python {sys.version.split()[0]}, "
            f"{platform.machine()} {cpu_description()}")


def cpu_description():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor()
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    flag_hash = hashlib.sha256(flags.group(1).encode()).hexdigest()[:12] if flags else ""
    return f"{model.group(1) if model else '?'} [{flag_hash}]"


def canonical_text(graph):
    """The lowered graph as text with its source locations, plus the bytes of every array constant.

    Locations are part of the key: the cached optimized graph carries them into dumps and kernel
    error messages, which must name the lines of the program that is running now."""
    from graphc.printer import format_graph
    parts = [format_graph(graph, show_loc=True)]
    for node in graph.order():
        value = graph.attrs(node).get("value") if graph.op(node) == "constant" else None
        if isinstance(value, np.ndarray):
            parts.append(f"%{node} {value.dtype} {value.shape} {hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}")
    return "\n".join(parts)


def compile_config(disable, options):
    """The compile's settings. The pass pipeline is graphc source (passes/__init__.py), which the
    digest covers, so a warm start need not import the passes to name them."""
    return f"disable {sorted(disable)} options {sorted(options.items())} format {FORMAT} graphc {source_digest()}"


def make_key(*parts):
    text = "\n".join(map(str, parts + (environment(),)))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def path(key, suffix):
    return os.path.join(cache_dir(), f"graphc_{key}{suffix}")


def write_atomic(target, data):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_artifact(key):
    try:
        with open(path(key, ".pkl"), "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError):
        return None


def store_artifact(key, artifact):
    write_atomic(path(key, ".pkl"), pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL))


def write_module(key, source):
    """The kernel source as an importable module file (rewritten only when its text differs)."""
    target = path(key, ".py")
    try:
        with open(target) as f:
            if f.read() == source:
                return target
    except OSError:
        pass
    write_atomic(target, source.encode())
    return target


def load_module(key, source):
    """Import the kernel module for `key` (written first when absent), once per process."""
    import importlib.util
    name = f"graphc_kernel_{key}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, write_module(key, source))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


# ---- why a miss happened -----------------------------------------------------------------------------

FIRST_COMPILE = "first compile of this graph"


def shape_key(text, config):
    """The key of a graph's structure (its canonical text) without its input dtypes: the same model at
    another dtype."""
    return make_key("structure", re.sub(r"\b(f32|f64|i32|i64|bool)\[", "T[", text), config)


def input_types(graph):
    return {graph.attrs(n)["name"]: graph.type(n).dtype for n in graph.inputs}


def miss_reason(structure, graph):
    """Why this graph (of shape_key `structure`) is not in the cache: new, or which input types changed
    since the last compile."""
    try:
        with open(path(structure, ".last"), "rb") as f:
            last = pickle.load(f)
    except (OSError, pickle.PickleError, EOFError):
        return FIRST_COMPILE
    now = input_types(graph)
    changes = [f"input {name} changed {last[name]} -> {dtype}" for name, dtype in now.items()
               if name in last and last[name] != dtype]
    return "; ".join(changes) or "first compile with these options or this graphc/Numba version"


def remember_types(structure, graph):
    write_atomic(path(structure, ".last"), pickle.dumps(input_types(graph)))
