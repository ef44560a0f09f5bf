"""The NumPy reference interpreter: evaluates any graph; the oracle for tests."""
import numpy as np

from .ops import OPS
from .types import Dim, resolve


def interpret(graph, *args, promote=False):
    """Values of graph.outputs for the input arrays `args` (in graph.inputs order), and the update values.

    promote: compute float32 nodes in float64 (for numerical gradients).
    """
    values, sizes = {}, {}
    feeds = dict(zip(graph.inputs, args))
    for node in graph.order():
        data = graph[node]
        dtype = "float64" if promote and data["type"].dtype == "float32" else data["type"].dtype
        if data["op"] == "input":
            value = np.asarray(feeds[node], dtype=dtype)
        else:
            attrs = {k: _concrete(v, sizes) for k, v in data["attrs"].items()}
            inputs = [values[a] for a in data["args"]]
            value = np.asarray(OPS[data["op"]].numpy(*inputs, **attrs)).astype(dtype, copy=False)
        _learn_sizes(data["type"].shape, value.shape, sizes)
        values[node] = value
    return [values[o] for o in graph.outputs], {target: values[v] for target, v in graph.updates}


def _size_value(size, sizes):
    """A call-time size: seen on some value already, or computed from its formula (a sum, a product, ...)."""
    if not isinstance(size, Dim):
        return size
    if size not in sizes:
        parts = [_size_value(resolve(p), sizes) for p in size.parts]
        sizes[size] = eval(size.formula.format(*parts), {})  # formulas are arithmetic over sizes
    return sizes[size]


def _learn_sizes(declared, actual, sizes):
    for size, n in zip(declared, actual):
        size = resolve(size)
        if isinstance(size, Dim):
            sizes[size] = n


def _concrete(value, sizes):
    """Attributes with call-time sizes (reshape targets, say) made concrete from sizes seen so far."""
    if isinstance(value, Dim):
        return _size_value(resolve(value), sizes)
    if isinstance(value, tuple) and any(isinstance(v, (Dim, tuple)) for v in value):
        return tuple(_concrete(v, sizes) for v in value)
    return value
