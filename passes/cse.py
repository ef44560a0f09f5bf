"""Common-subexpression elimination, and canonicalization (which uses it)."""
import numpy as np

from graphc.ops import OPS
from graphc.types import Dim, resolve

from .rewrite import pinned


def cse(graph):
    """Merge nodes computing the same op on the same operands with the same attributes."""
    return _merge_duplicates(graph, graph)


def canonicalize(graph):
    """Put constants last in commutative ops and merge duplicate nodes, so rewrite patterns see one form."""
    work = graph
    for node in graph.order():
        args = graph.args(node)
        if OPS[graph.op(node)].commutative and graph.op(args[0]) == "constant" and graph.op(args[1]) != "constant":
            if work is graph:
                work = graph.copy()
            work[node]["args"] = (args[1], args[0])
    return _merge_duplicates(work, graph)


def _merge_duplicates(work, original):
    keep = pinned(work) | set(work.inputs)
    seen, merged = {}, 0
    for node in work.order():
        if node in keep or work.op(node) == "grad":
            continue
        key = _key(work, node)
        if key not in seen:
            seen[key] = node
            continue
        if work is original:
            work = work.copy()
        work.replace_uses(node, seen[key])
        work.remove(node)
        merged += 1
    if work is not original and merged:
        work.fired = {"merged": merged}
    return work


def _key(graph, node):
    data = graph[node]
    args = data["args"]
    if OPS[data["op"]].commutative:
        args = tuple(sorted(args))
    attrs = tuple(sorted((k, _frozen(v)) for k, v in data["attrs"].items()))
    return data["op"], args, attrs, data["type"].dtype, _frozen(data["type"].shape)


def _frozen(value):
    """A hashable, exact stand-in for an attribute value (arrays by bytes, sizes by identity)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, Dim):
        return ("dim", id(resolve(value)) if isinstance(resolve(value), Dim) else resolve(value))
    if isinstance(value, tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, float):
        return ("float", repr(value))  # 0.0 and -0.0 stay apart; nan equals nan
    return (type(value).__name__, value)
