"""Compiling a kernel for the argument types the graph fixes, or loading it from the disk cache.

A kernel is compiled for one signature (dtypes, ranks, C layout), so call-time sizes never recompile;
Numba's dispatcher is then closed (disable_compile). `COUNTS` counts, per process, kernels compiled
by Numba, loaded from Numba's cache and imported ahead-of-time: tests use it to prove that a warm
start compiled nothing.

gc.compile may run in several threads at once; one kernel is compiled or loaded at a time (LOADING),
since what that touches is process-wide: the kernel modules in sys.modules, Numba's cache files,
COUNTS, the ahead-of-time queue and the one-time setups (malloc tuning, BLAS preload, the threading
layer). Numba compiles one function at a time anyway (its own compiler lock); the passes still run
concurrently.
"""
import collections
import logging
import math
import threading

import numpy as np

from graphc.errors import GraphcError

from . import adaptive, aot, cache, library, threads
from .allocator import keep_freed_memory
from .cache import load_module

COUNTS = collections.Counter()
LOADING = threading.Lock()
TINY_ELEMENTS = 4096  # arrays up to this size are tiny (see wants_ahead_of_time)


def argument_types(graph, kernel):
    from numba import from_dtype, types
    sig = []
    for k, node in enumerate(kernel.arg_nodes):
        t = graph.type(node)
        element = from_dtype(np.dtype(t.dtype))
        sig.append(element if k in kernel.scalar_args else types.Array(element, t.ndim, "C"))
    return tuple(sig)


def compile_kernel(graph, kernel, key):
    """The driver's njit dispatcher, compiled now (or loaded from Numba's cache) for the graph's argument
    types, with the library kernels it calls; and (where it came from, what it did with the library)."""
    aot.preload_blas()  # before Numba's first compile, which otherwise imports all of scipy.linalg for BLAS
    import numba
    if kernel.parallel:
        threads.threading_layer()  # graphc's choice, made before Numba's first parallel launch
    library.register(kernel.library)
    module = load_module(key, kernel.source)  # binds the library kernels (library.kernel)
    keys = [k.key for k in kernel.library]
    before = library.snapshot(keys)
    if kernel.python:
        return getattr(module, kernel.name), *_compile_library(graph, kernel, module, keys, before)
    try:
        dispatcher = _njit(graph, kernel, module, key)
    except numba.core.errors.NumbaError as error:
        raise GraphcError(f"internal error: the generated kernel for graph {graph.name} failed to compile "
                          f"(see f.source()): {str(error).splitlines()[0]}") from error
    dispatcher.disable_compile()
    loaded = sum(dispatcher.stats.cache_hits.values())
    COUNTS["numba cache loads" if loaded else "numba compiles"] += 1
    if loaded:  # the cached driver holds its kernels' code: none was needed
        return dispatcher, "Numba's cache", None
    return dispatcher, "compiled by Numba", _library_use(before, keys)


def _compile_library(graph, kernel, module, keys, before):
    """A Python driver's library kernels, compiled (or loaded from Numba's cache) for the argument types
    the driver calls them with. Their dispatchers stay open: a view whose layout differs at run time
    from the one codegen expected compiles once more rather than failing. When Numba's cache fails to
    load (as in _njit), the kernels' files are removed and they compile without it."""
    import numba
    signatures = [(j, tuple(_numba_type(t) for t in types)) for j, types in kernel.signatures]
    try:
        for j, signature in signatures:
            library.kernel(keys[j]).compile(signature)
    except numba.core.errors.NumbaError as error:
        raise GraphcError(f"internal error: a library kernel of graph {graph.name} failed to compile "
                          f"(see f.source()): {str(error).splitlines()[0]}") from error
    except Exception as error:  # noqa: BLE001  anything Numba's cache loader raises
        fresh = _without_numba_cache(f"graph {graph.name}'s library kernels", error, kernel, module)
        for j, signature in signatures:
            fresh[keys[j]].compile(signature)
    use = _library_use(before, keys)
    return ("compiled by Numba" if use["compiled"] else "Numba's cache") + " (Python driver, library kernels)", use


