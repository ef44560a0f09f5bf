"""Lowering: Tensor expressions -> the networkx IR."""
from .errors import GraphcError
from .loc import user_location
from .ir import Graph


def lower(outputs, inputs=(), updates=(), name="graph"):
    """A Graph computing `outputs` (and the `updates` values) from the declared `inputs`."""
    graph = Graph(name)
    memo = {}
    for tensor in inputs:
        if tensor.op != "input":
            raise GraphcError(f"gc.compile inputs must be declared with gc.tensor/gc.scalar, got {tensor!r} "
                              f"(at {user_location()})")
        graph.inputs.append(add_tensor(graph, tensor, memo))
    names = [graph.attrs(n)["name"] for n in graph.inputs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise GraphcError(f"inputs named {sorted(duplicates)} appear more than once (at {user_location()})")
    graph.outputs = [add_tensor(graph, t, memo) for t in outputs]
    graph.updates = [(memo[id(target)], add_tensor(graph, value, memo)) for target, value in updates]
    missing = [f"{graph.attrs(n)['name']} (declared at {graph[n]['loc']})" for n in graph.nodes_with("input")
               if n not in graph.inputs]
    if missing:
        raise GraphcError(f"the outputs depend on inputs not passed to gc.compile: {', '.join(missing)} "
                          f"(at {user_location()})")
    return graph


def add_tensor(graph, tensor, memo, phase="forward", origin=None, loc=None):
    """Add `tensor` and its not-yet-added operands; iterative, so deep graphs don't hit recursion limits."""
    stack = [tensor]
    while stack:
        top = stack[-1]
        if id(top) in memo:
            stack.pop()
            continue
        pending = [t for t in top.inputs if id(t) not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        if top.op == "ref":
            memo[id(top)] = top.attrs["node"]
            continue
        args = [memo[id(t)] for t in top.inputs]
        memo[id(top)] = graph.add(top.op, args, top.attrs, top.type, loc or top.loc, phase, origin)
    return memo[id(tensor)]
