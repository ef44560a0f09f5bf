"""Code generation: one readable Python function (for numba.njit) computing a whole final graph.

Per node a comment gives the IR line and the user's location. Locals are named from node numbers,
never from user strings. Sizes are read from the arguments at run time, so a `None` size never
recompiles; constants are literals or arguments, never module globals (Numba's cache needs that).
"""
from dataclasses import dataclass

import networkx as nx
import numpy as np

from graphc.ops import OPS
from graphc.printer import dim_names
from graphc.types import Dim, resolve

PRELUDE = """\
import numpy as np
from graphc.runtime.scalar_math import exp, log, tanh, sqrt, log1p, expm1, slice_length
"""


@dataclass
class Kernel:
    source: str              # the module text
    name: str                # the entry point
    arg_nodes: list          # graph nodes passed as arguments, in order (inputs, then array constants)
    scalar_args: set         # positions passed as scalars (rank-0 inputs not updated)


class ScalarSpec:
    """What an elementwise op's scalar expression sees."""

    def __init__(self, args, dtype, const):
        self.args, self.dtype, self.c = args, dtype, lambda v: const(v, dtype)


class Context:
    """What an op's emit(ctx, node) can ask about the graph and the kernel being written."""

    def __init__(self, graph):
        self.graph = graph
        self.names = dim_names(graph)
        self.size_lines = []
        self.size_vars = {}
        self.layouts = {}
        self.scalars = set()

    # graph facts
    def args(self, node): return self.graph.args(node)
    def attrs(self, node): return self.graph.attrs(node)
    def type(self, node): return self.graph.type(node)
    def var(self, node): return f"v{node}"

    def dims(self, node):
        return [self.size(s) for s in self.type(node).shape]

    def size(self, size):
        """A kernel expression for one size: a literal, or a variable read from the arguments."""
        size = resolve(size)
        if not isinstance(size, Dim):
            return str(size)
        if size not in self.size_vars:
            if size.formula is None:
                raise AssertionError(f"size {size} is not known from any argument")
            parts = [self.size(p) for p in size.parts]
            name = f"n{len(self.size_vars)}"
            self.size_lines.append(f"{name} = {size.formula.format(*parts)}")
            self.size_vars[size] = name
        return self.size_vars[size]

    def count(self, node, axes):
        """The number of elements over `axes` of node."""
        dims = self.dims(node)
        return " * ".join([dims[a] for a in axes]) or "1"

    # values
    def const(self, value, dtype):
        if dtype == "bool":
            return repr(bool(value))
        if dtype.startswith("int"):
            return f"np.{dtype}({int(value)})"
        value = float(value)
        text = "np.inf" if value == float("inf") else "-np.inf" if value == float("-inf") else "np.nan" if value != value else repr(value)
        return text if dtype == "float64" else f"np.float32({text})"

    def shape(self, node):
        """node's shape as a kernel tuple expression."""
        dims = self.dims(node)
        return f"({', '.join(dims)},)" if dims else "()"

    def empty(self, node):
        return f"np.empty({self.shape(node)}, np.{self.type(node).dtype})"

    def layout(self, node):
        return self.layouts.get(node, "C")

    def set_layout(self, node, layout):
        self.layouts[node] = layout

    def contiguous(self, node):
        return self.var(node) if self.layout(node) == "C" else f"np.ascontiguousarray({self.var(node)})"

    def blas_operand(self, node):
        """C or F views go to BLAS as they are; anything else is copied."""
        return self.var(node) if self.layout(node) in ("C", "F") else f"np.ascontiguousarray({self.var(node)})"

    def scalar_of(self, node, dtype):
        return f"np.{dtype}({self.var(node)})"

    def nest(self, sizes, names):
        """Loop headers over `sizes` with index `names`; returns (lines, indent of the body)."""
        lines, indent = [], ""
        for size, name in zip(sizes, names):
            lines.append(f"{indent}for {name} in range({size}):")
            indent += "    "
        return lines, indent

    def at(self, operand, space, names):
        """operand's element at loop position `names` over `space`'s shape, NumPy broadcasting."""
        rank = self.type(operand).ndim
        if rank == 0:
            return self.var(operand)
        lead = len(names) - rank
        shape, space_shape = self.type(operand).shape, self.type(space).shape
        idx = [("0" if (s == 1 and not isinstance(s, Dim) and space_shape[lead + k] != 1) else names[lead + k])
               for k, s in enumerate(shape)]
        return f"{self.var(operand)}[{', '.join(idx)}]"


