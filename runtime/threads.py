"""Threads for graphc's parallel loops: Numba's threading layer, chosen by graphc, and the thread count.
BLAS keeps its own thread pool.

Numba runs parallel loops on one of three layers, and none is safe for everything (Numba's "The
Threading Layers" docs and numba/np/ufunc/{workqueue.c,omppool.cpp}):
- tbb: thread-safe and fork-safe, when the tbb package is installed;
- omp: thread-safe, but on Linux GNU OpenMP can't run in a forked child: Numba kills the child
  (SIGTERM) at its first parallel loop, and fork is multiprocessing's default start method on Linux;
- workqueue: always present and fork-safe, but two parallel loops started at once abort the process.
So graphc chooses before Numba's first parallel launch: tbb, else workqueue, with the calls of
graphc's parallel kernels serialized by one process-wide lock (PARALLEL_LOCK, each kernel uses every
thread anyway). A layer the user names (NUMBA_THREADING_LAYER=omp, or numba.config.THREADING_LAYER)
is used when it loads; one that doesn't falls back to that choice with one warning, never an error.
Under omp, a forked child refuses graphc's parallel kernels with an error naming the fix instead of
being killed. The lock covers graphc's kernels only: the program's own parallel Numba functions,
called from other threads on the workqueue layer, still need a lock of the program's.
"""
import logging
import os
import threading

import numpy as np

from graphc.errors import GraphcError
from graphc.loc import user_location

THREAD_SAFE = ("tbb", "omp")
LAYERS = ("tbb", "omp", "workqueue")
PREFERRED = ("tbb", "workqueue")  # the fork-safe ones
PURPOSES = {"safe": ("tbb",), "threadsafe": ("tbb", "omp"), "forksafe": ("tbb", "workqueue")}  # Numba's meanings

PARALLEL_LOCK = threading.Lock()  # replaced in a forked child: a thread holding it there doesn't exist
_choosing = threading.Lock()
_layer = None
_forked_from_omp = False
log = logging.getLogger("graphc")


def set_num_threads(n):
    """Run parallel kernel loops on `n` threads (at most the number Numba started with, the core count
    unless NUMBA_NUM_THREADS says otherwise). Compiled kernels, cached ones included, follow at once."""
    import numba
    threading_layer()
    most = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= most:
        raise GraphcError(f"gc.set_num_threads takes a whole number from 1 to {most} (the threads started), "
                          f"got {type(n).__name__} {n!r} (at {user_location()})")
    numba.set_num_threads(int(n))


def get_num_threads():
    import numba
    threading_layer()
    return numba.get_num_threads()


def threading_layer():
    """The name of Numba's threading layer, chosen (and its threads started) on the first call."""
    global _layer
    if _layer is None:
        with _choosing:
            if _layer is None:
                _layer = _start_layer()
    return _layer


def _start_layer():
    import numba
    try:
        return numba.threading_layer()  # the program's own parallel code started one: it stays
    except ValueError:
        pass
    requested = str(numba.config.THREADING_LAYER).lower()
    asked = _candidates(requested, numba.config)
    for layer in asked + tuple(c for c in PREFERRED if c not in asked):
        if _loads(numba, layer):
            break
    chosen = numba.threading_layer()
    if chosen not in asked:
        log.warning("graphc: Numba's threading layer %r (NUMBA_THREADING_LAYER) is not available here; "
                    "parallel kernels use %r%s", requested, chosen,
                    "" if chosen in THREAD_SAFE else ", one call at a time")
    return chosen


def _candidates(requested, config):
    """The layers a request names, best first; () for a value Numba doesn't know."""
    if requested in LAYERS:
        return (requested,)
    if requested in PURPOSES:
        return PURPOSES[requested]
    if requested == "default" and "NUMBA_THREADING_LAYER_PRIORITY" in os.environ:
        return tuple(config.THREADING_LAYER_PRIORITY)  # an explicit order of the user's
    return PREFERRED if requested == "default" else ()


def _loads(numba, layer):
    """Start Numba's threads on `layer`; False (and nothing started) when it can't be loaded."""
    numba.config.THREADING_LAYER = layer
    try:
        numba.get_num_threads()  # the first query loads the layer and launches its threads
    except ValueError:  # Numba's "No threading layer could be loaded"
        return False
    return True


def parallel_call(dispatcher, graph_name):
    """What graphc calls for a parallel kernel: the dispatcher itself on a thread-safe layer; on
    workqueue the dispatcher under PARALLEL_LOCK; on GNU OpenMP one refusing to run in a forked child."""
    layer = threading_layer()
    if layer == "omp" and _gnu_openmp():
        return _refusing_in_forked_child(dispatcher, graph_name)
    if layer in THREAD_SAFE:
        return dispatcher
    return _serialized(dispatcher)


def _serialized(dispatcher):
    def serialized(*args):  # acquire/finally: ~0.35 µs a call against a with-block's ~0.7 (measured)
        PARALLEL_LOCK.acquire()  # looked up at call time: a forked child has a fresh lock
        try:
            return dispatcher(*args)
        finally:
            PARALLEL_LOCK.release()
    return serialized


def _refusing_in_forked_child(dispatcher, graph_name):
    def refusing(*args):
        if _forked_from_omp:
            raise GraphcError(
                f"graph {graph_name}: this process was forked from one running Numba's omp threading layer, and "
                "GNU OpenMP can't run parallel loops in a forked child (Numba would kill the process). Start "
                "worker processes with multiprocessing.get_context('spawn') (or 'forkserver'), or set "
                "NUMBA_THREADING_LAYER=workqueue or tbb before the first parallel kernel")
        return dispatcher(*args)
    return refusing


def _gnu_openmp():
    from numba.np.ufunc import omppool
    return omppool.openmp_vendor == "GNU"


def _after_fork_in_child():
    global PARALLEL_LOCK, _forked_from_omp
    PARALLEL_LOCK = threading.Lock()
    _forked_from_omp = _forked_from_omp or _layer == "omp"


os.register_at_fork(after_in_child=_after_fork_in_child)
