"""The pass manager: runs an explicit list of named passes, verifying, timing and keeping each result."""
import time
from dataclasses import dataclass, field
from typing import Callable

from graphc.errors import GraphcError, PassError
from graphc.loc import user_location
from graphc.ops import OPS


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable
    description: str


@dataclass
class PassRecord:
    name: str
    nodes_before: int
    nodes_after: int
    milliseconds: float
    changed: bool
    fired: dict = field(default_factory=dict)


@dataclass
class PipelineResult:
    graph: object
    snapshots: dict  # pass name -> graph after it ("input" is the lowered graph)
    records: list

    def report(self):
        lines = [f"{'pass':<22}{'nodes':>13}{'ms':>9}  rewrites"]
        for r in self.records:
            fired = ", ".join(f"{k}x{v}" for k, v in sorted(r.fired.items())) if r.fired else ("" if r.changed else "unchanged")
            lines.append(f"{r.name:<22}{r.nodes_before:>6} -> {r.nodes_after:<5}{r.milliseconds:>8.2f}  {fired}")
        return "\n".join(lines)


def run_pipeline(graph, pipeline, disable=(), verify=False, on_dump=None):
    """Run `pipeline` (a list of Pass) over `graph`; `on_dump(name, graph)` sees the graph after each pass."""
    known = {p.name for p in pipeline}
    unknown = set(disable) - known
    if unknown:
        raise GraphcError(f"unknown passes {sorted(unknown)}; the pipeline is {[p.name for p in pipeline]} "
                          f"(at {user_location()})")
    snapshots, records, done = {"input": graph}, [], []
    for p in pipeline:
        if p.name in disable:
            continue
        before, start = len(graph), time.perf_counter()
        try:
            result = p.run(graph)
            if verify:
                result.verify(OPS)
        except GraphcError as error:
            if isinstance(error, PassError) or verify:
                raise PassError(f"pass {p.name} (after {', '.join(done) or 'none'}): {error}") from error
            raise
        fired = getattr(result, "fired", {}) if result is not graph else {}
        records.append(PassRecord(p.name, before, len(result), 1000 * (time.perf_counter() - start), result is not graph, fired))
        graph = snapshots[p.name] = result
        done.append(p.name)
        if on_dump:
            on_dump(p.name, graph)
    return PipelineResult(graph, snapshots, records)
