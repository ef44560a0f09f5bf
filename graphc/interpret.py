"""The NumPy reference interpreter: evaluates any graph; the oracle for tests."""
import numpy as np

from .errors import CallError, GraphcError
from .ir import Graph
from .loc import user_location
from .ops import OPS
from .types import Dim, resolve, size_value


def interpret(graph, *args, promote=False):
    """Values of graph.outputs for the input arrays `args` (in graph.inputs order), and the update values.

    promote: compute float32 nodes in float64 (for numerical gradients).
    """
    if not isinstance(graph, Graph):
        raise GraphcError(f"interpret takes a graph (gc.lower(outputs, inputs) or a compiled function's .graph), "
                          f"got {type(graph).__name__} (at {user_location()})")
    if len(args) != len(graph.inputs):
        raise CallError(f"interpret: {graph.name} takes {len(graph.inputs)} arrays, got {len(args)} (at {user_location()})")
    values, sizes = {}, {}
    feeds = dict(zip(graph.inputs, args))
    for node in graph.order():
        data = graph[node]
        dtype = "float64" if promote and data["type"].dtype == "float32" else data["type"].dtype
        if data["op"] == "input":
            value = _feed(data, feeds[node], dtype)
        else:
            attrs = {k: _concrete(v, sizes) for k, v in data["attrs"].items()}
            inputs = [values[a] for a in data["args"]]
            value = np.asarray(OPS[data["op"]].numpy(*inputs, **attrs)).astype(dtype, copy=False)
        _learn_sizes(data["type"].shape, value.shape, sizes)
        values[node] = value
    return [values[o] for o in graph.outputs], {target: values[v] for target, v in graph.updates}


def _feed(data, value, dtype):
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as error:
        raise CallError(f"interpret: input {data['attrs']['name']!r} ({data['type']}) got {type(value).__name__}, "
                        f"not an array of numbers: {error} (at {user_location()})") from None


def _learn_sizes(declared, actual, sizes):
    for size, n in zip(declared, actual):
        size = resolve(size)
        if isinstance(size, Dim):
            sizes[size] = n


def _concrete(value, sizes):
    """Attributes with call-time sizes (reshape targets, say) made concrete from sizes seen so far
    (derived sizes, a sum or a product, computed from their parts)."""
    if isinstance(value, Dim):
        return size_value(value, sizes)
    if isinstance(value, tuple) and any(isinstance(v, (Dim, tuple)) for v in value):
        return tuple(_concrete(v, sizes) for v in value)
    return value
