"""Shared by the pass tests: reference evaluation (autodiff only, no optimization) and graph facts."""
import numpy as np

import graphc as gc
from graphc import passes


def optimized(outputs, inputs, options=None, disable=(), updates=()):
    """The graph after the full pipeline (verified after every pass)."""
    graph = gc.lower(outputs, inputs, updates)
    graph.options = dict(options or {})
    return passes.run_pipeline(graph, passes.PIPELINE, disable=disable, verify=True)


def unoptimized(outputs, inputs):
    """The graph with gc.grad expanded and nothing else: what the user wrote."""
    only_autodiff = [p for p in passes.PIPELINE if p.name == "autodiff"]
    return passes.run_pipeline(gc.lower(outputs, inputs), only_autodiff).graph


def reference(outputs, inputs, *arrays):
    with np.errstate(all="ignore"):
        return gc.interpret(unoptimized(outputs, inputs), *arrays)[0]


def ops_of(graph):
    return sorted(graph.op(n) for n in graph.g.nodes if graph.op(n) not in ("input",))


def top_level_loops(source):
    """Loop nests at a function's own indentation (the driver's and each library kernel's), one per
    array computation (a parallel loop's chunk loop is nested in its prange; the loop adding the
    chunks' partial sums is not counted)."""
    return sum(1 for line in source.splitlines() if line.startswith("    for ") and "range(" in line
               and not line.startswith("    for c in range("))


def kernel_calls(f):
    """The driver's lines calling a library kernel (one per loop nest the graph runs)."""
    return [line.strip() for line in f.source().split("# ---- library kernel")[0].splitlines() if "= _k" in line]
