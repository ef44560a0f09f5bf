"""Reverse-mode autodiff as a graph pass: each gc.grad node becomes the reverse graph it stands for."""
import networkx as nx

from graphc import functions as F
from graphc.errors import GradientError, GraphcError
from graphc.ops import OPS
from graphc.tensor import constant
from graphc.types import is_float, same_shape

from .rewrite import add_with_provenance, ref


def autodiff(graph):
    """Expand gc.grad nodes: local gradient times upstream gradient, summed where a value fans out."""
    if not graph.nodes_with("grad"):
        return graph
    graph = graph.copy()
    while pending := graph.nodes_with("grad"):
        y = graph.args(pending[0])[0]  # the earliest grad has no grad among y's ancestors
        _expand(graph, y, [n for n in pending if graph.args(n)[0] == y])
    return graph


def _expand(graph, y, grad_nodes):
    wrts = {graph.args(n)[1] for n in grad_nodes}
    relevant = (nx.ancestors(graph.g, y) | {y}) & set().union(*(nx.descendants(graph.g, w) | {w} for w in wrts))
    upstream = {y: [ref(graph, _lower(graph, y, constant(1.0, graph.type(y).dtype)))]}
    totals = {}
    for node in reversed([n for n in graph.order() if n in relevant]):
        if node not in upstream:
            continue
        totals[node] = total = _lower(graph, node, _sum(upstream.pop(node)))
        for arg, local in zip(graph.args(node), _local_grads(graph, node, total)):
            if local is not None and arg in relevant and is_float(graph.type(arg).dtype):
                local = _lower(graph, node, _fit(local, graph.type(arg)))
                upstream.setdefault(arg, []).append(ref(graph, local))
    for grad_node in grad_nodes:
        wrt = graph.args(grad_node)[1]
        result = totals.get(wrt)
        if result is None:  # y doesn't depend on wrt
            zero = F.broadcast_to(constant(0.0, graph.type(wrt).dtype), graph.type(wrt).shape)
            result = _lower(graph, wrt, zero)
        graph.replace_uses(grad_node, result)
        graph.remove(grad_node)


def _local_grads(graph, node, upstream_node):
    """The op's vjp rule applied to refs of this node's operands; Tensors not yet lowered."""
    data = graph[node]
    opdef = OPS[data["op"]]
    if opdef.kind == "source" or not opdef.differentiable or not is_float(data["type"].dtype):
        return ()
    if opdef.vjp is None:
        raise GradientError(f"{data['op']} has no gradient rule (at {data['loc']})")
    args = [ref(graph, a) for a in data["args"]]
    try:
        return opdef.vjp(ref(graph, upstream_node), ref(graph, node), *args, **data["attrs"])
    except GraphcError as error:  # name the forward node whose gradient failed, at the user's line
        raise type(error)(f"the gradient of {data['op']} at {data['loc']}: {error}") from None


def _lower(graph, origin, tensor):
    """Add a backward tensor, its nodes tagged with the forward node they differentiate."""
    return add_with_provenance(graph, tensor, "backward", origin, graph[origin]["loc"], graph.op(origin))


def _sum(contributions):
    """Gradients add at branches."""
    total = contributions[0]
    for more in contributions[1:]:
        total = total + more
    return total


def _fit(grad, target):
    """Undo broadcasting: sum over the axes broadcasting added or stretched, then match shape and dtype."""
    shape, target_shape = grad.shape, target.shape
    if len(shape) < len(target_shape) or any(g == 1 and t != 1 for g, t in zip(shape[len(shape) - len(target_shape):], target_shape)):
        grad = F.broadcast_to(grad, target_shape)
        shape = grad.shape
    lead = len(shape) - len(target_shape)
    axes = tuple(range(lead)) + tuple(lead + k for k, t in enumerate(target_shape) if t == 1 and shape[lead + k] != 1)
    if axes:
        grad = F.sum(grad, axis=axes, keepdims=True)
    if lead or not same_shape(grad.shape, target_shape):
        grad = F.reshape(grad, target_shape)
    if grad.dtype != target.dtype:
        grad = F.cast(grad, target.dtype)
    return grad
