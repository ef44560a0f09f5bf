"""MemoryPlan: the memory planner's result (passes/memory.py), kept on the final graph and reported by
f.memory(). A module of its own, outside the passes package: a warm start unpickles the cached
graph, plan included, without importing any pass."""
import math
from dataclasses import dataclass

import numpy as np

from graphc.printer import dim_names
from graphc.types import Dim, resolve


@dataclass
class MemoryPlan:
    """Buffers as (type, [first, last] schedule positions); `naive` lists one buffer per allocating node."""
    graph: object
    buffers: list
    naive: list
    steps: int

    def report(self, **sizes):
        """Bytes for the given call-time sizes (by their printed names, e.g. N=256)."""
        names = {name: dim for dim, name in dim_names(self.graph).items()}
        nbytes = lambda t: _bytes(t, sizes, names)
        peak = 0
        for i in range(self.steps):
            peak = max(peak, sum(nbytes(t) for t, (start, end) in self.buffers if start <= i <= end))
        return {"naive_bytes": sum(nbytes(t) for t in self.naive), "planned_peak_bytes": peak,
                "naive_allocations": len(self.naive), "planned_allocations": len(self.buffers)}


def _bytes(t, sizes, names):
    values = {}
    for name, dim in names.items():
        if name in sizes:
            values[resolve(dim)] = sizes[name]
    return int(np.dtype(t.dtype).itemsize * math.prod(_size(s, values) for s in t.shape))


def _size(size, values):
    size = resolve(size)
    if not isinstance(size, Dim):
        return size
    if size in values:
        return values[size]
    if size.formula is None:
        raise KeyError(f"give the size of {size.origin} (by its printed name) to compute bytes")
    from graphc.runtime.scalar_math import slice_length
    parts = [_size(p, values) for p in size.parts]
    return eval(size.formula.format(*parts), {"slice_length": slice_length.py_func})
