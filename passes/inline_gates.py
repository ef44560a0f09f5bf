"""inline_gates: each gc.gate node becomes its body's ops, after autodiff has used the gate's rule,
so the body fuses like any elementwise code."""
from graphc.ops import OPS
from graphc.ops.user_gate import replay
from graphc.types import TensorType, transaction


def inline_gates(graph):
    """Replace each gate node by its body's steps over its operands (their types re-inferred)."""
    gates = graph.nodes_with("gate")
    if not gates:
        return graph
    graph = graph.copy()
    for node in gates:
        data = graph[node]
        where = (data["loc"], data["phase"], data["origin"])

        def add_step(op, args, attrs, step):
            with transaction():
                t = OPS[op].infer([graph.type(a) for a in args], **attrs)
            return graph.add(op, args, attrs, t, *where)

        def add_constant(value, dtype):
            return graph.add("constant", (), {"value": value}, TensorType((), dtype), *where)

        value = replay(data["attrs"]["body"], list(data["args"]), add_constant, add_step)
        graph.replace_uses(node, value)
        graph.remove(node)
    return graph
