"""A reduction's loop takes in the elementwise loops that read only its per-element values.

A fused loop ending in a reduction stores some steps for other readers (exp, tanh, sigmoid on W3).
A loop over the same shape that reads those stored values but not the reduction's result (W3's
gradients: the sum's upstream gradient is a constant seed) can run in the reduction's loop: its
body is appended to the reduction's (steps computed by both are computed once), a stored value it
read becomes a loop-local scalar, and is no longer stored at all unless something else reads it.
So W3 reads x, y and writes dx, dy in one pass (16 bytes per element) instead of two passes that
also write and re-read three saved arrays.

Joining never closes a cycle: the consumer may not read the reduction's result, nor any operand
that depends on the reduction's loop, so every member's operands stay upstream of the joined loop.
"""
import networkx as nx

from graphc.errors import PassError

from graphc.ops.fused import Body, yields_reduction
from graphc.types import same_shape

from .loop_merge import append_steps, retag


def join_reduction(graph):
    """Run elementwise loops that read a reduction loop's stored values (not its result) in that loop."""
    work = graph.copy()
    joined = join_reductions(work)
    if not joined:
        return graph
    if not nx.is_directed_acyclic_graph(work.g):
        raise PassError("join_reduction created a cycle")
    work.fired = {"loops joined to a reduction": joined}
    return work


def join_reductions(graph):
    """Join every eligible consumer loop into its reduction's loop (in place); returns how many joined."""
    joined = 0
    while True:
        found = _next_join(graph)
        if found is None:
            return joined
        _join(graph, *found)
        joined += 1


def _loops(graph, order):
    """node -> the nodes its loop computes, in schedule order (node alone when it has no loop tag)."""
    tags = {node: node if graph[node].get("loop") is None else graph[node]["loop"] for node in order}
    by_tag = {}
    for node in order:
        by_tag.setdefault(tags[node], []).append(node)
    return {node: by_tag[tags[node]] for node in order}


def _is_reduction_head(graph, node):
    data = graph[node]
    return (data["op"] == "fused" and data.get("loop", node) == node and "output" not in data["attrs"]
            and yields_reduction(data["attrs"]))


def _next_join(graph):
    """(reduction node, its loop's nodes, consumer loop nodes) for the first consumer that may join, or None."""
    order = graph.order()
    loops = _loops(graph, order)
    for head in order:
        if not _is_reduction_head(graph, head):
            continue
        members = loops[head]
        saved = [m for m in members if m != head]
        space = _space(graph, head)
        seen = set()
        for s in saved:
            for user in graph.users(s):
                if user in seen or user in members:
                    continue
                consumers = loops[user]
                seen.update(consumers)
                if _may_join(graph, head, members, consumers, space):
                    return head, members, consumers
    return None


def _space(graph, head):
    """The shape the reduction's loop runs over (its reduced operand's)."""
    body = graph.attrs(head)["body"]
    arg = body.steps[-1].args[0]
    return (graph.type(graph.args(head)[arg[1]]) if arg[0] == "in" else body.steps[arg[1]].type).shape


def _may_join(graph, head, members, consumers, space):
    """Elementwise (non-reducing) fused loops of the loop's shape, reading no member but stored values
    and nothing computed downstream of the reduction's loop."""
    for c in consumers:
        data = graph[c]
        if data["op"] != "fused" or not same_shape(data["type"].shape, space):
            return False
        if yields_reduction(data["attrs"]):
            return False
        if head in graph.args(c):
            return False  # reads the reduction's result: it must wait for the loop to end
    downstream = set().union(*(nx.descendants(graph.g, m) for m in members))
    outside = {a for c in consumers for a in graph.args(c) if a not in members}
    return not (outside & downstream)


def _join(graph, head, members, consumers):
    """Rebuild head's body as: its steps, the consumers' steps, then its reduction; retag everything."""
    saved = {m: graph.attrs(m)["output"] for m in members if m != head}
    body, inputs = graph.attrs(head)["body"], list(graph.args(head))
    steps = list(body.steps[:-1])
    known = {(s.op, s.args, s.attrs): j for j, s in enumerate(steps)}
    consumer = consumers[0]  # every consumer shares one loop, so one body and one operand list
    positions = append_steps(steps, known, graph.attrs(consumer)["body"], graph.args(consumer), inputs, saved)
    merged = Body(tuple(steps) + (body.steps[-1],))  # the reduction's operand indexes the unchanged prefix
    roots = set(graph.roots())
    kept = {m: j for m, j in saved.items() if m in roots or any(u not in consumers for u in graph.users(m))}
    outputs = {c: positions[graph.attrs(c).get("output", -1)] for c in consumers}
    retag(graph, head, inputs, {"body": merged}, head)
    for node, output in {**kept, **outputs}.items():
        retag(graph, node, inputs, {"body": merged, "output": output}, head)
    for m in saved:
        if m not in kept:
            graph.remove(m)
