"""Merging fused loops into one: the shared body's steps, and moving a node onto the merged loop.

Used by fusion (independent loops over one shape share a loop) and by the reduction-loop join."""
from graphc.ops.fused import Step


def append_steps(steps, known, body, operands, inputs, saved=None):
    """Append body's steps (over `operands`) to the merged `steps`, each distinct step computed once.

    known: (op, args, attrs) -> position in steps; inputs: the merged loop's operands (grows);
    saved: operand -> the step of the merged body that computes it (read there, not as an operand).
    Returns the position in steps of each of body's steps."""
    positions = []
    for step in body.steps:
        args = tuple(_merged_arg(a, operands, inputs, positions, saved or {}) for a in step.args)
        key = (step.op, args, step.attrs)
        if key not in known:
            known[key] = len(steps)
            steps.append(Step(step.op, args, step.attrs, step.type, step.where))
        positions.append(known[key])
    return positions


def _merged_arg(arg, operands, inputs, positions, saved):
    """A step's argument in the merged body."""
    if arg[0] == "in":
        operand = operands[arg[1]]
        if operand in saved:
            return ("step", saved[operand])
        if operand not in inputs:
            inputs.append(operand)
        return ("in", inputs.index(operand))
    if arg[0] == "step":
        return ("step", positions[arg[1]])
    return arg


def retag(graph, node, inputs, attrs, loop):
    """node now reads the merged loop's inputs, with its body `attrs`, and is computed by `loop`."""
    for a in set(graph.args(node)):
        graph.g.remove_edge(a, node)
    graph[node].update(args=tuple(inputs), attrs=attrs, loop=loop)
    for a in inputs:
        graph.g.add_edge(a, node)
