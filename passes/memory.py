"""Memory planning: liveness over the scheduled graph, buffer reuse after a value's last reader, in place where safe.

The schedule is the graph's stable topological order (the order codegen writes). Each array a node
allocates is a buffer; views (reshape, transpose, getitem) share their operand's buffer. A buffer dies
after its last reader unless it escapes (an output or update value, or a view of one). A node whose
kernel code takes its output array from the plan (elementwise, fused, and ops declaring OpDef.receives:
broadcast_to, softmax, ...) reuses a dead buffer of exactly its type: in place when it is the last
reader of a same-typed operand (elementwise and fused loops read each element before writing it),
otherwise the earliest-freed one. An update value computed by such a loop is written straight into
the caller's array when nothing reads that array later. The node records the node whose array it takes as "reuses";
codegen honours every such entry. The plan itself is kept as `graph.memory_plan`.
"""
import math

from graphc.memory_plan import MemoryPlan
from graphc.ops import OPS
from graphc.ops.fused import yields_reduction


def plan_memory(graph):
    """Plan buffer reuse from liveness; record each reuse on its node and the peak bytes on the graph."""
    order = graph.order()
    owner = _owners(graph, order)
    last = _last_reads(graph, order, owner)
    work = graph.copy()
    dies_at = {}
    for o, i in last.items():
        dies_at.setdefault(i, []).append(o)
    into_caller = _updates_in_place(graph, order, owner)
    for value, target in into_caller.items():
        work[value]["reuses"] = target
    free, taken, lifetimes = [], set(), {}
    for i, node in enumerate(order):
        if node in into_caller:
            continue  # written straight into the caller's array: no buffer of ours
        if owner.get(node) == node:
            donor = _donor(graph, node, i, owner, last, free, taken) if _receives(graph, node) else None
            if donor is None:
                lifetimes[node] = [i, last[node]]
            else:
                work[node]["reuses"] = donor
                taken.add(donor)
                buffer = _buffer_of(work, donor)
                lifetimes[buffer][1] = max(lifetimes[buffer][1], last[node])
        free += [o for o in dies_at.get(i, []) if o not in taken]
    work.memory_plan = MemoryPlan(graph, [(graph.type(n), span) for n, span in lifetimes.items()],
                                  [graph.type(n) for n in order if owner.get(n) == n], len(order))
    work.fired = {k: v for k, v in (("reused buffers", len(taken)), ("updates in place", len(into_caller))) if v}
    return work  # always a new graph: it carries the plan even when nothing is reused


def _updates_in_place(graph, order, owner):
    """Update values an elementwise loop can write straight into the caller's array: value -> input.

    Safe when nothing reads the input (or a view of it) after the update's loop, the loop reads the
    input only at the position it writes, no view of the input escapes, the value is not also
    returned (the result would alias the caller's array), and no op that checks values at run time
    (OpDef.checks; every op under check_finite) comes after it: a call that raises must leave the
    caller's arrays as they were.
    """
    position = {n: i for i, n in enumerate(order)}
    checks = [i for i, n in enumerate(order) if OPS[graph.op(n)].checks or graph.options.get("check_finite")]
    last_check = max(checks, default=-1)
    chosen = {}
    for target, value in graph.updates:
        if (graph.type(target).ndim == 0 or value in graph.outputs or owner.get(value) != value
                or position[value] <= last_check
                or not _in_place(graph, value) or not _receives(graph, value) or graph.type(value) != graph.type(target)):
            continue
        views = _views_of(graph, target)
        readers = {u for v in views for u in graph.users(v)}
        if any(v in graph.roots() for v in views) or any(position[u] > position[value] for u in readers):
            continue
        if any(a in views and a != target for a in graph.args(value)) or value in chosen:
            continue
        chosen[value] = target
    return chosen


def _views_of(graph, node):
    """node and every view (reshape, transpose, getitem) of it, transitively."""
    found, stack = {node}, [node]
    while stack:
        for user in graph.users(stack.pop()):
            if OPS[graph.op(user)].view and user not in found:
                found.add(user)
                stack.append(user)
    return found


def _owners(graph, order):
    """node -> the node whose allocation holds its array (None for scalars, inputs and constants)."""
    owner = {}
    for n in order:
        if OPS[graph.op(n)].view:
            owner[n] = owner.get(graph.args(n)[0])
        elif graph.type(n).ndim > 0 and _allocates(graph.op(n)):
            owner[n] = n
        else:
            owner[n] = None
    return owner


def _unknown_aliasing(graph, n):
    """An op not known to allocate, with an array result: it may alias its operands."""
    opdef = OPS[graph.op(n)]
    return graph.type(n).ndim > 0 and opdef.kind != "source" and not opdef.view and not _allocates(graph.op(n))


def _allocates(op):
    """The op's kernel code always returns a new array."""
    return OPS[op].fresh or OPS[op].kind in ("elementwise", "reduce")


def _last_reads(graph, order, owner):
    """buffer owner -> position of its last reader (infinity when it escapes the kernel)."""
    last = {o: i for i, o in enumerate(order) if owner.get(o) == o}
    for i, n in enumerate(order):
        for a in graph.args(n):
            if owner.get(a) is not None:
                last[owner[a]] = max(last[owner[a]], i)
    for root in graph.roots():
        if owner.get(root) is not None:
            last[owner[root]] = math.inf
    for n in order:  # whatever an unknown op reads might live on in its result: never reuse it
        if _unknown_aliasing(graph, n):
            for a in graph.args(n):
                if owner.get(a) is not None:
                    last[owner[a]] = math.inf
    return last


def _receives(graph, node):
    op = graph.op(node)
    if op == "fused":
        return not yields_reduction(graph.attrs(node))
    return OPS[op].kind == "elementwise" or OPS[op].receives


def _in_place(graph, node):
    return graph.op(node) == "fused" or OPS[graph.op(node)].kind == "elementwise"


def _donor(graph, node, i, owner, last, free, taken):
    """A dead buffer of node's type: an operand it reads for the last time, else a freed one."""
    if _in_place(graph, node):
        for a in dict.fromkeys(graph.args(node)):
            aliases = [b for b in graph.args(node) if owner.get(b) == owner.get(a)]
            if (owner.get(a) == a and last[a] == i and a not in taken and graph.type(a) == graph.type(node)
                    and all(b == a for b in aliases)):
                return a
    for k, candidate in enumerate(free):
        if graph.type(candidate) == graph.type(node):
            return free.pop(k)
    return None


def _buffer_of(graph, node):
    while "reuses" in graph[node]:
        node = graph[node]["reuses"]
    return node
