"""A small rewrite engine: rules are data, applied to a fixpoint under a step limit.

A rule is a pattern over the IR (`op("exp", op("neg", X))`), a builder that returns the replacement
written with graphc's own functions (`lambda m: F.sigmoid(m.x)`), a tag saying how it treats values,
its source location and a fire counter. Every replacement keeps the loc, phase and origin of the node
it replaces, so dumps and errors still name the user's line.

Tags:
- exact: the same bits for every input (documented exceptions: the sign of a zero).
- stabilizing: equal in exact arithmetic; differs only where the original overflows, underflows or
  loses precision (then the rewritten form is the accurate one). On by default.
- value-changing: may change results for some inputs (NaN/Inf semantics, rounding). Off unless
  compiled with options={"value_changing": True}.
"""
import sys
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Optional

from graphc.errors import GraphcError, PassError
from graphc.lower import add_tensor
from graphc.ops import OPS
from graphc.tensor import Tensor

EXACT, STABILIZING, VALUE_CHANGING = "exact", "stabilizing", "value-changing"


# patterns
@dataclass(frozen=True)
class Var:
    """Binds any node (or, as an attribute pattern, any attribute value) to `name`."""
    name: str


@dataclass(frozen=True)
class Const:
    """A constant equal to `value` everywhere: a scalar, a uniform array, or a broadcast/reshape of one
    (the engine's type check keeps only replacements of the root's type, so shapes can't change)."""
    value: float


@dataclass(frozen=True)
class Op:
    """A node of op `name` whose operands match `args` and whose attributes match `attrs`."""
    name: str
    args: tuple
    attrs: tuple
    bind: str = None  # also bind the matched node itself to this name


def op(name, *args, as_=None, **attrs):
    return Op(name, args, tuple(sorted(attrs.items())), as_)


@dataclass
class Rule:
    name: str
    pattern: Op
    build: Callable             # Match -> Tensor (the replacement), or None where it doesn't apply
    tag: str
    when: Optional[Callable] = None  # Match -> bool: extra conditions
    loc: str = ""
    fired: int = 0              # over the process's lifetime; a pass result carries its own counts


def rule(name, pattern, build, tag, when=None):
    """A rule, remembering where it was written."""
    frame = sys._getframe(1)
    return Rule(name, pattern, build, tag, when, f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}")


class Match:
    """What a builder sees: bound nodes as graphc Tensors, bound attributes as values, the root's type."""

    def __init__(self, graph, root, bindings, matched):
        self._graph, self.root, self._bindings, self.matched = graph, root, bindings, matched
        self.type = graph.type(root)

    def __getattr__(self, name):
        kind, value = self._bindings[name]
        return ref(self._graph, value) if kind == "node" else value

    def node(self, name):
        return self._bindings[name][1]

    def operands(self, name):
        """The operands of the node bound to `name`, as Tensors."""
        return [ref(self._graph, a) for a in self._graph.args(self._bindings[name][1])]

    def node_type(self, name):
        return self._graph.type(self._bindings[name][1])


def ref(graph, node):
    """A Tensor standing for an existing node (lowering reuses the node)."""
    return Tensor("ref", (), {"node": node}, graph.type(node), graph[node]["loc"])


def scalar_value(graph, node):
    """The Python number a scalar constant holds, else None."""
    data = graph[node]
    if data["op"] != "constant" or data["type"].ndim != 0 or isinstance(data["attrs"]["value"], bool):
        return None
    return data["attrs"]["value"]


def uniform_value(graph, node):
    """The one value a constant (or a broadcast or reshape of a constant) holds everywhere, else None."""
    while graph.op(node) in ("broadcast_to", "reshape"):
        node = graph.args(node)[0]
    value = scalar_value(graph, node)
    if value is None and graph.op(node) == "constant" and graph.type(node).dtype != "bool":
        array = graph.attrs(node)["value"]
        if array.size and (array == array.flat[0]).all():
            value = array.flat[0].item()
    return value


# matching
def match(graph, pattern, node, bindings=None):
    """(bindings, matched op nodes) when `pattern` matches at `node`, else None."""
    return _match(graph, pattern, node, dict(bindings or {}), [])


def _match(graph, pattern, node, bindings, matched):
    if isinstance(pattern, Var):
        return _bind(bindings, pattern.name, ("node", node), matched)
    if isinstance(pattern, Const):
        value = uniform_value(graph, node)
        return (bindings, matched) if value is not None and value == pattern.value else None
    data = graph[node]
    if data["op"] != pattern.name or len(data["args"]) != len(pattern.args):
        return None
    for name, want in pattern.attrs:
        have = data["attrs"].get(name)
        if isinstance(want, Var):
            if _bind(bindings, want.name, ("attr", have), matched) is None:
                return None
        elif have != want:
            return None
    if pattern.bind and _bind(bindings, pattern.bind, ("node", node), matched) is None:
        return None
    orders = [data["args"]]
    if OPS[pattern.name].commutative:
        orders.append(tuple(reversed(data["args"])))
    for args in orders:
        found = _match_all(graph, pattern.args, args, dict(bindings), matched + [node])
        if found is not None:
            return found
    return None


