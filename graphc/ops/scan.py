"""scan: a loop over the leading axis of its xs, with carried state (gc.scan, graphc/scan.py).

Operands: the initial carries, the xs (stacked along their leading axis T), then the captured
tensors (what the step reads from outside it: weights, gc.shared parameters, inputs).
Attributes:
- fn: the step as a graph (StepFunction): carries, one x_t per xs, captured -> new carries, y_t;
- reverse: the loop runs t = T-1, ..., 0;
- output: which result the node is: ("carry", j) the final carry j, ("ys", j) y_j stacked over t,
  ("carries", j) carry j before each step, stacked, or ("saved", n) the value of fn's node n in each
  step, stacked (the last two are what the backward reads).

One scan's nodes (same operands, fn and reverse; graphc/schedule.py joint_groups) are computed by
one loop, and autodiff calls the vjp once for all of them. The backward is a reverse scan of the
same op: its step is the autodiff of fn, which reads the values of fn's nodes it needs as the
forward loop saved them (as JAX saves residuals) instead of computing them again; its carries are
the carries' gradients and a running total per captured tensor.
The kernel is a loop over T calling fn's graph, optimized by the pass pipeline and compiled as one
serial function (runtime/codegen.py Context.function): its size does not depend on T.
"""
import functools
import hashlib

import networkx as nx
import numpy as np

from .. import functions as F
from ..errors import DTypeError, ShapeError
from ..lower import add_tensor
from ..printer import format_graph
from ..tensor import Tensor, apply, constant
from ..types import TensorType, is_float, unify
from .registry import OPS, OpDef, register

STACKED = ("ys", "saved")  # results holding a node's value in each step


class StepFunction:
    """A scan's step as a graph: inputs the carries, one x_t per xs, then the captured tensors;
    outputs the new carries, then each y_t. Never changed once made. Equal by its text, node numbers
    included (("saved", n) names a node), so equal scans merge and one scan's nodes form one group."""

    def __init__(self, graph, carries, xs):
        self.graph, self.carries, self.xs = graph, carries, xs

    @property
    def ys(self):
        return len(self.graph.outputs) - self.carries

    def value_node(self, output):
        """The node whose value in each step a ("ys", j) or ("saved", n) result stacks."""
        kind, j = output
        return self.graph.outputs[self.carries + j] if kind == "ys" else j

    def text(self):
        # computed each time: a call-time size of the step may still be unified with a number
        return f"carries {self.carries} xs {self.xs}\n" + format_graph(self.graph, show_loc=True)

    def digest(self):
        return hashlib.sha256(self.text().encode()).hexdigest()

    def __eq__(self, other):
        return isinstance(other, StepFunction) and self.text() == other.text()

    def __hash__(self):
        return hash(self.text())

    def __repr__(self):
        return f"<scan step {self.digest()[:12]}>"


# shape rule
def _infer(types, fn, reverse, output):
    k, m = fn.carries, fn.xs
    inputs = [fn.graph.type(n) for n in fn.graph.inputs]
    if len(types) != len(inputs) or m < 1:
        raise ShapeError(f"its step takes {len(inputs)} operands ({k} carries, {m} xs), got {len(types)}")
    length = None
    for position, (given, wanted) in enumerate(zip(types, inputs)):
        what = _operand_name(position, k, m)
        if k <= position < k + m:
            if given.ndim == 0:
                raise ShapeError(f"{what} is a scalar: scan runs over the leading axis of its xs")
            length = given.shape[0] if length is None else unify(length, given.shape[0])
            if length is None:
                raise ShapeError(f"the xs differ in length: {what} is {given}")
            given = TensorType(given.shape[1:], given.dtype)
        if given.dtype != wanted.dtype:
            raise DTypeError(f"{what} is {given.dtype}, the step takes {wanted.dtype}")
        if given.ndim != wanted.ndim or any(unify(a, b) is None for a, b in zip(given.shape, wanted.shape)):
            raise ShapeError(f"{what} is {given}, the step takes {wanted}")
    kind, j = output
    count = {"carry": k, "carries": k, "ys": fn.ys}.get(kind, 0)
    if not (0 <= j < count or kind == "saved" and j in fn.graph):
        raise ShapeError(f"no result {output!r}")
    if kind == "carry":
        return types[j]
    value = types[j] if kind == "carries" else fn.graph.type(fn.value_node(output))
    return TensorType((length,) + tuple(value.shape), value.dtype)


def _operand_name(position, k, m):
    if position < k:
        return f"carry {position}"
    return f"xs {position - k}" if position < k + m else f"captured tensor {position - k - m}"


