"""Elementwise fusion: maximal convex groups of elementwise ops, optionally ending in one reduction,
become one `fused` node that codegen compiles to a single loop with scalar intermediates.

Fan-out rule: a value read outside its group is
- recomputed inside the group when it is cheap (an op of cost 1 such as add, mul, where, or a
  broadcast) and every reader is itself fusable, so it never has to be stored at all;
- otherwise materialized: in a group ending in a reduction it becomes an extra output of that group's
  loop (a `fused` node with the same operands and body, its `output` naming the step; one loop
  stores it while it accumulates), elsewhere it is the output of its own group (or a plain node);
  every group that needs it reads it. So exp, log, tanh, sigmoid, matmul and reductions are computed once and saved:
  the sigmoid's backward reads the saved output s, never recomputing exp. Measured on W3
  (sum(sigmoid(x*y+0.5)*tanh(x)+exp(-x*x)) and both gradients, 4M float32, 2 cores): saving the
  three transcendentals took 34-42 ms per call, recomputing them in every loop (CHEAP = 8) 61 ms.
The passes after it merge loops further: share_loops (loops over one shape reading a common array)
and join_reduction (an elementwise loop joins the reduction loop whose stored values it reads: W3's
gradients run in the loop that sums the loss, and sigmoid, tanh and exp are never stored).
Groups are convex (no path leaves a group and re-enters it), checked as each group grows on the
graph where earlier groups are already contracted, so fusion never creates a cycle. Members all
have the group's loop shape (smaller operands are read by broadcasting, never recomputed per element).
"""
import heapq

import networkx as nx

from graphc.errors import PassError
from graphc.ops import OPS
from graphc.ops.fused import Body, Step
from graphc.ops.reduce import REDUCERS
from graphc.printer import provenance
from graphc.types import same_shape

from .dce import dce
from .rewrite import scalar_value

CHEAP = 1  # the most costly op a group recomputes rather than reads (measured: see the docstring)
# The most arrays a group's loop reads. Each is a memory stream of its own, and a loop over a hundred
# (an unrolled RNN's weight gradient, the sum of T terms) was a kernel no other graph shares that took
# seconds to compile; capped, such a sum is a chain of identical loops, one library kernel.
MAX_OPERANDS = 8


def fuse_elementwise(graph):
    """Contract maximal convex groups of elementwise ops (plus a final reduction) into `fused` nodes."""
    order = graph.order()
    work, index = graph.copy(), {n: k for k, n in enumerate(order)}
    groups = fused = 0
    for root in reversed(order):
        if root not in work or not _can_root(work, root):
            continue
        members, stored = _grow(work, root, index)
        if len(members) < 2:
            continue
        _contract(work, root, sorted(members, key=index.get), stored, index)
        groups, fused = groups + 1, fused + len(members)
    if not groups:
        return graph
    work = dce(work)
    if not nx.is_directed_acyclic_graph(work.g):
        raise PassError("fuse_elementwise created a cycle")
    extra = sum(1 for n in work.g.nodes if "output" in work.attrs(n))
    work.fired = {k: v for k, v in (("groups", groups), ("ops fused", fused), ("extra outputs", extra)) if v}
    return work


def _fusable(graph, node):
    """The op computes each element on its own: it can be a step of a fused loop."""
    return OPS[graph.op(node)].scalar is not None


def _can_root(graph, node):
    if graph.op(node) in REDUCERS:
        return graph.type(graph.args(node)[0]).ndim > 0
    return _fusable(graph, node)


def _space(graph, root):
    node = graph.args(root)[0] if graph.op(root) in REDUCERS else root
    return graph.type(node).shape