def _without_numba_cache(what, error, kernel, module):
    """After an error of Numba's cache loader: one warning, the library kernels' files removed and fresh
    dispatchers compiling without that cache bound into the driver module; returns them by key."""
    logging.getLogger("graphc").warning("graphc: Numba's cache of %s failed to load (%s: %s); compiling without "
                                        "that cache", what, type(error).__name__, error)
    fresh = library.without_cache([k.key for k in kernel.library])
    for j, k in enumerate(kernel.library):
        module.__dict__[f"_k{j}"] = fresh[k.key]
    return fresh


def _numba_type(t):
    from numba import from_dtype, types
    if t[0] == "int64":
        return types.int64
    element = from_dtype(np.dtype(t[1]))
    return element if t[0] == "scalar" else types.Array(element, t[2], t[3])


def _library_use(before, keys):
    """{"compiled": n, "loaded": n, "reused": n} over the graph's library kernels, counted in COUNTS;
    the Numba files of those compiled are recorded (checked before Numba next reads them)."""
    use = library.usage(before, library.snapshot(keys))
    for key, what in use.items():
        if what != "reused":
            COUNTS[f"library kernels {what}"] += 1
        if what == "compiled":
            cache.record_numba_files(key)
    return {what: sum(w == what for w in use.values()) for what in ("compiled", "loaded", "reused")}


def _njit(graph, kernel, module, key):
    """numba.njit through Numba's cache; when reading that cache fails anyway (files changed between
    graphc's digest check and Numba's read, or an error of Numba's own loader), the files of the driver
    and of its library kernels are removed and they compile without it."""
    import numba
    fn = getattr(module, kernel.name)
    compile_for = lambda cache: numba.njit(argument_types(graph, kernel), cache=cache, error_model="numpy",  # noqa: E731
                                           nogil=True, parallel=kernel.parallel)(fn)
    try:
        return compile_for(True)
    except numba.core.errors.NumbaError:
        raise
    except Exception as error:  # noqa: BLE001  anything Numba's cache loader raises
        _without_numba_cache(f"kernel {key}", error, kernel, module)
        cache.remove_numba_files(key)
        return compile_for(False)


def wants_ahead_of_time(graph, kernel):
    """Serial kernels, except tiny fixed-size ones that return arrays: an ahead-of-time module boxes
    each returned array ~0.5 µs slower than Numba's JIT wrapper (measured), which would double such a
    kernel's call; those warm-start from Numba's cache instead."""
    if kernel.parallel or kernel.python:  # pycc compiles njit functions only
        return False
    types = [graph.type(n) for n in list(graph.inputs) + list(graph.outputs)]
    tiny = all(t.is_static() and math.prod(t.shape) <= TINY_ELEMENTS for t in types)
    return not (tiny and any(graph.type(n).ndim for n in graph.outputs))


def kernel_function(graph, kernel, key):
    """(callable, where it came from): the ahead-of-time module when one was built for this key, else
    Numba's dispatcher (the binder checks every argument for both); a parallel
    kernel's dispatcher is wrapped as the threading layer needs (threads.parallel_call); and what the
    compile did with the library kernels ({"compiled": n, "loaded": n, "reused": n}; None when the
    driver came from a cache, its kernels' code with it)."""
    with LOADING:
        function, where, use = _load_or_compile(graph, kernel, key)
    if kernel.parallel:
        function = threads.parallel_call(function, graph.name)
    return adaptive.choosing_threads(function, kernel.blas, kernel.parallel), where, use


def _load_or_compile(graph, kernel, key):
    keep_freed_memory()
    ahead = wants_ahead_of_time(graph, kernel)
    entry = aot.load(key, kernel.name) if ahead else None
    if entry is not None:
        if kernel.blas:
            aot.preload_blas()
        COUNTS["ahead-of-time imports"] += 1
        return entry, "ahead-of-time module", None
    dispatcher, where, use = compile_kernel(graph, kernel, key)
    if ahead and aot.build_in_background(key):
        where += "; ahead-of-time build queued (it runs when this process exits)"
    return dispatcher, where, use


def constant_arrays(graph, kernel):
    # writable C copies: the kernel's signature types arrays as mutable (graphc's constants are read-only)
    return [np.array(graph.attrs(n)["value"], order="C") for n in kernel.arg_nodes[len(graph.inputs):]]