# NumPy reference
def _numpy(*arrays, fn, reverse, output):
    from ..interpret import interpret
    graph, k, m = _expanded(fn.graph), fn.carries, fn.xs
    if output[0] in STACKED:  # a step computing the carries, then the stacked node
        graph = graph.copy()
        graph.outputs = graph.outputs[:k] + [fn.value_node(output)]
    carries, xs, captured = list(arrays[:k]), arrays[k:k + m], arrays[k + m:]
    # float64 arrays for float32 inputs: the caller computes in float64 (numerical gradients), so does the step
    promote = any(np.asarray(a).dtype == np.float64 and graph.type(n).dtype == "float32"
                  for a, n in zip(arrays, graph.inputs))
    length = len(xs[0])
    before, values = {}, {}
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        before[t] = carries
        outs, _ = interpret(graph, *carries, *[x[t] for x in xs], *captured, promote=promote)
        carries, values[t] = outs[:k], outs[k:]
    kind, j = output
    if kind == "carry":
        return carries[j]
    j = j if kind == "carries" else 0
    if length == 0:  # the step's shapes, from one evaluation on zeros
        outs, _ = interpret(graph, *carries, *[np.zeros(x.shape[1:], x.dtype) for x in xs], *captured, promote=promote)
        like = carries[j] if kind == "carries" else outs[k]
        return np.zeros((0,) + np.shape(like), np.asarray(like).dtype)
    return np.stack([(before if kind == "carries" else values)[t][j] for t in range(length)])


def _expanded(graph):
    """The step with its own gc.grad nodes expanded (the interpreter evaluates no grad node); fn's
    other nodes keep their numbers."""
    if not graph.nodes_with("grad"):
        return graph
    from graphc.passes import autodiff
    return autodiff(graph)


# gradient: a reverse scan
def _vjp(gs, outs, *inputs, fn, reverse):
    """The joint vjp of one scan's nodes (passes/autodiff.py): gs holds the upstream gradient of each
    differentiated result, by its `output`."""
    k, m = fn.carries, fn.xs
    types = [fn.graph.type(n) for n in fn.graph.inputs]
    float_carries = [j for j in range(k) if is_float(types[j].dtype)]
    float_captured = [i for i in range(k + m, len(inputs)) if is_float(types[i].dtype)]
    float_xs = [j for j in range(m) if is_float(types[k + j].dtype)]
    seeds = [output for output in sorted(gs) if output[0] != "carry"]
    step, kept, saved = _backward_step(fn, float_carries, float_captured, float_xs, seeds)
    parts = [len(float_carries), len(float_captured), k, m, len(seeds), len(saved)]

    def operand(position):  # the reverse scan's operands in its step's input order, made when kept
        for part, size in enumerate(parts):
            if position < size:
                break
            position -= size
        else:
            return inputs[k + m + position]
        if part == 0:
            g = gs.get(("carry", float_carries[position]))
            return _zeros(types[float_carries[position]]) if g is None else g
        if part == 1:
            return _zeros(types[float_captured[position]])
        if part in (2, 5):
            output = ("carries", position) if part == 2 else ("saved", saved[position])
            return apply("scan", *inputs, fn=fn, reverse=reverse, output=output)
        return inputs[k + position] if part == 3 else gs[seeds[position]]

    operands = [operand(p) for p in kept]
    grads = [None] * len(inputs)
    for a, position in enumerate(float_carries + float_captured):
        grads[position] = apply("scan", *operands, fn=step, reverse=not reverse, output=("carry", a))
    for c, j in enumerate(float_xs):
        grads[k + j] = apply("scan", *operands, fn=step, reverse=not reverse, output=("ys", c))
    return tuple(grads)


def _zeros(t):
    return F.broadcast_to(constant(0.0, t.dtype), t.shape)


