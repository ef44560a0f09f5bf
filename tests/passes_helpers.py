"""Shared by the pass tests: reference evaluation (autodiff only, no optimization) and graph facts."""
import re

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


def kernel_loops(source):
    """Top-level loop nests in the generated kernel (one per array computation)."""
    return len(re.findall(r"^    for ", source, flags=re.M))
