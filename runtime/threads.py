"""Threads for graphc's parallel loops (Numba's threading layer); BLAS keeps its own thread pool."""


def set_num_threads(n):
    """Run parallel kernel loops on `n` threads (at most the number Numba started with, the core count
    unless NUMBA_NUM_THREADS says otherwise). Compiled kernels, cached ones included, follow at once."""
    import numba
    numba.set_num_threads(int(n))


def get_num_threads():
    import numba
    return numba.get_num_threads()
