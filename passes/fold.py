"""Constant folding: nodes whose operands are all constants become constants."""
import numpy as np

from graphc.ops import OPS
from graphc.tensor import constant

from .rewrite import replace

LIMIT = 4096  # elements: larger results stay computed, not baked into the kernel


def fold(graph):
    """Evaluate nodes over constants with the ops' NumPy references (numpy_exact ops only, unless value-changing is on).

    Transcendental ops (exp, log, tanh, pow, ...) and reductions are folded only with
    options={"value_changing": True}: NumPy's exp or pairwise sum may differ from the kernel's in the
    last bit.
    """
    work, folded = graph, 0
    any_op = graph.options.get("value_changing")
    for node in graph.order():
        if node not in work or not _foldable(work, node, any_op):
            continue
        if work is graph:
            work = graph.copy()
        replace(work, node, constant(_evaluate(work, node), work.type(node).dtype))
        folded += 1
    if work is not graph:
        work.fired = {"fold": folded}
    return work


def _foldable(graph, node, any_op):
    data = graph[node]
    if OPS[data["op"]].kind == "source" or data["op"] == "grad" or not data["args"]:
        return False
    if not (any_op or OPS[data["op"]].numpy_exact or _single_element_reduction(graph, node)):
        return False
    if not data["type"].is_static() or int(np.prod(data["type"].shape)) > LIMIT:
        return False
    return all(graph.op(a) == "constant" for a in data["args"])


def _single_element_reduction(graph, node):
    """A reduction over one element is exact in any order."""
    t = graph.type(graph.args(node)[0])
    return OPS[graph.op(node)].kind == "reduce" and t.is_static() and int(np.prod(t.shape)) <= 1


def _evaluate(graph, node):
    data = graph[node]
    values = [np.asarray(graph.attrs(a)["value"], dtype=graph.type(a).dtype) for a in data["args"]]
    with np.errstate(all="ignore"):
        value = np.asarray(OPS[data["op"]].numpy(*values, **data["attrs"])).astype(data["type"].dtype)
    return value.item() if value.ndim == 0 else value