def elementwise_lines(ctx, node):
    """One loop (flat when every array operand matches the output's shape and is C-ordered)."""
    opdef, args = OPS[ctx.graph.op(node)], ctx.args(node)
    out_type = ctx.type(node)
    if out_type.ndim == 0:
        return [f"{ctx.var(node)} = " + opdef.scalar(ScalarSpec([ctx.var(a) for a in args], out_type.dtype, ctx.const))]
    arrays = [a for a in dict.fromkeys(args) if ctx.type(a).ndim > 0]
    flat = all(ctx.type(a).shape == out_type.shape and ctx.layout(a) == "C" for a in arrays)
    out = ctx.var(node)
    lines = [f"{out} = {ctx.empty(node)}"]
    if flat:
        view = (lambda n: ctx.var(n)) if out_type.ndim == 1 else (lambda n: f"{ctx.var(n)}_flat")
        if out_type.ndim > 1:
            lines += [f"{ctx.var(n)}_flat = {ctx.var(n)}.reshape(-1)" for n in [node] + arrays]
        head, ind = [f"for i in range({out}.size):"], "    "
        element = {a: f"{view(a)}[i]" for a in arrays}
        target = f"{view(node)}[i]"
    else:
        names = [f"i{k}" for k in range(out_type.ndim)]
        head, ind = ctx.nest(ctx.dims(node), names)
        element = {a: ctx.at(a, node, names) for a in arrays}
        target = f"{out}[{', '.join(names)}]"
    loads = [f"{ind}x{k} = {element[a]}" for k, a in enumerate(arrays)]
    local = {a: f"x{k}" for k, a in enumerate(arrays)}
    expr = opdef.scalar(ScalarSpec([local.get(a, ctx.var(a)) for a in args], out_type.dtype, ctx.const))
    return lines + head + loads + [f"{ind}{target} = {expr}"]


VIEW_OPS = ("input", "reshape", "transpose", "getitem")  # their results may alias a caller's array


def generate(graph, name="kernel"):
    """The kernel module for a final graph."""
    ctx = Context(graph)
    updated = {target for target, _ in graph.updates}
    live = set(graph.inputs)
    for root in graph.roots():
        live |= nx.ancestors(graph.g, root) | {root}
    constants = [n for n in graph.order() if n in live and graph.op(n) == "constant"
                 and isinstance(graph.attrs(n)["value"], np.ndarray)]
    arg_nodes = list(graph.inputs) + constants
    params = [f"a{k}" for k in range(len(arg_nodes))]
    scalar_args = {k for k, n in enumerate(graph.inputs) if graph.type(n).ndim == 0 and n not in updated}

    for k, node in enumerate(graph.inputs):
        for axis, size in enumerate(graph.type(node).shape):
            if isinstance(size, Dim) and size not in ctx.size_vars:
                ctx.size_vars[size] = f"n{len(ctx.size_vars)}"
                ctx.size_lines.append(f"{ctx.size_vars[size]} = a{k}.shape[{axis}]")
    body = []
    for k, node in enumerate(arg_nodes):
        read = f"a{k}[()]" if graph.type(node).ndim == 0 and k not in scalar_args else f"a{k}"
        body.append(f"v{node} = {read}")
    from graphc.printer import _comment, _node_text  # one line of IR per node, as the dump shows it
    for node in graph.order():
        if node not in live or node in arg_nodes:
            continue
        opdef = OPS[graph.op(node)]
        text = _node_text(graph, node, ctx.names, lambda v: ctx.size(v) if isinstance(v, Dim) else str(v)).strip()
        where = _comment(graph, node)
        body.append(f"# {text}" + (f"  ({where})" if where else ""))
        body.extend(elementwise_lines(ctx, node) if opdef.kind == "elementwise" else opdef.emit(ctx, node))
    results = []
    for out in graph.outputs:
        aliased = graph.op(out) in VIEW_OPS and graph.type(out).ndim > 0
        results.append(f"v{out}.copy()" if aliased else f"v{out}")
    if graph.updates:
        body.append("# updates, written into the caller's arrays once every result is computed")
        body.append(f"results = ({', '.join(results)}{',' if results else ''})")
        for target, value in graph.updates:
            k = arg_nodes.index(target)
            if graph.type(target).ndim == 0:
                body.append(f"a{k}[()] = v{value}")
            else:
                body += [f"dst = a{k}.reshape(-1)", f"src = {ctx.contiguous(value)}.reshape(-1)",
                         "for i in range(dst.size):", "    dst[i] = src[i]"]
        body.append("return results")
    else:
        body.append(f"return ({', '.join(results)}{',' if results else ''})")
    lines = [PRELUDE, "", f"def {name}({', '.join(params)}):"]
    lines += ["    " + line for line in ctx.size_lines + body]
    return Kernel("\n".join(lines) + "\n", name, arg_nodes, scalar_args)
