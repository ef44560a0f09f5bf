"""Reverse-mode autodiff as a graph pass: each gc.grad node becomes the reverse graph it stands for.

Results of one computation (graphc/schedule.py joint_groups: a scan's final carry and stacked ys)
are differentiated together: their op's vjp is called once, as vjp(gs, outs, *inputs, **attrs) with
gs {output: upstream gradient} for the results that have one and outs {output: result}, after every
reader of every result."""
import networkx as nx

from graphc import functions as F
from graphc.errors import GradientError, GraphcError
from graphc.ops import OPS
from graphc.schedule import joint_groups
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
    order = [n for n in graph.order() if n in relevant]
    joint = joint_groups(graph, order)
    for node in reversed(order):
        if node in upstream:
            totals[node] = _lower(graph, node, _sum(upstream.pop(node)))
        group = joint.get(node, (node,))
        if node != group[0] or not any(m in totals for m in group):
            continue  # a group's vjp runs at its first result, once every reader of each is done
        for arg, local in zip(graph.args(node), _local_grads(graph, group, totals)):
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


def _local_grads(graph, group, totals):
    """The op's vjp rule applied to refs of the group's operands (one node, or the results of one
    computation); Tensors not yet lowered."""
    node = group[0]
    data = graph[node]
    opdef = OPS[data["op"]]
    differentiated = [m for m in group if m in totals and is_float(graph.type(m).dtype)]
    if opdef.kind == "source" or not opdef.differentiable or not differentiated:
        return ()
    if opdef.vjp is None:
        raise GradientError(f"{data['op']} has no gradient rule (at {data['loc']})")
    args = [ref(graph, a) for a in data["args"]]
    try:
        if "output" not in data["attrs"]:
            return opdef.vjp(ref(graph, totals[node]), ref(graph, node), *args, **data["attrs"])
        gs = {graph.attrs(m)["output"]: ref(graph, totals[m]) for m in differentiated}
        outs = {graph.attrs(m)["output"]: ref(graph, m) for m in group}
        attrs = {k: v for k, v in data["attrs"].items() if k != "output"}
        return opdef.vjp(gs, outs, *args, **attrs)
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
