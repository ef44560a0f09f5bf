"""Code generation: renders a final graph's schedule (graphc/schedule.py) as readable Python for numba.njit.

The graph becomes a driver function, run by the binder, and library kernels, one function per
distinct loop nest (runtime/library.py; their loops are written by runtime/loops.py), which the
driver calls. Per node the driver has a comment
with the IR line and the user's location. Locals are named from node numbers, never from user
strings; in a library kernel operands and sizes are positional parameters (a0, a1, ...)
and the nodes it stores r0, r1, ..., so identical loop nests render to identical text. Sizes are
read from the arguments at run time, so a `None` size never recompiles; constants are literals or
arguments, never module globals (Numba's cache needs that). Code may call helper functions, each a
final graph rendered as one serial function before it in its module (Context.function: a scan's step).
"""

import hashlib

import networkx as nx
import numpy as np

from graphc.errors import GraphcError
from graphc.ops import OPS
from graphc.ops.fused import yields_reduction
from graphc.ops.reduce import REDUCERS
from graphc.printer import dim_names
from graphc.schedule import Launch, build_schedule, loop_groups
from graphc.types import Dim, resolve, same_shape

from . import library
from .kernel import Kernel
from .library import PRELUDE
from .loops import finite_message, fused_lines, single_step_lines

PYTHON_PRELUDE = """\
import numpy as np
from graphc.runtime.pydriver import empty, contiguous, address
"""
class Context:
    """What an op's emit(ctx, node) can ask about the graph and the kernel being written."""

    def __init__(self, graph):
        self.graph = graph
        self.names = dim_names(graph)
        self.size_lines = []
        self.size_vars = {}
        self.layouts = {}
        self.reused = set()  # nodes whose output took a dead array, as the memory plan says
        self.done = set()    # nodes another node's loop already computed
        self.parallel = False  # a loop written here runs on threads (prange)
        self.groups = loop_groups(graph)  # tag -> the nodes its loop stores
        self.python = False    # writing a plain Python driver (NumPy helpers, no loops of its own)
        self.functions = {}    # name -> text: helper functions the code calls, written before it (Context.function)
        self.check_finite = bool(graph.options.get("check_finite"))
        # serial under check_finite too: its per-step flags are plain accumulators, not prange reductions
        self.may_use_prange = not self.check_finite and not any(OPS[graph.op(n)].threaded for n in graph.g)

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
        """node's output array: a fresh one, or the dead array the graph's memory plan gives it."""
        donor = self.graph[node].get("reuses")
        if donor is not None:
            self.reused.add(node)
            return self.var(donor)
        return f"empty({self.shape(node)}, np.{self.type(node).dtype})"

    def full(self, node, value):
        """Lines making node's array, of its shape and dtype, hold `value` everywhere: empty and a slice
        assignment compile faster than np.full or np.zeros (each a separate Numba function)."""
        name = self.var(node)
        return [f"{name} = empty({self.shape(node)}, np.{self.type(node).dtype})", f"{name}[:] = {value}"]

    def index_error(self, node, ind, condition, detail):
        """Kernel lines raising IndexError, naming the op and the user's line, when `condition` holds.
        Only ops declaring OpDef.checks may raise: memory planning relies on it (no caller array is
        written before such an op)."""
        assert OPS[self.graph.op(node)].checks, f"{self.graph.op(node)} raises at run time: declare OpDef.checks"
        message = f"{self.graph.op(node)}: {detail} (at {self.graph[node].get('loc') or '?'})"
        return [f"{ind}if {condition}:", f"{ind}    raise IndexError({message!r})"]

    def raise_if(self, condition, message):
        """Lines raising FloatingPointError(message) when `condition` holds (check_finite's checks)."""
        return [f"if {condition}:", f"    raise FloatingPointError({message!r})"]

    def layout(self, node):
        return self.layouts.get(node, "C")

    def set_layout(self, node, layout):
        self.layouts[node] = layout

    def contiguous(self, node):
        return self.var(node) if self.layout(node) == "C" else f"contiguous({self.var(node)})"

    def blas_operand(self, node):
        """C or F views go to BLAS as they are; anything else is copied."""
        return self.var(node) if self.layout(node) in ("C", "F") else f"contiguous({self.var(node)})"

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
        return self.at_shape(operand, self.type(space).shape, names)

    def at_shape(self, operand, space_shape, names):
        """operand's element at loop position `names` over a loop space of shape `space_shape`."""
        rank = self.type(operand).ndim
        if rank == 0:
            return self.var(operand)
        lead = len(names) - rank
        shape = self.type(operand).shape
        idx = [("0" if (s == 1 and not isinstance(s, Dim) and space_shape[lead + k] != 1) else names[lead + k])
               for k, s in enumerate(shape)]
        for k, s in enumerate(shape):  # the binder checks the loop's sizes only: an operand must have them
            assert idx[k] == "0" or same_shape((s,), (space_shape[lead + k],)), \
                f"%{operand} axis {k} ({s}) is read over a loop of size {space_shape[lead + k]}"
        return f"{self.var(operand)}[{', '.join(idx)}]"

    def function(self, graph):
        """The name of a helper function computing the final `graph` (a loop's step, say), written into
        this module before the code calling it: one serial njit function of the graph's inputs (rank 0
        as scalars) returning a tuple of its outputs. Named by its text's digest, so equal steps are
        one function and a kernel's text stays the same in every graph."""
        nested, text = _render(graph, HELPER, "helper")
        name = "_f" + hashlib.sha256(text.encode()).hexdigest()[:16]
        self.functions.update(nested)
        self.functions.setdefault(name, text.replace(f"def {HELPER}(", f"def {name}(", 1))
        return name

    def fused(self, node, steps):
        """Kernel lines computing a fused body (see fused_lines); a group's loop computes, and stores,
        every node of its "loop" tag at once."""
        tag = self.graph[node].get("loop")
        if tag is None:
            return fused_lines(self, node, steps)
        members = self.groups.get(tag, (tag,))
        self.done.update(members)
        extras = [(m, self.attrs(m)["output"]) for m in members if m != tag]
        return fused_lines(self, tag, self.attrs(tag)["body"].steps, extras, self.attrs(tag).get("output", -1))


