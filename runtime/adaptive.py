"""Thread counts chosen by timing: a compiled graph that runs threads (BLAS, or its parallel loops)
runs on all of them or on one, whichever its own recent calls were faster with.

A thread count fixed by work size fails on a busy machine. Measured on 2 cores beside one CPU-bound
process, a 512x512x512 float32 product took 4.3 ms on one BLAS thread and 19.5 ms on two, while a
128x128x128 one was 2.8x faster on two. Quiet, two threads win from m*n*k of about 1M. Only the
step's own timing knows which holds now. So each such graph's calls go through a ThreadChoice:
every so often it times a few calls on the other count (3 calls on each, medians compared, and the
other count must be 10% faster to be chosen). The first call on each count in a trial is not timed
(threads that slept, or a BLAS pool still starting, made the first two-thread calls 6 ms against
1.7), and the first trial waits for `FIRST` calls. The interval doubles while the choice holds, from
`FIRST` up to `LONGEST` calls, so on a quiet machine about 1% of calls run on the slower count; it
starts again at FIRST when the choice changes.

Counts are process-wide (OpenBLAS's setting, Numba's count for the calling thread), so graphs
called from several threads at once share them; each graph sets its choice before its call.
"""
import threading
import time

FIRST, LONGEST, TRIAL = 16, 1024, 3
BETTER = 0.9  # the other count is chosen when its median is below this share of the current one's

_blas = {"controllers": None, "threads": None, "default": None}


def blas_setter():
    """(set(n), the BLAS's own thread count), through threadpoolctl; None when it finds no BLAS that
    takes a thread count (then nothing is chosen)."""
    if _blas["controllers"] is None:
        try:
            from threadpoolctl import ThreadpoolController
            found = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        except Exception:  # noqa: BLE001  a threadpoolctl that can't read this process: no choice
            found = []
        _blas["controllers"] = found
        _blas["default"] = _blas["threads"] = max((c.num_threads for c in found), default=1)
    if not _blas["controllers"] or _blas["default"] <= 1:
        return None

    def set_blas(n):
        if _blas["threads"] != n:  # the BLAS call is ~1 µs: made only when the count changes
            for c in _blas["controllers"]:
                c.set_num_threads(n)
            _blas["threads"] = n
    return set_blas, _blas["default"]


def numba_setter():
    import numba
    most = numba.get_num_threads()
    if most <= 1:
        return None

    def set_numba(n):
        if numba.get_num_threads() != n:
            numba.set_num_threads(n)
    return set_numba, most


class ThreadChoice:
    """Calls `function` on `many` or on 1 thread(s) (set by `setter`), choosing by timing its calls."""

    def __init__(self, function, setter, many):
        self.function, self.set, self.many = function, setter, many
        self.chosen, self.interval, self.countdown = many, FIRST, FIRST
        self.times = {many: [], 1: []}
        self.warmed = set()  # the counts whose untimed first call of this trial ran
        self.timing = threading.Lock()  # one thread times a trial; calls from others meanwhile just run

    def __call__(self, *args):
        if self.countdown > 0 or not self.timing.acquire(blocking=False):
            self.countdown -= 1
            self.set(self.chosen)
            return self.function(*args)
        try:
            return self._timed(args)
        finally:
            self.timing.release()

    def _timed(self, args):
        """A call of a trial: TRIAL calls on the chosen count, then TRIAL on the other, then decide."""
        chosen, other = self.chosen, 1 if self.chosen == self.many else self.many
        count = chosen if len(self.times[chosen]) < TRIAL else other
        self.set(count)
        if count not in self.warmed:
            self.warmed.add(count)
            return self.function(*args)
        start = time.perf_counter()
        try:
            return self.function(*args)
        finally:
            self.times[count].append(time.perf_counter() - start)
            if len(self.times[other]) == TRIAL:
                self._decide(chosen, other)

    def _decide(self, chosen, other):
        ours, theirs = (sorted(self.times[n])[TRIAL // 2] for n in (chosen, other))
        if theirs < BETTER * ours:
            self.chosen, self.interval = other, FIRST
        else:
            self.interval = min(2 * self.interval, LONGEST)
        self.times, self.warmed = {self.many: [], 1: []}, set()
        self.countdown = self.interval


def choosing_threads(function, blas, parallel):
    """`function` through a ThreadChoice when it runs threads of BLAS or its own parallel loops (BLAS
    graphs keep their loops serial, see OpDef.threaded); else `function` itself."""
    found = blas_setter() if blas else numba_setter() if parallel else None
    if found is None:
        return function
    setter, many = found
    return ThreadChoice(function, setter, many)
