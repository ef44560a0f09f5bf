"""Pictures of the IR: `to_dot` writes Graphviz DOT text, `render` turns it into SVG or PNG.

Nodes are renamed n0, n1, ... in graph.order(), so the text depends on the graph alone (never on
node ids or addresses). A fused node is a cluster holding its body's steps; the fused nodes one
loop computes (a "loop" tag, see Graph.order) share one cluster, their common body drawn once.
"""
from .errors import GraphcError
from .ops import OPS
from .printer import dim_names, provenance
from .types import Dim, resolve

PHASE_COLOURS = {"forward": "lightblue", "backward": "lightsalmon"}
FORMATS = ("dot", "svg", "png")

_NO_DOT_PROGRAM = ("Graphviz's dot program is not installed (it is a system package, not a Python one): "
                   "apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS) "
                   "or conda install graphviz")


def to_dot(graph, show_loc=True):
    """DOT text of `graph`, the same byte for byte for the same graph. show_loc: the user's file:line
    (and, for backward nodes, the op they differentiate) as each node's tooltip."""
    return _DotWriter(graph, show_loc).text()


class _DotWriter:
    def __init__(self, graph, show_loc):
        self.graph, self.show_loc = graph, show_loc
        self.names = dim_names(graph)
        self.order = graph.order()
        self.ids = {node: f"n{k}" for k, node in enumerate(self.order)}
        self.edges = []  # written after every node: an edge inside a cluster's braces pulls its nodes in

    def text(self):
        graph, ids = self.graph, self.ids
        loops = {}  # loop tag (or the lone fused node) -> the fused nodes that loop computes, in order
        for node in self.order:
            if "body" in graph.attrs(node):
                tag = graph[node].get("loop")
                loops.setdefault(node if tag is None else tag, []).append(node)
        clusters = {members[0]: (k, members) for k, members in enumerate(loops.values())}
        lines = [f"digraph {_quote(graph.name)} {{",
                 f"  // node colours: forward {PHASE_COLOURS['forward']}, backward {PHASE_COLOURS['backward']}; "
                 "inputs are ellipses, outputs double octagons, updates dashed edges",
                 '  node [shape=box, style=filled, fillcolor=white, fontname="Helvetica", fontsize=11];',
                 '  edge [fontname="Helvetica", fontsize=9];',
                 "  subgraph cluster_legend {",
                 '    label="legend"; fontname="Helvetica"; fontsize=9;',
                 *(f"    {_node(f'legend_{phase}', label=phase, fillcolor=colour)}"
                   for phase, colour in PHASE_COLOURS.items()),
                 "  }"]
        for node in self.order:
            data = graph[node]
            if data["op"] == "input":
                name = data["attrs"]["name"]
                lines.append("  " + _node(ids[node], label=name, shape="ellipse", **self.tooltip(node)))
            elif node in clusters:
                lines += self.cluster(*clusters[node])
            elif "body" not in data["attrs"]:  # a loop's other fused nodes are in its cluster
                lines.append("  " + self.op_node(node))
                self.edges += [_edge(ids[arg], ids[node], label=self.type_text(arg))
                               for arg in dict.fromkeys(data["args"])]
        for k, node in enumerate(graph.outputs):
            lines.append("  " + _node(f"out{k}", label=f"output {k}", shape="doubleoctagon"))
            self.edges.append(_edge(ids[node], f"out{k}", label=self.type_text(node)))
        for target, value in graph.updates:  # no constraint: ranks still run from the inputs down
            self.edges.append(_edge(ids[value], ids[target], label="update", style="dashed", constraint="false"))
        return "\n".join(lines + ["  " + edge for edge in self.edges] + ["}"]) + "\n"

    def cluster(self, k, members):
        """Cluster k: the body's steps as small nodes, each read operand feeding the steps that read it,
        then the fused nodes, each fed by the step it yields (their body and operands are the same)."""
        graph, first = self.graph, members[0]
        operands, steps = graph.args(first), graph.attrs(first)["body"].steps
        lines = [f"  subgraph cluster_{k} {{",
                 '    label="fused loop"; style="rounded,dashed"; color=grey50; fontname="Helvetica"; fontsize=9;']
        for j, step in enumerate(steps):
            name = f"c{k}s{j}"
            phase = (step.where or graph[first]["phase"]).split(",")[0]  # where: "forward, file:line" ...
            tooltip = {"tooltip": step.where} if self.show_loc and step.where else {}
            lines.append("    " + _node(name, label=_op_text(step.op, dict(step.attrs), self.dim_text),
                                        fillcolor=PHASE_COLOURS[phase], fontsize=9, height=0.25, **tooltip))
            for a, arg in enumerate(dict.fromkeys(step.args)):
                if arg[0] == "in":
                    operand = operands[arg[1]]
                    self.edges.append(_edge(self.ids[operand], name, label=f"i{arg[1]}: {self.type_text(operand)}"))
                elif arg[0] == "step":
                    self.edges.append(_edge(f"c{k}s{arg[1]}", name))
                else:  # ("const", value, dtype): a literal operand
                    value = arg[1]
                    literal = f"{value:g}" if isinstance(value, float) else value
                    lines.append("    " + _node(f"{name}a{a}", label=literal, shape="plaintext", fontsize=9))
                    self.edges.append(_edge(f"{name}a{a}", name))
        for node in members:
            lines.append("    " + self.op_node(node))
            yielded = graph.attrs(node).get("output", -1) % len(steps)
            self.edges.append(_edge(f"c{k}s{yielded}", self.ids[node], style="dotted"))
        return lines + ["  }"]

    def op_node(self, node):
        data = self.graph[node]
        label = _op_text(data["op"], data["attrs"], self.dim_text)
        return _node(self.ids[node], label=label, fillcolor=PHASE_COLOURS[data["phase"]], **self.tooltip(node))

    def tooltip(self, node):
        loc = self.graph[node]["loc"]
        return {"tooltip": provenance(self.graph, node)} if self.show_loc and loc else {}

    def type_text(self, node):
        return self.graph.type(node).text(self.names)

    def dim_text(self, size):
        size = resolve(size)
        return self.names.get(size, "?") if isinstance(size, Dim) else str(size)


