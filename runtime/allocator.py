"""Keep freed memory for the next call instead of returning it to the OS.

A kernel allocates its large arrays afresh on every call. glibc's malloc serves blocks above its mmap
threshold with fresh mappings and trims the heap when much is free at its top, so each call pays a
page fault per 4 KB page it writes: for W3 (4M float32, five 16 MB arrays) that was ~30 ms of a
~50 ms call. With the mmap threshold at its maximum (32 MB) and trimming off, freed blocks are
reused and stay mapped. The cost: the process keeps its peak heap instead of shrinking. It is set
once, when graphc compiles or loads its first kernel (glibc only; GRAPHC_KEEP_MEMORY=0 leaves
malloc alone).
"""
import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024   # glibc's ceiling on 64-bit
_tuned = None  # the first tuning's outcome


def keep_freed_memory():
    """Tune glibc's malloc once per process; True when it was tuned."""
    global _tuned
    if _tuned is None:
        if os.environ.get("GRAPHC_KEEP_MEMORY", "1") == "0":
            return False
        _tuned = _tune()
    return _tuned


def _tune():
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