class KernelContext(Context):
    """What an op's emit sees while writing a library kernel: operands and call-time sizes become
    positional parameters a0, a1, ... in order of first use (static sizes too), and the nodes the
    kernel stores r0, r1, ..., so the same loop nest renders to the same text in every layer and graph."""

    def __init__(self, driver, stored):
        self.__dict__.update(driver.__dict__)  # graph facts, and the driver's records (layouts, reuse, done)
        self.local = {n: f"r{k}" for k, n in enumerate(stored)}
        self.params = []  # ("node", node) or ("size", size), in parameter order
        self.size_vars, self.parallel = {}, False  # its own: every size is a parameter
        self.functions = {}

    def var(self, node):
        if node not in self.local:
            self.local[node] = f"a{len(self.params)}"
            self.params.append(("node", node))
        return self.local[node]

    def size(self, size):
        """A parameter for every size but 0 and 1 (which decide broadcasting and empty loops in the
        code itself): a static 512 is a parameter too, so the layers of a 784-512-256 MLP share kernels."""
        size = resolve(size)
        if not isinstance(size, Dim) and size in (0, 1):
            return str(size)
        if size not in self.size_vars:
            self.size_vars[size] = f"a{len(self.params)}"
            self.params.append(("size", size))
        return self.size_vars[size]