def _match_all(graph, patterns, nodes, bindings, matched):
    for p, n in zip(patterns, nodes):
        found = _match(graph, p, n, bindings, matched)
        if found is None:
            return None
        bindings, matched = found
    return bindings, matched


def _bind(bindings, name, value, matched):
    if name in bindings:
        old = bindings[name]
        same = old[1] is value[1] or (type(old[1]) is type(value[1]) and old[1] == value[1])
        return (bindings, matched) if old[0] == value[0] and same else None
    bindings[name] = value
    return bindings, matched


# applying
REACH = 4  # a pattern sees at most this many operand levels below its root (Const looks through two)


def apply_rules(graph, rules, pass_name):
    """Apply `rules` everywhere until none matches; return graph itself when nothing fired.

    A worklist: after a rewrite only the nodes it added and their readers up to REACH levels are tried
    again (a sweep over the whole graph per rewrite grew quadratically with a deep model's layers);
    a final sweep over every node, repeated until nothing fires, keeps the fixpoint exact."""
    enabled = [r for r in rules if r.tag != VALUE_CHANGING or graph.options.get("value_changing")]
    limit = 20 * len(graph) + 100
    work, fired, steps, keep = graph, Counter(), 0, pinned(graph)
    sweep_from, newest = -1, max(graph.g.nodes, default=-1)
    while sweep_from < steps:  # a sweep over every node, until one fires nothing
        sweep_from = steps
        queue = deque(work.order())
        queued = set(queue)
        while queue:
            node = queue.popleft()
            queued.discard(node)
            if node not in work:
                continue
            for r in enabled:
                tried = _try(work, graph, r, node, keep)
                if tried is None:
                    continue
                (work, new), steps = tried, steps + 1
                fired[r.name] += 1
                r.fired += 1
                if steps > limit:
                    raise PassError(f"{pass_name}: more than {limit} rewrites, a rewrite loop? most fired: "
                                    + ", ".join(f"{n} x{k} ({_loc(rules, n)})" for n, k in fired.most_common(3)))
                for n in _affected(work, new, newest):
                    if n not in queued:
                        queue.append(n)
                        queued.add(n)
                newest = max(work.g.nodes, default=-1)
                break
    if work is graph:
        return graph
    work.fired = dict(fired)
    return work


def _affected(work, new, newest):
    """The replacement, the nodes the rewrite added (ids above `newest`), and readers up to REACH levels."""
    found = {n for n in work.g.nodes if n > newest}
    if new in work:
        found.add(new)
    frontier = set(found)
    for _ in range(REACH):
        frontier = {u for n in frontier for u in work.users(n)} - found
        found |= frontier
    return sorted(found)


def _loc(rules, name):
    return next(r.loc for r in rules if r.name == name)


def pinned(graph):
    """Nodes a rewrite must keep: what gc.grad differentiates with respect to."""
    return {graph.args(n)[1] for n in graph.nodes_with("grad")}


def _try(work, original, r, node, keep):
    """The graph after firing `r` at `node` (a copy on the first change), or None if it doesn't apply."""
    found = match(work, r.pattern, node)
    if found is None:
        return None
    m = Match(work, node, *found)
    if (r.when and not r.when(m)) or set(m.matched) & keep:
        return None
    try:
        replacement = r.build(m)
    except GraphcError as error:
        raise PassError(f"rule {r.name} ({r.loc}) failed at %{node}: {error}") from error
    if replacement is None or replacement.type != work.type(node):
        return None  # a rewrite never changes a value's shape or dtype
    if work is original:
        work = work.copy()
    return work, replace(work, node, replacement)


def replace(graph, node, tensor):
    """Lower `tensor` with node's provenance, make node's readers read it, drop what became dead."""
    data = graph[node]
    new = add_with_provenance(graph, tensor, data["phase"], data["origin"], data["loc"], data.get("origin_op"))
    graph.replace_uses(node, new)
    remove_dead(graph, node)
    return new


def add_with_provenance(graph, tensor, phase, origin, loc, origin_op):
    """Lower `tensor`; the nodes it adds get this phase, origin, loc and origin_op (the forward op a
    backward node differentiates, as the user wrote it)."""
    if tensor.op == "ref":
        return tensor.attrs["node"]
    before = set(graph.g.nodes)
    new = add_tensor(graph, tensor, {}, phase=phase, origin=origin, loc=loc)
    if origin_op is not None:
        for added in set(graph.g.nodes) - before:
            graph[added]["origin_op"] = origin_op
    return new


def remove_dead(graph, node):
    """Remove `node` if nothing reads it, then its operands that became unread, and so on."""
    keep = set(graph.inputs) | set(graph.roots())
    stack = [node]
    while stack:
        n = stack.pop()
        if n in graph and n not in keep and not graph.users(n):
            operands = set(graph.args(n))
            graph.remove(n)
            stack.extend(operands)
