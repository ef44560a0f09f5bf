"""Lowering: Tensor expressions -> the networkx IR."""
from .errors import GraphcError
from .loc import user_location
from .ir import Graph
from .tensor import Tensor, name_key


def tensor_list(value, what):
    """`value` (one tensor, or a list or tuple of them) as a list; a GraphcError naming `what` otherwise."""
    if isinstance(value, Tensor):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise GraphcError(f"{what} must be a tensor or a list of tensors, got {type(value).__name__} "
                          f"{_short(value)} (at {user_location()})")
    for k, item in enumerate(value):
        if not isinstance(item, Tensor):
            raise GraphcError(f"{what}[{k}] must be a graphc tensor, got {type(item).__name__} {_short(item)} "
                              f"(at {user_location()})")
    return list(value)


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def lower(outputs, inputs=(), updates=(), name="graph"):
    """A Graph computing `outputs` (and the `updates` values) from the declared `inputs`."""
    outputs, inputs = tensor_list(outputs, "outputs"), tensor_list(inputs, "inputs")
    graph = Graph(name)
    memo = {}
    for tensor in inputs:
        if tensor.op != "input":
            raise GraphcError(f"gc.compile inputs must be declared with gc.tensor/gc.scalar, got {tensor!r} "
                              f"(at {user_location()})")
        graph.inputs.append(add_tensor(graph, tensor, memo))
    _check_distinct_names([graph.attrs(n)["name"] for n in graph.inputs])
    graph.outputs = [add_tensor(graph, t, memo) for t in outputs]
    graph.updates = [(memo[id(target)], add_tensor(graph, value, memo)) for target, value in updates]
    missing = [f"{graph.attrs(n)['name']} (declared at {graph[n]['loc']})" for n in graph.nodes_with("input")
               if n not in graph.inputs]
    if missing:
        raise GraphcError(f"the outputs depend on inputs not passed to gc.compile: {', '.join(missing)} "
                          f"(at {user_location()})")
    return graph


def _check_distinct_names(names):
    """Input names become the compiled function's parameters, and Python reads identifiers NFKC-normalized
    (`x` and the full-width `ｘ` are one name), so names are compared that way."""
    seen = {}
    for name in names:
        seen.setdefault(name_key(name), []).append(name)
    clashes = [same for same in seen.values() if len(same) > 1]
    if clashes:
        text = "; ".join(" and ".join(repr(n) for n in same) for same in clashes)
        raise GraphcError(f"input names must differ (compared NFKC-normalized, as Python compares identifiers): "
                          f"{text} (at {user_location()})")


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