def size_checks(ctx, graph, read_from):
    """Kernel lines checking every size computed from others (a slice's length, a flattened size, a sum
    of concatenated sizes) that was unified with another size: the binder only compares the inputs
    with each other, and the loops trust the sizes, so a disagreement would read past an array."""
    lines, seen = [], set()
    for node in graph.order():
        for raw in graph.type(node)._shape:
            if not isinstance(raw, Dim) or raw.formula is None or raw in seen:
                continue
            root = raw.resolved()
            if not isinstance(root, (Dim, int)) or root is raw and raw not in read_from:
                continue  # nothing to compare it with
            seen.add(raw)
            actual = raw.formula.format(*[ctx.size(p) for p in raw.parts])
            expected = ctx.size(root)
            text = raw.formula.format(*[_size_text(p, read_from) for p in raw.parts])
            message = f"{graph.op(node)} at {graph[node].get('loc')}: a size {text} must equal {_size_text(root, read_from)}"
            lines += [f"if {actual} != {expected}:", f"    raise ValueError({message!r})"]
    return lines


def _size_text(size, read_from):
    """A size for messages: the input axis it is read from, or its formula over those."""
    size = resolve(size)
    if not isinstance(size, Dim) or size in read_from:
        return read_from.get(size, str(size))
    return size.formula.format(*[_size_text(p, read_from) for p in size.parts]) if size.formula else "?"


def _may_alias_caller(op):
    """Its result may be a caller's array (an input) or share one's memory (a view)."""
    return op == "input" or OPS[op].view


def finite_check_lines(ctx, node, message=None):
    """Lines raising when node's float value holds a NaN or Inf (its whole array). Skipped for views
    (their operand was checked) and for values a loop checked step by step (fused_lines)."""
    message = message or finite_message(ctx, node)
    t, op = ctx.type(node), ctx.graph.op(node)
    in_loop = (op == "fused" or OPS[op].emit is None) and op not in REDUCERS and not (
        op == "fused" and yields_reduction(ctx.attrs(node)))
    if not t.dtype.startswith("float") or OPS[op].view or in_loop:
        return []
    name = ctx.var(node)
    if t.ndim == 0:
        return ctx.raise_if(f"{name} - {name} != 0", message)
    flag = f"{name}_finite"
    return ([f"{flag} = 0.0", f"{name}_all = {name}.reshape(-1)", f"for i in range({name}_all.size):",
             f"    {flag} = accumulate({flag}, np.float64({name}_all[i] - {name}_all[i]))"]
            + ctx.raise_if(f"{flag} != 0.0", message))


def input_finite_lines(ctx, graph):
    return [line for node in graph.inputs for line in
            finite_check_lines(ctx, node, f"check_finite: input {graph.attrs(node)['name']!r} holds NaN or Inf")]


def comment(text):
    """A one-line comment: user strings (names, file paths) reach it, so nothing may end the line."""
    return "# " + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


OVERLAP_KERNEL = """def kernel(a0, a1):
    for i in range(a1):
        for j in range(i + 1, a0.shape[0]):
            if a0[i, 0] < a0[i, 1] and a0[j, 0] < a0[j, 1] and a0[i, 0] < a0[j, 1] and a0[j, 0] < a0[i, 1]:
                return True
    return False"""  # a0: [start, end) of each argument's memory, update targets first; a1: how many targets


def overlap_checks(graph, arg_nodes, kernels):
    """Driver lines, before anything else, that stop a call whose update target shares memory with
    another argument (the binder then copies the other argument, or refuses two such targets): a loop
    writing the target would change what it still reads. The extents go into one array, checked pairwise
    by one library kernel: lines linear in the number of arguments (a pair test each grew quadratically)."""
    targets = [arg_nodes.index(t) for t, _ in graph.updates]
    arrays = [k for k, n in enumerate(graph.inputs) if graph.type(n).ndim > 0 or n in dict(graph.updates)]
    checked = targets + [a for a in arrays if a not in targets]
    if not targets or len(checked) < 2:
        return []
    lines = [f"spans = empty(({len(checked)}, 2), np.int64)"]
    for row, k in enumerate(checked):
        lines += [f"spans[{row}, 0] = address(a{k})", f"spans[{row}, 1] = spans[{row}, 0] + a{k}.size * a{k}.itemsize"]
    j = kernels.setdefault((OVERLAP_KERNEL, False), len(kernels))
    return lines + [f"if _k{j}(spans, np.int64({len(targets)})):", f"    raise ValueError({OVERLAP!r})"]


