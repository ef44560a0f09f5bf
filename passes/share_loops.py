"""Loop sharing: fused loops over one shape that read a common array and don't depend on each other run
as one loop, so the arrays they read are read once (W3's gradients for x and y read x, y and the saved
values once)."""
import networkx as nx

from graphc.ops.fused import Body, yields_reduction
from graphc.types import same_shape

from .loop_merge import append_steps, retag


def share_loops(graph):
    """Run fused loops over one shape that read a common array in one loop (each keeps its value)."""
    work = graph.copy()
    shared = _share_loops(work)
    if not shared:
        return graph
    work.fired = {"loops shared": shared}
    return work


def _share_loops(graph):
    """Fused nodes over the same loop shape that read a common array and don't depend on each other
    run in one loop: each keeps its value (`output`), the body is the union of theirs (shared steps
    computed once), so, e.g., the gradients for x and y read x, y and the saved values once.
    Each node joins a loop on the graph as merged so far, so merging never closes a cycle. Returns how
    many nodes joined another's loop."""
    clusters, own, joined = [], {}, 0
    for node in graph.order():
        if not _may_share(graph, node):
            continue
        own[node] = (graph.args(node), graph.attrs(node)["body"])
        cluster = next((c for c in clusters if _fits(graph, c, node)), None)
        if cluster is None:
            clusters.append([node])
            continue
        cluster.append(node)
        _merge(graph, cluster, own)
        joined += 1
    return joined


def _may_share(graph, node):
    data = graph[node]
    return (data["op"] == "fused" and data.get("loop") is None and data["type"].ndim > 0
            and not yields_reduction(data["attrs"]))


def _fits(graph, cluster, node):
    first, arrays = cluster[0], {a for a in graph.args(node) if graph.type(a).ndim > 0}
    return (same_shape(graph.type(first).shape, graph.type(node).shape)
            and arrays & {a for m in cluster for a in graph.args(m)}
            and not any(nx.has_path(graph.g, m, node) or nx.has_path(graph.g, node, m) for m in cluster))


def _merge(graph, cluster, own):
    """One body computing every member's own steps over the union of their own operands."""
    inputs, steps, known, outputs = [], [], {}, []
    for node in cluster:
        operands, body = own[node]
        outputs.append(append_steps(steps, known, body, operands, inputs)[-1])
    merged = Body(tuple(steps))
    for node, output in zip(cluster, outputs):
        retag(graph, node, inputs, {"body": merged, "output": output}, cluster[0])