def _backward_step(fn, float_carries, float_captured, float_xs, seeds):
    """(the reverse scan's step, the positions of the candidate operands it keeps, the fn nodes whose
    saved values it reads). Candidates, in order: gradients of the carries | totals of the captured |
    carries before the step | x_t | upstream gradients (seeds) | saved values | captured.

    With L = sum(new carry * its gradient) + sum(y_t * its upstream gradient) (a saved node's too),
    the step returns dL/dcarry (+ the stored carry's upstream gradient), total + dL/dcaptured, dL/dx_t."""
    from graphc.passes import autodiff, dce
    graph, k, m = fn.graph.copy(), fn.carries, fn.xs
    carries, xs, captured = graph.inputs[:k], graph.inputs[k:k + m], graph.inputs[k + m:]
    grads = [_stand_in(graph, f"grad_carry{j}", carries[j]) for j in float_carries]
    totals = [_stand_in(graph, f"grad_total{i - k - m}", graph.inputs[i]) for i in float_captured]
    upstream = [_stand_in(graph, f"grad_{kind}{j}", carries[j] if kind == "carries" else fn.value_node((kind, j)))
                for kind, j in seeds]
    terms = [F.sum(_ref(graph, graph.outputs[j]) * _ref(graph, g)) for j, g in zip(float_carries, grads)]
    terms += [F.sum(_ref(graph, fn.value_node(seed)) * _ref(graph, u)) for seed, u in zip(seeds, upstream)
              if seed[0] in STACKED]
    loss = functools.reduce(lambda a, b: a + b, terms) if terms else constant(0.0)
    wrt = [carries[j] for j in float_carries] + [graph.inputs[i] for i in float_captured] + [xs[j] for j in float_xs]
    d = F.grad(loss, [_ref(graph, n) for n in wrt]) if wrt else []
    d_carries, d_captured, d_xs = d[:len(grads)], d[len(grads):len(grads) + len(totals)], d[len(grads) + len(totals):]
    for (kind, j), u in zip(seeds, upstream):
        if kind == "carries":
            a = float_carries.index(j)
            d_carries[a] = d_carries[a] + _ref(graph, u)
    values = d_carries + [_ref(graph, t) + g for t, g in zip(totals, d_captured)] + d_xs
    memo = {}
    graph.outputs = [add_tensor(graph, v, memo) for v in values]
    graph.inputs = grads + totals + carries + xs + upstream + captured
    graph = dce(autodiff(graph))
    saved = _saved(fn, graph)
    stand_ins = [_read_saved(graph, n, fn.graph) for n in saved]
    graph = dce(graph)
    candidates = grads + totals + carries + xs + upstream + stand_ins + captured
    first_xs = len(grads) + len(totals) + k  # the forward's first xs stays: it gives the length
    kept = [p for p, n in enumerate(candidates)
            if p < len(grads) + len(totals) or p == first_xs or graph.users(n) or n in graph.outputs]
    for p, n in enumerate(candidates):
        if p not in kept:
            graph.remove(n)
    graph.inputs = [candidates[p] for p in kept]
    n_xs = sum(1 for p in kept if len(grads) + len(totals) <= p < len(candidates) - len(captured))
    return StepFunction(graph, len(grads) + len(totals), n_xs), kept, saved


def _saved(fn, graph):
    """fn's nodes the backward step reads (or returns) that change from step to step: the forward loop
    saves their values. Nodes of the captured tensors and constants alone are the same in every step,
    and computed again."""
    original = fn.graph.g
    varying = set().union(*(nx.descendants(original, n) for n in fn.graph.inputs[:fn.carries + fn.xs]))
    return [n for n in graph.order() if n in varying and OPS[graph.op(n)].kind != "source"
            and (n in graph.outputs or any(u not in original for u in graph.users(n)))]


def _read_saved(graph, node, original):
    """A new input standing for `node`'s saved value, read by the backward nodes (and outputs) instead."""
    stand_in = _stand_in(graph, f"saved{node}", node)
    for user in [u for u in graph.users(node) if u not in original]:
        graph[user]["args"] = tuple(stand_in if a == node else a for a in graph.args(user))
        graph.g.remove_edge(node, user)
        graph.g.add_edge(stand_in, user)
    graph.outputs = [stand_in if o == node else o for o in graph.outputs]
    return stand_in


def _stand_in(graph, name, like):
    """A new input of `like`'s type (named apart from the step's other inputs)."""
    names = {graph.attrs(n)["name"] for n in graph.inputs if graph.op(n) == "input"}
    while name in names:
        name += "_"
    return graph.add("input", (), {"name": name}, graph.type(like), graph[like]["loc"])


def _ref(graph, node):
    return Tensor("ref", (), {"node": node}, graph.type(node), graph[node]["loc"])


