"""The text IR: compact SSA, one node per line, forward and backward parts marked."""
import re

from .ops import OPS
from .types import Dim, resolve

DIM_NAMES = "NMKLPQRSTUVW"


def dim_names(graph):
    """Call-time sizes named N, M, K, ... in order of first appearance."""
    names = {}
    for node in graph.order():
        for size in graph.type(node).shape:
            if isinstance(size, Dim) and size not in names:
                k = len(names)
                names[size] = DIM_NAMES[k] if k < len(DIM_NAMES) else f"D{k}"
    return names


def format_graph(graph, show_loc=True, dense=False):
    """The text IR; dense: nodes renumbered %0, %1, ... in order of appearance, so dumps of graphs
    that differ only in the ids passes left behind compare equal line by line."""
    text = _format(graph, show_loc)
    return renumbered(text) if dense else text


def renumbered(text):
    numbers = {}
    return re.sub(r"%(\d+)", lambda m: f"%{numbers.setdefault(m.group(1), len(numbers))}", text)


def _format(graph, show_loc):
    names = dim_names(graph)

    def dim_text(value):
        value = resolve(value) if isinstance(value, Dim) else value
        return names.get(value, "?") if isinstance(value, Dim) else str(value)

    params = ", ".join(f"%{n}:{graph.type(n).text(names)} {graph.attrs(n)['name']}" for n in graph.inputs)
    outs = ", ".join(f"%{n}" for n in graph.outputs)
    lines = [f"graph {graph.name}({params}) -> ({outs})"]
    body, phase = [], None
    for node in graph.order():
        data = graph[node]
        if data["op"] == "input":
            continue
        if data["phase"] != phase:
            phase = data["phase"]
            body.append((f"  # {phase}", None))
        body.append((_node_text(graph, node, names, dim_text) + _buffer_note(graph, node),
                     _comment(graph, node) if show_loc else None))
    width = max((len(text) for text, comment in body if comment), default=0)
    for text, comment in body:
        lines.append(f"{text:<{width}}  # {comment}" if comment else text)
    for target, value in graph.updates:
        lines.append(f"  update {graph.attrs(target)['name']} (%{target}) <- %{value}")
    schedule = getattr(graph, "schedule", None)
    if schedule is not None:  # after the schedule pass: what the driver runs
        lines += ["", schedule.text(graph)]
    return "\n".join(lines)


def _node_text(graph, node, names, dim_text):
    data = graph[node]
    opdef = OPS[data["op"]]
    attrs = opdef.format_attrs(data["attrs"], dim_text) if data["attrs"] else ""
    if data["op"] == "constant":
        head = f"constant {attrs}"
    elif attrs.startswith("{"):  # a fused node's body
        head = data["op"] + attrs
    else:
        head = data["op"] + (f"[{attrs}]" if attrs else "")
    args = " ".join(f"%{a}" for a in data["args"])
    return f"  %{node}:{data['type'].text(names)} = {head}" + (f" {args}" if args else "")


def _comment(graph, node):
    data = graph[node]
    if data["phase"] == "backward" and data["origin"] is not None:
        origin = data["origin"]
        op = data.get("origin_op") or (graph.op(origin) if origin in graph else "?")  # the op as the user wrote it
        return f"grad of {op}" + (f" at {data['loc']}" if data["loc"] else "")
    return data["loc"]


def provenance(graph, node):
    """'forward, file:line' or 'backward, grad of op at file:line': where a node came from, for messages."""
    return f"{graph[node].get('phase') or 'forward'}, {_comment(graph, node) or '?'}"


def _buffer_note(graph, node):
    """Where the array comes from: %k's loop stores it, or it is %k's dead array (the memory plan)."""
    loop, donor = graph[node].get("loop"), graph[node].get("reuses")
    note = f" [stored by the loop of %{loop}]" if loop is not None and loop != node else ""
    return note + (f" [buffer of %{donor}]" if donor is not None else "")
