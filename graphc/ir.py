"""The IR: a thin class over `networkx.DiGraph`.

Each node is an int holding: op, args (ordered operand ids; `x * x` has args (x, x)), attrs, type,
loc (the user's file:line), phase ("forward" or "backward") and origin (for backward nodes, the
forward node they differentiate). An edge u -> v means v reads u.
"""
import itertools

import networkx as nx

from .errors import PassError


class Graph:
    def __init__(self, name="graph"):
        self.g = nx.DiGraph()
        self.name = name
        self.inputs = []   # input node ids, in call order
        self.outputs = []  # node ids returned, in order
        self.updates = []  # (input node id, value node id): written into the caller's array
        self.options = {}  # compile options the passes read (e.g. {"value_changing": True})
        self._ids = itertools.count()

    # building
    def add(self, op, args=(), attrs=None, type=None, loc=None, phase="forward", origin=None):
        node = next(self._ids)
        self.g.add_node(node, op=op, args=tuple(args), attrs=dict(attrs or {}), type=type, loc=loc,
                        phase=phase, origin=origin)
        for arg in set(args):
            self.g.add_edge(arg, node)
        return node

    def copy(self):
        new = Graph(self.name)
        new.g = self.g.copy()
        for node in new.g.nodes:
            new.g.nodes[node]["attrs"] = dict(new.g.nodes[node]["attrs"])
        new.inputs, new.outputs, new.updates = list(self.inputs), list(self.outputs), list(self.updates)
        new.options = dict(self.options)
        new._ids = itertools.count(max(self.g.nodes, default=-1) + 1)
        return new

    def replace_uses(self, old, new):
        """Every reader of `old` (and every output and update) reads `new` instead."""
        if old == new:
            return
        for user in list(self.g.successors(old)):
            data = self.g.nodes[user]
            data["args"] = tuple(new if a == old else a for a in data["args"])
            self.g.remove_edge(old, user)
            self.g.add_edge(new, user)
        self.outputs = [new if o == old else o for o in self.outputs]
        self.updates = [(i, new if v == old else v) for i, v in self.updates]

    def remove(self, node):
        self.g.remove_node(node)

    # reading
    def __getitem__(self, node):
        return self.g.nodes[node]

    def __contains__(self, node):
        return node in self.g

    def __len__(self):
        return self.g.number_of_nodes()

    def op(self, node):
        return self.g.nodes[node]["op"]

    def args(self, node):
        return self.g.nodes[node]["args"]

    def attrs(self, node):
        return self.g.nodes[node]["attrs"]

    def type(self, node):
        return self.g.nodes[node]["type"]

    def users(self, node):
        return list(self.g.successors(node))

    def roots(self):
        """The values the graph must compute: outputs and update values."""
        return list(dict.fromkeys(self.outputs + [v for _, v in self.updates]))

    def order(self):
        """A stable topological order: ties broken by creation; nodes sharing a "loop" tag (one loop
        computes them, from the same operands) are kept adjacent, at the first one's place."""
        order = list(nx.lexicographical_topological_sort(self.g))
        loops = {}
        for node in order:
            if self.g.nodes[node].get("loop") is not None:
                loops.setdefault(self.g.nodes[node]["loop"], []).append(node)
        if not loops:
            return order
        placed, done = [], set()
        for node in order:
            if node not in done:
                group = loops.get(self.g.nodes[node].get("loop"), [node])
                placed += group
                done.update(group)
        return placed

    def nodes_with(self, op):
        return [n for n in self.order() if self.op(n) == op]

    def verify(self, registry):
        """Acyclic, known ops, edges match args, types re-inferred equal the recorded ones."""
        if not nx.is_directed_acyclic_graph(self.g):
            raise PassError(f"graph {self.name} has a cycle")
        for node in self.g.nodes:
            data = self.g.nodes[node]
            if data["op"] not in registry:
                raise PassError(f"node %{node} has unknown op {data['op']!r}")
            if set(self.g.predecessors(node)) != set(data["args"]):
                raise PassError(f"node %{node} ({data['op']}): edges disagree with its operands {data['args']}")
            opdef = registry[data["op"]]
            if opdef.kind != "source":
                inferred = opdef.infer([self.type(a) for a in data["args"]], **data["attrs"])
                if inferred != data["type"]:
                    raise PassError(f"node %{node} ({data['op']}) has type {data['type']}, its rule gives {inferred}")
        for node in self.inputs + self.outputs + [n for pair in self.updates for n in pair]:
            if node not in self.g:
                raise PassError(f"graph {self.name} refers to missing node %{node}")