# kernel: a loop over T calling the compiled step
def _emit(ctx, node):
    members = ctx.groups.get(ctx.graph[node].get("loop"), (node,))
    fn, reverse = ctx.attrs(node)["fn"], ctx.attrs(node)["reverse"]
    wanted = {ctx.attrs(n)["output"]: n for n in members}
    stacked = sorted(output for output in wanted if output[0] in STACKED)
    carries = _needed(fn, wanted, stacked)
    function = ctx.function(_optimized_step(fn, tuple(carries), tuple(stacked), tuple(sorted(ctx.graph.options.items()))))
    args, k, m = ctx.args(node), fn.carries, fn.xs
    out = ctx.var(node)
    length, s, t = ctx.dims(args[k])[0], f"{out}_s", f"{out}_t"
    carry = {j: f"{out}_c{j}" for j in carries}
    value = {output: f"{out}_y{p}" for p, output in enumerate(stacked)}
    lines = []
    for j in carries:  # a copy: C-ordered, and a final carry never is the caller's array
        a = args[j]
        lines.append(f"{carry[j]} = {ctx.var(a)}.copy()" if ctx.type(a).ndim else f"{carry[j]} = {ctx.var(a)}")
    operands = []
    for j, a in enumerate(args[k:]):  # C-ordered: the step's loops assume it
        if ctx.type(a).ndim:
            lines.append(f"{out}_a{j} = contiguous({ctx.var(a)})")
        operands.append((f"{out}_a{j}" if ctx.type(a).ndim else ctx.var(a)) + (f"[{t}]" if j < m else ""))
    lines += [f"{ctx.var(n)} = empty({ctx.shape(n)}, np.{ctx.type(n).dtype})" for output, n in sorted(wanted.items())
              if output[0] != "carry"]
    lines += [f"for {s} in range({length}):", f"    {t} = {length} - 1 - {s}" if reverse else f"    {t} = {s}"]
    lines += [line for (kind, j), n in sorted(wanted.items()) if kind == "carries"
              for line in _stored(ctx, n, t, carry[j], out)]
    results = [carry[j] for j in carries] + [value[output] for output in stacked]
    lines.append(f"    {', '.join(results)}, = {function}({', '.join([carry[j] for j in carries] + operands)})")
    lines += [f"    {carry[j]} = np.{ctx.type(args[j]).dtype}({carry[j]})" for j in carries  # the carry's type stays
              if ctx.type(args[j]).ndim == 0 and ctx.type(args[j]).dtype != "bool"]
    lines += [line for output in stacked for line in _stored(ctx, wanted[output], t, value[output], out)]
    return lines + [f"{ctx.var(n)} = {carry[j]}" for (kind, j), n in sorted(wanted.items()) if kind == "carry"]


def _stored(ctx, node, t, value, out):
    """Loop lines writing `value` into node[t], element by element (Numba compiles `a[t] = array` in
    ~4 s, a loop nest in milliseconds)."""
    names = [f"{out}_i{k}" for k in range(ctx.type(node).ndim - 1)]
    head, ind = ctx.nest(ctx.dims(node)[1:], names)
    return ["    " + line for line in head + [f"{ind}{ctx.var(node)}[{', '.join([t] + names)}] = {value}"
                                              + (f"[{', '.join(names)}]" if names else "")]]


def _needed(fn, wanted, stacked):
    """The carries the loop keeps: the wanted results' carries, and every carry they read through the steps."""
    graph, k = fn.graph, fn.carries

    def read(node):
        return {j for j in range(k) if graph.inputs[j] in nx.ancestors(graph.g, node) | {node}}
    needed = {j for kind, j in wanted if kind in ("carry", "carries")}.union(
        *(read(fn.value_node(output)) for output in stacked))
    while True:
        more = needed.union(*(read(graph.outputs[j]) for j in needed))
        if more == needed:
            return sorted(needed)
        needed = more


@functools.lru_cache(maxsize=32)
def _optimized_step(fn, carries, stacked, options):
    """fn's graph computing the kept carries and the stacked values, through the pass pipeline. Without
    folding: the step is a function of its operands, and a folded array constant would be neither."""
    from graphc import passes
    graph, k = fn.graph.copy(), fn.carries
    dropped = [graph.inputs[j] for j in range(k) if j not in carries]
    graph.outputs = [graph.outputs[j] for j in carries] + [fn.value_node(output) for output in stacked]
    graph.inputs = [n for n in graph.inputs if n not in dropped]
    graph = passes.dce(graph)
    graph.options = dict(options)
    return passes.run_pipeline(graph, passes.PIPELINE, disable=("fold",)).graph


def _format(attrs, dim_text):
    kind, j = attrs["output"]
    return f"{kind} {j}{', reverse' if attrs['reverse'] else ''}, step {attrs['fn'].digest()}"


# threaded: the step may call BLAS; checks: it may raise (its size checks, its ops' own)
register(OpDef("scan", _infer, _numpy, vjp=_vjp, emit=_emit, format_attrs=_format, cost=100, fresh=True,
               threaded=True, checks=True, joint=True))