OVERLAP = "graphc: an update target overlaps another argument"


def update_lines(ctx, graph, arg_nodes):
    """The updates, written into the caller's arrays after every result is computed, simultaneously:
    a value that may read a target's memory (the input itself, or a view of it) is copied first, so
    every update reads the values from before the call ({a: b, b: a} swaps)."""
    targets = {t for t, _ in graph.updates}
    lines, writes = ["# updates, written into the caller's arrays once every result is computed"], []
    for j, (target, value) in enumerate(graph.updates):
        k = arg_nodes.index(target)
        if value == target:
            continue  # {x: x} leaves x as it is
        if graph.type(target).ndim == 0:
            lines.append(f"new{j} = v{value}" if graph.type(value).ndim == 0 else f"new{j} = v{value}[()]")
            writes.append(f"a{k}[()] = new{j}")
        elif graph[value].get("reuses") == target:
            lines.append(f"# a{k} already holds %{value}: the plan wrote it in place")
        else:
            source = f"v{value}.copy()" if _caller_root(graph, value) in targets else ctx.contiguous(value)
            lines.append(f"new{j} = {source}.reshape(-1)")
            if ctx.python:  # NumPy's copy; a Python loop over the elements would crawl
                writes.append(f"a{k}.reshape(-1)[:] = new{j}")
            else:
                writes += [f"dst = a{k}.reshape(-1)", "for i in range(dst.size):", f"    dst[i] = new{j}[i]"]
    return lines + writes


def _caller_root(graph, node):
    """The input whose memory node's array may be (through views), or None."""
    while OPS[graph.op(node)].view:
        node = graph.args(node)[0]
    return node if graph.op(node) == "input" else None


SHARED_ENOUGH = 0.5  # library kernels when distinct (text, argument layouts) are at most this share of the calls
PYTHON_INLINE = ("view", "constant", "expression")  # what a Python driver computes itself (NumPy views, scalars)
# Narrow scalars a kernel returns come back as Python numbers: a Python driver makes them NumPy scalars
# of their dtype again, or the next kernel would be compiled for float64 or int64.
NARROW_SCALARS = ("float32", "int32")


def library_text(ctx, step):
    """(the library kernel's text for step, its KernelContext, the argument layouts it is compiled for)."""
    node = step.node
    kctx = KernelContext(ctx, step.nodes)
    opdef = OPS[ctx.graph.op(node)]
    lines = opdef.emit(kctx, node) if opdef.emit else single_step_lines(kctx, node)
    if ctx.check_finite:
        lines += finite_check_lines(kctx, node)
    params = ", ".join(f"a{k}" for k in range(len(kctx.params)))
    results = ", ".join(kctx.local[n] for n in step.nodes)
    text = "\n".join([f"def kernel({params}):"] + ["    " + line for line in lines] + [f"    return {results}"])
    text = "\n\n\n".join([*kctx.functions.values(), text])
    layouts = tuple((ctx.type(p).dtype, ctx.type(p).ndim, ctx.layout(p)) for kind, p in kctx.params if kind == "node")
    return text, kctx, layouts


def worth_a_library(calls, kernels):
    """Library kernels pay a compile each per argument layouts (a fixed ~0.1-0.3 s of Numba's
    pipeline), one function a compile in all: kernels win when calls repeat (a deep model's layers, an
    unrolled loop) or are in the library already; a graph of distinct loops (W4) compiles faster as one
    function. calls: (text, parallel, layouts) per call; kernels: the distinct LibraryKernels."""
    distinct = set(calls)
    cached = sum(library.on_disk(k.key) for k in kernels)
    return bool(calls) and (len(distinct) <= SHARED_ENOUGH * len(calls) or cached >= len(kernels) / 2)