def _grow(graph, root, index):
    """The group rooted at `root`, and the members it stores: producers join, users before producers."""
    space, roots = _space(graph, root), set(graph.roots())
    members, moved, stored, seen = {root}, {root}, set(), {root}
    operands = set(graph.args(root))  # what the group reads from outside
    reducing = graph.op(root) in REDUCERS
    frontier = [(-index[a], a) for a in set(graph.args(root))]
    heapq.heapify(frontier)
    while frontier:
        _, p = heapq.heappop(frontier)
        if p in seen:
            continue
        seen.add(p)
        how = _joins(graph, p, moved, space, roots, reducing)
        if how == "stored" and not _readers_stay_outside(graph, p, members, moved):
            how = None
        reads = (operands - {p}) | (set(graph.args(p)) - members - {p})
        if how and sum(graph.type(a).ndim > 0 for a in reads) > MAX_OPERANDS:
            how = None
        if how and _convex(graph, members, p):
            members.add(p)
            operands = reads
            if how in ("moved", "stored"):
                moved.add(p)
            if how == "stored":
                stored.add(p)
            for a in set(graph.args(p)):
                heapq.heappush(frontier, (-index[a], a))
    return members, stored


def _joins(graph, p, moved, space, roots, reducing):
    """"moved" when only moved members read p; "copied" when p is cheap to recompute; "stored" when
    the group ends in a reduction and its loop can store p for its other readers; else None.

    A copied member's original stays for its other readers, so it still reads its own operands:
    only readers that move with the group let an operand move too.
    """
    if not _fusable(graph, p) or p in roots or not same_shape(graph.type(p).shape, space):
        return None
    users = graph.users(p)
    if all(u in moved for u in users):
        return "moved"
    if OPS[graph.op(p)].cost <= CHEAP and all(_fusable(graph, u) or graph.op(u) in REDUCERS for u in users):
        return "copied"
    return "stored" if reducing else None


def _readers_stay_outside(graph, p, members, moved):
    """False if a reader of p outside the group leads back into the group: storing p from the group's
    loop would then close a cycle. A copied member's original stays outside and keeps reading p."""
    stack = []
    for u in graph.users(p):
        if u not in moved:
            stack.extend(graph.users(u) if u in members else [u])
    return not _reaches(graph, stack, members, graph.users)


def _convex(graph, members, p):
    """False if some path leaves the group and reaches p (joining p would close a cycle)."""
    return not _reaches(graph, [a for a in graph.args(p) if a not in members], members, graph.args)


def _reaches(graph, start, members, step):
    """Whether walking `step` (users or operands) from `start` through non-members meets a member.
    No pruning by schedule position: a loop's extra outputs have none that is consistent."""
    visited = set()
    while start:
        n = start.pop()
        if n in members:
            return True
        if n not in visited:
            visited.add(n)
            start.extend(step(n))
    return False


def _contract(graph, root, members, stored, index):
    """Turn `root` into the fused node of `members` (in topological order), add a node per stored
    member (same operands and body, computed by root's loop), drop the members that moved."""
    inputs, steps, position = [], [], {m: j for j, m in enumerate(members)}
    for m in members:
        args = []
        for a in graph.args(m):
            if a in position:
                args.append(("step", position[a]))
            elif (value := scalar_value(graph, a)) is not None:
                args.append(("const", value, graph.type(a).dtype))
            else:
                if a not in inputs:
                    inputs.append(a)
                args.append(("in", inputs.index(a)))
        steps.append(Step(graph.op(m), tuple(args), tuple(sorted(graph.attrs(m).items())), graph.type(m), provenance(graph, m)))
    data, body = graph[root], Body(tuple(steps))
    for a in set(data["args"]):
        graph.g.remove_edge(a, root)
    data.update(op="fused", args=tuple(inputs), attrs={"body": body})
    for a in inputs:
        graph.g.add_edge(a, root)
    for m in reversed(members):
        if m != root and m not in stored and not graph.users(m):
            graph.remove(m)
    for p in sorted(stored, key=index.get):
        _store_from_loop(graph, root, p, inputs, body, position[p], index)


def _store_from_loop(graph, root, p, inputs, body, step, index):
    """p's readers read a node that root's loop stores (same operands and body, output = p's step)."""
    data = graph[p]
    node = graph.add("fused", inputs, {"body": body, "output": step}, data["type"], data["loc"], data["phase"], data["origin"])
    if "origin_op" in data:
        graph[node]["origin_op"] = data["origin_op"]
    graph[node]["loop"] = graph[root]["loop"] = root
    index[node] = index[root]
    graph.replace_uses(p, node)
    graph.remove(p)
