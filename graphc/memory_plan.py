"""MemoryPlan: the memory planner's result (passes/memory.py), kept on the final graph and reported by
f.memory(). A module of its own, outside the passes package: a warm start unpickles the cached
graph, plan included, without importing any pass."""
import math
from dataclasses import dataclass

import numpy as np

from graphc.printer import dim_names
from graphc.types import resolve, size_value


@dataclass
class MemoryPlan:
    """Buffers as (type, [first, last] schedule positions); `naive` lists one buffer per allocating node."""
    graph: object
    buffers: list
    naive: list
    steps: int

    def report(self, **sizes):
        """Bytes for the given call-time sizes (by their printed names, e.g. N=256)."""
        known = {resolve(dim): sizes[name] for dim, name in dim_names(self.graph).items() if name in sizes}
        nbytes = lambda t: _bytes(t, known)
        peak = 0
        for i in range(self.steps):
            peak = max(peak, sum(nbytes(t) for t, (start, end) in self.buffers if start <= i <= end))
        return {"naive_bytes": sum(nbytes(t) for t in self.naive), "planned_peak_bytes": peak,
                "naive_allocations": len(self.naive), "planned_allocations": len(self.buffers)}


def _bytes(t, known):
    try:
        return int(np.dtype(t.dtype).itemsize * math.prod(size_value(s, known) for s in t.shape))
    except KeyError as error:
        raise KeyError(f"give the size of {error.args[0].origin} (by its printed name) to compute bytes") from None
