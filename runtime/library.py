"""The kernel library: each distinct loop nest is one compiled function, shared by every graph that has it.

Codegen writes a library kernel's text with positional names (runtime/codegen.py), so the same
loop nest in every layer of a model, in every graph of a program and in every later program is the
same text, hence the same key: sha256 of the text, whether it runs in parallel, graphc's own source
(the helpers it calls) and the machine (cache.make_key). A graph's driver binds each kernel it calls
with `kernel(key)`, once the graph's kernels are registered (`register`).

Each kernel's module lives in the graphc cache folder and is compiled by Numba for the argument
types of the driver calling it (dtypes, ranks, layouts), through Numba's cache: a later process
loads it instead of compiling. Its entry there (cache.library_entry) records the digests of those
Numba files, checked before Numba reads them, as for a driver's. Within a process a kernel is one
dispatcher, compiled once per argument types.
"""
import threading
from dataclasses import dataclass

from . import cache

# what every kernel module imports (a driver compiled by Numba too): the helpers they call
PRELUDE = """\
import numpy as np
from numba import njit, prange
from graphc.runtime.scalar_math import exp, log, tanh, sqrt, log1p, expm1, accumulate, parallel_chunks
from graphc.runtime.blas import matmul_into
from graphc.runtime.arrays import empty, contiguous, address
"""

_known = {}        # key -> LibraryKernel: those a graph being compiled or loaded registered
_dispatchers = {}  # key -> its Numba dispatcher
_lock = threading.RLock()


@dataclass(frozen=True)
class LibraryKernel:
    key: str
    source: str      # its module's text; the function is `kernel`
    parallel: bool   # compiled with parallel=True (its loop is a prange)

    @classmethod
    def of(cls, source, parallel):
        return cls(key_of(source, parallel), source, bool(parallel))


def module_source(text):
    """A kernel's module: the kernels' imports, then its function."""
    return PRELUDE + "\n\n" + text + "\n"


def on_disk(key):
    """Numba's cache holds a compile of this kernel (an index file beside its module): a load, not a compile."""
    target = cache.path(key, ".py")
    return any(name.startswith(f"graphc_{key}.") and name.endswith(".nbi")
               for folder in cache.numba_cache_folders(target) for name in cache.listdir(folder))


def key_of(source, parallel):
    return cache.make_key("library kernel", source, f"parallel {bool(parallel)}", cache.source_digest())


def register(kernels):
    """Make `kernels` known to `kernel()`; one whose key is not its text's (a damaged entry) is refused."""
    for k in kernels:
        if not (isinstance(k.source, str) and isinstance(k.parallel, bool)) or key_of(k.source, k.parallel) != k.key:
            raise cache.BadEntry(f"library kernel {str(k.key)[:16]}... does not match its text")
    with _lock:
        for k in kernels:
            _known.setdefault(k.key, k)


def kernel(key):
    """The Numba dispatcher of a registered kernel (not compiled yet: the driver's compile does that)."""
    with _lock:
        dispatcher = _dispatchers.get(key)
        if dispatcher is None:
            dispatcher = _dispatchers[key] = _dispatcher(_known[key], use_cache=True)
        return dispatcher


def _dispatcher(k, use_cache):
    import numba
    cache.library_entry(k.key, k.source)
    module = cache.load_module(k.key, k.source)
    return numba.njit(cache=use_cache and cache.persistent(), error_model="numpy", nogil=True,
                      parallel=k.parallel)(module.kernel)


def without_cache(keys):
    """Fresh dispatchers, compiling without Numba's cache, for kernels whose cache failed to load (their
    files are removed): returned by key, for the driver module to rebind."""
    with _lock:
        for key in keys:
            cache.remove_numba_files(key)
            _dispatchers[key] = _dispatcher(_known[key], use_cache=False)
        return {key: _dispatchers[key] for key in keys}


def snapshot(keys):
    """Per kernel: (argument types compiled, Numba cache loads) now; `usage` compares two snapshots."""
    with _lock:
        return {key: (len(_dispatchers[key].overloads), sum(_dispatchers[key].stats.cache_hits.values()))
                for key in keys if key in _dispatchers}


def usage(before, after):
    """{key: "compiled" | "loaded" | "reused"}: what a driver's compile did with each of its kernels
    (compiled when Numba compiled it for some argument types, loaded when it only came from Numba's
    cache, reused when this process had it already)."""
    what = {}
    for key, (types, hits) in after.items():
        old_types, old_hits = before.get(key, (0, 0))
        compiled = (types - old_types) - (hits - old_hits)
        what[key] = "compiled" if compiled > 0 else "loaded" if hits > old_hits else "reused"
    return what