def launch_lines(ctx, step, kernels, calls, signatures):
    """The driver's call of the library kernel computing step's nodes. The kernel's text is written
    here; `kernels` maps each distinct (text, parallel) to its index j, bound as _kj in the driver;
    `calls` gets the call's (text, parallel, argument layouts), `signatures` its (j, argument types)."""
    text, kctx, layouts = library_text(ctx, step)
    j = kernels.setdefault((text, kctx.parallel), len(kernels))
    calls.append((text, kctx.parallel, layouts))
    signatures.setdefault((j, call_types(ctx, kctx)), None)
    # a static size goes as np.int64: a bare literal would be typed Literal[int](512), one compile per value
    args = ", ".join(ctx.var(p) if kind == "node" else ctx.size(p) if isinstance(p, Dim) else f"np.int64({p})"
                     for kind, p in kctx.params)
    lines = [f"{', '.join(ctx.var(n) for n in step.nodes)} = _k{j}({args})"]
    if ctx.python:
        lines += [f"{ctx.var(n)} = np.{ctx.type(n).dtype}({ctx.var(n)})" for n in step.nodes
                  if ctx.type(n).ndim == 0 and ctx.type(n).dtype in NARROW_SCALARS]
    return lines


def call_types(ctx, kctx):
    """A library kernel call's argument types as data: ("array", dtype, rank, layout), ("scalar", dtype),
    ("int64",) for sizes; a Python driver's kernels are compiled for them ahead of the first call."""
    types = []
    for kind, p in kctx.params:
        if kind == "size":
            types.append(("int64",))
        elif ctx.type(p).ndim == 0:
            types.append(("scalar", ctx.type(p).dtype))
        else:
            types.append(("array", ctx.type(p).dtype, ctx.type(p).ndim, ctx.layout(p)))
    return tuple(types)


def generate(graph, name="kernel"):
    """The driver module for a final graph, and the library kernels it calls; or, when its loop nests
    hardly repeat and the library has none of them (worth_a_library), one function computing it all.

    A driver calling library kernels is plain Python (a kernel call costs ~0.5-1 µs from Python; an
    njit driver's own compile grew to seconds with a deep model's hundreds of calls), except under
    check_finite, whose input checks are loops."""
    kernel, calls = _render(graph, name, "njit driver")
    if not worth_a_library(calls, kernel.library):
        return _render(graph, name, "one function")[0]
    return kernel if graph.options.get("check_finite") else _render(graph, name, "python driver")[0]


HELPER = "_helper"  # a helper function's name while it is written (Context.function names it by digest)
HELPER_DECORATOR = '@njit(error_model="numpy", nogil=True)'  # as the kernels are compiled (library.py)


