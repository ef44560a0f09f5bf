"""The schedule: what a graph's kernel module does, in order, as typed data.

The `schedule` pass builds it from the final graph (passes/schedule.py); codegen renders it. Each
node becomes one of:
- a Launch: a call of a library kernel, a compiled function of its own computing one loop nest (a
  fused loop, with the other nodes that loop stores; a softmax; a scatter ...). Kernels are keyed
  by their text, in which nodes and sizes are positional parameters (only sizes 0 and 1 are
  literals: they decide broadcasting), so the same loop nest in every layer, of any width, in every
  graph and in every later program compiles once (runtime/library.py).
- an Inline step, written into the graph's driver function: views, scalar arithmetic, constants,
  and loops so small that a call would cost more than the loop. A matrix product is a kernel too
  (the BLAS call with its checks is as much code as a loop).
The driver is one small function calling the kernels: its compile time grows with the number of
calls, not with the code of every layer (a whole-graph function grew faster than linearly).
"""
import math
from dataclasses import dataclass

from graphc.ops import OPS
from graphc.printer import dim_names

TINY_LOOP = 32  # elements: a loop of at most this many, over static sizes, stays in the driver (W2)


@dataclass(frozen=True)
class Launch:
    """A library kernel call computing `nodes`: the first is the loop's node, the rest are stored by its loop."""
    nodes: tuple

    @property
    def node(self):
        return self.nodes[0]


@dataclass(frozen=True)
class Inline:
    """Nodes computed by lines of the driver itself (as Launch.nodes), and why they are not a kernel."""
    nodes: tuple
    why: str

    @property
    def node(self):
        return self.nodes[0]


@dataclass
class Schedule:
    steps: list  # Launch | Inline, in the order the driver runs them

    def launches(self):
        return [s for s in self.steps if isinstance(s, Launch)]

    def text(self, graph):
        """One line per step: what runs, the loop's shape, where its array comes from."""
        names = dim_names(graph)
        lines = [f"schedule {graph.name}: {len(self.launches())} kernel calls, "
                 f"{sum(isinstance(s, Inline) for s in self.steps)} inline steps"]
        for step in self.steps:
            node = step.node
            kind = f"{graph.op(node)} -> {graph.type(node).text(names)}"
            if isinstance(step, Launch):
                stored = f", also stores {' '.join(f'%{n}' for n in step.nodes[1:])}" if len(step.nodes) > 1 else ""
                lines.append(f"  kernel %{node}: {kind}{stored}{_buffers(graph, step.nodes)}")
            else:
                lines.append(f"  inline %{node}: {kind} ({step.why}){_buffers(graph, step.nodes)}")
        return "\n".join(lines)


def _buffers(graph, nodes):
    donors = [(n, graph[n].get("reuses")) for n in nodes if graph[n].get("reuses") is not None]
    return "".join(f", %{n} in the array of %{d}" for n, d in donors)


def loop_groups(graph, order=None):
    """{tag: (tag, then the other nodes its loop stores, in order)} for the graph's shared loops."""
    groups = {}
    for node in order or graph.order():
        tag = graph[node].get("loop")
        if tag is not None and node != tag:
            groups.setdefault(tag, [tag]).append(node)
    return {tag: tuple(nodes) for tag, nodes in groups.items()}


def joint_groups(graph, nodes):
    """{node: its group, in the order of `nodes`} for nodes of a joint op (OpDef.joint: a scan's final
    carry and stacked ys) that are results of one computation: op, operands and every attribute but
    `output` are the same. One loop computes a group, and autodiff calls its op's vjp once for it."""
    groups = {}
    for node in nodes:
        attrs = graph.attrs(node)
        if OPS[graph.op(node)].joint:
            others = tuple(sorted((k, v) for k, v in attrs.items() if k != "output"))
            groups.setdefault((graph.op(node), graph.args(node), others), []).append(node)
    return {node: tuple(group) for group in groups.values() for node in group}


def tag_joint_groups(graph):
    """Give each untagged group of joint_groups a "loop" tag (its first node), so one loop computes it."""
    for group in set(joint_groups(graph, graph.order()).values()):
        if len(group) > 1 and all(graph[n].get("loop") is None for n in group):
            for node in group:
                graph[node]["loop"] = group[0]


def build_schedule(graph):
    """The steps for every live node of a final graph, in its order (a fused group at its first member)."""
    steps, placed, order = [], set(), graph.order()
    groups = loop_groups(graph, order)
    for node in order:
        if graph.op(node) == "input" or node in placed:
            continue
        tag = graph[node].get("loop")
        nodes = (node,)
        if tag is not None:  # one loop stores the group: the tag first (its body), then the others in order
            nodes = groups.get(tag, (tag,))
        placed.update(nodes)
        why = inline_reason(graph, nodes)
        steps.append(Inline(nodes, why) if why else Launch(nodes))
    return Schedule(steps)


def inline_reason(graph, nodes):
    """Why the nodes' code belongs in the driver, or None when it is a loop nest worth a kernel of its own."""
    node = nodes[0]
    op = OPS[graph.op(node)]
    if op.kind == "source":
        return "constant"
    if op.view:
        return "view"
    if op.inline:
        return "expression"
    types = [graph.type(n) for m in nodes for n in (m, *graph.args(m))]
    if all(t.ndim == 0 for t in types):
        return "scalar arithmetic"
    if all(t.is_static() and math.prod(t.shape) <= TINY_LOOP for t in types):
        return "tiny loop"
    return None