def _op_text(op, attrs, dim_text):
    """The op as the text printer writes it: matmul, transpose[axes=(1,0)], constant 2.0, fused{exp(i0)*2}."""
    text = OPS[op].format_attrs(attrs, dim_text) if attrs else ""
    if op == "constant":
        return f"constant {text}"
    if text.startswith("{"):  # a fused node's body
        return op + text
    return op + (f"[{text}]" if text else "")


def _quote(text):
    """A DOT string showing `text` as it is: Graphviz reads backslash escapes (\\N is the node's name)
    and HTML entities (&amp;) in strings, so backslashes, quotes and ampersands are escaped."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;") + '"'


def _node(name, **attrs):
    return f"{name}{_attrs(attrs)};"


def _edge(tail, head, **attrs):
    return f"{tail} -> {head}{_attrs(attrs)};"


def _attrs(attrs):
    return " [" + ", ".join(f"{key}={_quote(value)}" for key, value in attrs.items()) + "]" if attrs else ""


def render(dot_text, format):
    """`dot_text` as a picture: "svg" or "png" bytes from Graphviz's dot program, "dot" the text itself."""
    if format not in FORMATS:
        raise GraphcError(f"can't render a graph as {format!r}: formats are {', '.join(FORMATS)}")
    if format == "dot":
        return dot_text.encode()
    try:
        import graphviz  # optional: graphc works without it
    except ImportError:
        raise GraphcError('rendering a graph needs the graphviz Python package: pip install graphviz '
                          '(or pip install -e ".[examples]")') from None
    try:
        return graphviz.Source(dot_text).pipe(format=format, quiet=True)  # its stderr goes in our message
    except graphviz.ExecutableNotFound:
        raise GraphcError(_NO_DOT_PROGRAM) from None
    except graphviz.CalledProcessError as error:
        raise GraphcError(f"Graphviz's dot failed: {error.stderr.decode(errors='replace').strip()}") from None