def _render(graph, name, mode):
    """The module of `mode` ("njit driver", "one function", "python driver"), or for "helper" (a
    step Context.function calls: serial, no comments, no input checks) its helper functions and its text."""
    ctx = Context(graph)
    ctx.python = mode == "python driver"
    helper = mode == "helper"
    ctx.may_use_prange = ctx.may_use_prange and not helper  # called in a kernel's own loop
    updated = {target for target, _ in graph.updates}
    live = set(graph.inputs)
    for root in graph.roots():
        live |= nx.ancestors(graph.g, root) | {root}
    constants = [n for n in graph.order() if n in live and graph.op(n) == "constant"
                 and isinstance(graph.attrs(n)["value"], np.ndarray)]
    arg_nodes = list(graph.inputs) + constants
    if helper and constants:
        raise GraphcError(f"internal error: the step {graph.name} holds array constants; a helper function takes none")
    params = [f"a{k}" for k in range(len(arg_nodes))]
    scalar_args = {k for k, n in enumerate(graph.inputs) if graph.type(n).ndim == 0 and n not in updated}

    read_from = {}  # size -> the input axis it is read from, for messages
    for k, node in enumerate(graph.inputs):
        for axis, size in enumerate(graph.type(node).shape):
            if isinstance(size, Dim) and size not in ctx.size_vars:
                ctx.size_vars[size] = f"n{len(ctx.size_vars)}"
                ctx.size_lines.append(f"{ctx.size_vars[size]} = a{k}.shape[{axis}]")
                read_from[size] = f"{graph.attrs(node)['name']}.shape[{axis}]"
    ctx.size_lines += size_checks(ctx, graph, read_from)  # (which may add size lines of its own)
    kernels = {}  # (library kernel text, parallel) -> its index j, bound as _kj
    ctx.size_lines[:0] = overlap_checks(graph, arg_nodes, kernels)
    body = []
    for k, node in enumerate(arg_nodes):
        read = f"a{k}[()]" if graph.type(node).ndim == 0 and k not in scalar_args else f"a{k}"
        body.append(f"v{node} = {read}")
    if ctx.check_finite and not helper:  # a helper's operands were checked where they were computed
        body += input_finite_lines(ctx, graph)
    from graphc.printer import _comment, _node_text  # one line of IR per node, as the dump shows it
    schedule = getattr(graph, "schedule", None) or build_schedule(graph)
    calls, signatures = [], {}
    for step in schedule.steps:
        node = step.node
        if node not in live or node in arg_nodes:
            continue
        if ctx.python and not isinstance(step, Launch) and step.why not in PYTHON_INLINE:
            step = Launch(step.nodes)  # scalar arithmetic and tiny loops are kernels too: Python has no loops of ours
        text = _node_text(graph, node, ctx.names, lambda v: ctx.size(v) if isinstance(v, Dim) else str(v)).strip()
        where = _comment(graph, node)
        if not helper:  # a helper's text is the same for a step written on any line
            body.append(comment(text + (f"  ({where})" if where else "")))
        if isinstance(step, Launch) and mode not in ("one function", "helper"):
            body.extend(launch_lines(ctx, step, kernels, calls, signatures))
        else:
            opdef = OPS[graph.op(node)]
            body.extend(opdef.emit(ctx, node) if opdef.emit else single_step_lines(ctx, node))
            if ctx.check_finite:
                body.extend(finite_check_lines(ctx, node))
        if not helper:
            body.extend(f"# %{other} was stored by the same loop" for other in step.nodes[1:])
    planned = {n for n in live if "reuses" in graph[n]}
    assert ctx.reused == planned, f"the memory plan's reuse of {sorted(planned - ctx.reused)} was not honoured"
    results = []
    for k, out in enumerate(graph.outputs):
        # a helper's results are carried into its next call: none may be another's array either
        aliased = _may_alias_caller(graph.op(out)) or (helper and out in graph.outputs[:k])
        results.append(f"v{out}.copy()" if aliased and graph.type(out).ndim > 0 else f"v{out}")
    if graph.updates:
        body.append(f"results = ({', '.join(results)}{',' if results else ''})")
        body += update_lines(ctx, graph, arg_nodes)
        body.append("return results")
    else:
        body.append(f"return ({', '.join(results)}{',' if results else ''})")
    if helper:
        lines = [HELPER_DECORATOR, f"def {name}({', '.join(params)}):"] + ["    " + line for line in ctx.size_lines + body]
        return ctx.functions, "\n".join(lines)
    if (OVERLAP_KERNEL, False) in kernels:
        signatures[(kernels[OVERLAP_KERNEL, False], (("array", "int64", 2, "C"), ("int64",)))] = None
    kernel_list = [library.LibraryKernel.of(library.module_source(text), parallel) for text, parallel in kernels]
    prelude = PYTHON_PRELUDE if ctx.python else PRELUDE
    lines = [prelude + "from graphc.runtime.library import kernel as _library_kernel", ""]
    lines += [f"_k{j} = _library_kernel({k.key!r})" for j, k in enumerate(kernel_list)]
    assert not (ctx.python and ctx.functions), "a Python driver calls no helper function (a loop is a kernel)"
    lines += ["", "", *[f + "\n\n" for f in ctx.functions.values()], f"def {name}({', '.join(params)}):"]
    lines += ["    " + line for line in ctx.size_lines + body]
    return Kernel("\n".join(lines) + "\n", name, arg_nodes, scalar_args, kernel_list,
                  parallel=ctx.parallel or any(k.parallel for k in kernel_list),
                  blas=any(OPS[graph.op(n)].threaded for n in live), python=ctx.python,
                  signatures=[[j, list(types)] for j, types in signatures]), calls
