"""Loop nests for the kernels: one fused loop per elementwise body (scalar intermediates, a last
reduction accumulated in place), flat over C-ordered memory or one loop per axis with NumPy
broadcasting, in parallel chunks above a size. Codegen's contexts (runtime/codegen.py) name what
these lines read and write."""
from graphc.ops import OPS
from graphc.ops.fused import Step
from graphc.ops.reduce import REDUCERS
from graphc.printer import provenance
from graphc.types import Dim, resolve, same_shape

# A flat loop runs in parallel (chunks over threads, see scalar_math.parallel_chunks) when it has at
# least this many elements known at compile time, or when its whole size is given at call time (the
# chunking then keeps small calls on one chunk). Loops over a call-time batch times fixed sizes (an
# MLP's layers) stay serial: those kernels keep their ahead-of-time warm start (runtime/aot.py).
PARALLEL_MIN_ELEMENTS = 1 << 20


class ScalarSpec:
    """What an elementwise op's scalar expression sees."""

    def __init__(self, args, dtype, const):
        self.args, self.dtype, self.c = args, dtype, lambda v: const(v, dtype)


def single_step_lines(ctx, node):
    """An op without kernel code of its own (elementwise ops, sum, mean, max) is a fused body of one step,
    so a lone op gets the same loop as a fused one: vectorized, parallel above the threshold."""
    step = Step(ctx.graph.op(node), tuple(("in", k) for k in range(len(ctx.args(node)))),
                tuple(sorted(ctx.attrs(node).items())), ctx.type(node), provenance(ctx.graph, node))
    return fused_lines(ctx, node, (step,))


def fused_lines(ctx, node, steps, extras=(), output=-1):
    """One loop computing every step per element: intermediates are scalars, never arrays.

    The steps are elementwise ops over the node's operands ("in", k), earlier steps and literals; a
    last reduction step accumulates over the loop instead of storing (in the order and precision of
    the reduce ops' own kernels, so fused and unfused results agree). extras: (node, step) pairs the
    loop also stores, each into that node's array; output: the step stored into node's (the last).
    """
    inputs, last = ctx.args(node), steps[-1]
    reducer = REDUCERS.get(last.op)
    space = _operand_type(ctx, inputs, steps, last.args[0]).shape if reducer else ctx.type(node).shape
    arrays = [a for a in dict.fromkeys(inputs) if ctx.type(a).ndim > 0]
    flat_ok = not reducer or ctx.type(node).ndim == 0  # a reduction into an array addresses kept axes
    stored = [e for e, _ in extras]
    setup, head, ind, element, names = loop_lines(ctx, node, space, arrays, store=not reducer, flat_ok=flat_ok,
                                                  extras=stored)
    local = {a: f"x{k}" for k, a in enumerate(arrays)}
    loads = [f"{ind}{local[a]} = {element(a)}" for a in arrays]
    values = [local.get(a, ctx.var(a)) for a in inputs]
    body, temps = [], []
    for j, step in enumerate(steps[:-1] if reducer else steps):
        args = [values[a[1]] if a[0] == "in" else temps[a[1]] if a[0] == "step" else ctx.const(a[1], a[2])
                for a in step.args]
        temps.append(f"{ctx.var(node)}_t{j}")
        body.append(f"{ind}{temps[-1]} = {OPS[step.op].scalar(ScalarSpec(args, step.type.dtype, ctx.const))}")
    body += [f"{ind}{element(e)} = {temps[j]}" for e, j in extras]
    checked = [(j, steps[j], t) for j, t in enumerate(temps) if ctx.check_finite and steps[j].type.dtype.startswith("float")]
    if not space and not reducer:
        lines = [line.strip() for line in body[:-1]] + [f"{ctx.var(node)} = {body[-1].split(' = ', 1)[1]}"]
        value = {temps[-1]: ctx.var(node)}  # the last step's value is the node's, under its name
        return lines + [line for j, step, t in checked for line in
                        ctx.raise_if(f"{value.get(t, t)} - {value.get(t, t)} != 0", finite_message(ctx, node, j, step))]
    flags = [f"{ctx.var(node)}_finite{j}" for j, _, _ in checked]  # NaN once any element of step j was NaN or Inf
    setup = setup + [f"{flag} = 0.0" for flag in flags]
    body += [f"{ind}{flag} = accumulate({flag}, np.float64({t} - {t}))" for flag, (_, _, t) in zip(flags, checked)]
    after = [line for flag, (j, step, _) in zip(flags, checked)
             for line in ctx.raise_if(f"{flag} != 0.0", finite_message(ctx, node, j, step))]
    if reducer:
        a = last.args[0]
        value = values[a[1]] if a[0] == "in" else temps[a[1]]
        return _reduce_lines(ctx, node, last, reducer, space, setup, head, ind, loads + body, value, names) + after
    return setup + head + loads + body + [f"{ind}{element(node)} = {temps[output]}"] + after


def loop_lines(ctx, node, space, arrays, store, flat_ok=True, extras=()):
    """The loop over `space` (one function, so parallel and vectorized variants change one place).

    Flat (one index i over C-ordered memory) when every array operand has the space's shape and is
    C-ordered (and flat_ok), else one loop per axis with NumPy broadcasting. store: the node's output
    is allocated here with the space's shape. Returns (setup, head, indent, element(node) -> text, index names).
    """
    dims = [ctx.size(s) for s in space]
    stored = ([node] if store else []) + list(extras)
    setup = [f"{ctx.var(n)} = {ctx.empty(n)}" for n in stored] if space else []
    if not space:
        return setup, [], "", ctx.var, []
    flat = flat_ok and all(same_shape(ctx.type(a).shape, space) and ctx.layout(a) == "C" for a in arrays)
    if flat:
        viewed = arrays + stored
        view = ctx.var if len(space) == 1 else (lambda n: f"{ctx.var(n)}_flat")
        if len(space) > 1:
            setup += [f"{ctx.var(n)}_flat = {ctx.var(n)}.reshape(-1)" for n in viewed]
        size = " * ".join(f"({d})" if not d.isidentifier() and not d.isdigit() else d for d in dims)
        if ctx.may_use_prange and runs_in_parallel(space):
            ctx.parallel = True
            return setup, parallel_head(ctx, node, size, viewed, view), "        ", (lambda n: f"{ctx.var(n)}_c[i]"), None
        return setup, [f"for i in range({size}):"], "    ", (lambda n: f"{view(n)}[i]"), None
    names = [f"i{k}" for k in range(len(space))]
    head, ind = ctx.nest(dims, names)
    return setup, head, ind, (lambda n: ctx.at_shape(n, space, names) if n not in stored else f"{ctx.var(n)}[{', '.join(names)}]"), names


def parallel_head(ctx, node, size, viewed, view):
    """A flat loop split into chunks run by prange; each chunk loops over slices of the arrays (a loop
    over a slice vectorizes; one indexing the whole array between computed bounds did not).
    The first two lines go before the loop, the third is the prange header."""
    chunks, step = f"{ctx.var(node)}_chunks", f"{ctx.var(node)}_step"
    return ([f"{chunks} = parallel_chunks({size})", f"{step} = ({size} + {chunks} - 1) // {chunks}",
             f"for c in prange({chunks}):", f"    lo = c * {step}", f"    hi = min(lo + {step}, {size})"]
            + [f"    {ctx.var(n)}_c = {view(n)}[lo:hi]" for n in viewed] + ["    for i in range(hi - lo):"])


def runs_in_parallel(space):
    static = 1
    for size in space:
        static *= 1 if isinstance(resolve(size), Dim) else size
    return static >= PARALLEL_MIN_ELEMENTS or all(isinstance(resolve(size), Dim) for size in space)


def _reduce_lines(ctx, node, step, reducer, space, setup, head, ind, body, value, names):
    """Accumulate `value` over the loop: into a scalar (in float64 for float32) or into the kept positions.

    A float sum into a scalar adds with scalar_math.accumulate (reassociable), so the loop vectorizes;
    a parallel one sums per chunk, then the chunks' partial sums in order. Both change the order of
    the additions (a value change within rounding, the same for any thread count).
    """
    init, combine, averaged = reducer
    attrs, dtype, out = dict(step.attrs), ctx.type(node).dtype, ctx.var(node)
    dims = [ctx.size(s) for s in space]
    count = "(" + (" * ".join(dims[a] for a in attrs["axes"]) or "1") + ")"
    if ctx.type(node).ndim == 0:
        acc_dtype = "float64" if dtype == "float32" else dtype
        if step.op in ("sum", "mean") and acc_dtype.startswith("float"):
            combine = lambda acc, v: f"accumulate({acc}, np.{acc_dtype}({v}))"  # noqa: E731
        total = f"acc / {count}" if averaged else "acc"
        start = ctx.const(init(dtype), acc_dtype)
        if ctx.parallel:  # loop_lines chose the parallel loop (a kernel has one loop nest)
            return _parallel_scalar_reduce(ctx, node, setup, head, ind, body, value, combine, start, acc_dtype) + \
                [f"{out} = np.{dtype}({total})"]
        return (setup + [f"acc = {start}"] + head + body
                + [f"{ind}acc = {combine('acc', value)}", f"{out} = np.{dtype}({total})"])
    kept = [("0" if attrs["keepdims"] else None) if k in attrs["axes"] else names[k] for k in range(len(space))]
    target = f"{out}[{', '.join(i for i in kept if i is not None)}]"
    lines = ctx.full(node, ctx.const(init(dtype), dtype))
    lines += setup + head + body + [f"{ind}{target} = {combine(target, value)}"]
    return lines + ([f"{out} /= {count}"] if averaged else [])


def _parallel_scalar_reduce(ctx, node, setup, head, ind, body, value, combine, start, acc_dtype):
    """Per-chunk partial sums in parallel, then their total in chunk order."""
    chunks, partial, acc = f"{ctx.var(node)}_chunks", f"{ctx.var(node)}_partial", f"{ctx.var(node)}_acc"
    return (setup + head[:2] + [f"{partial} = empty({chunks}, np.{acc_dtype})", head[2], f"    {acc} = {start}"]
            + head[3:] + body + [f"{ind}{acc} = {combine(acc, value)}", f"    {partial}[c] = {acc}",
                      f"acc = {start}", f"for c in range({chunks}):", f"    acc = {combine('acc', f'{partial}[c]')}"])


def _operand_type(ctx, inputs, steps, arg):
    return ctx.type(inputs[arg[1]]) if arg[0] == "in" else steps[arg[1]].type


def finite_message(ctx, node, step_index=None, step=None):
    """check_finite's message for a node (or one step of a fused node's loop): the op, the type,
    forward or backward, and the user's line."""
    graph = ctx.graph
    if step is None:
        what, kind, where = f"{graph.op(node)} (%{node})", graph.type(node), provenance(graph, node)
    else:
        loop = f"%{node} = fused{{{graph.attrs(node)['body'].text()}}}" if graph.op(node) == "fused" else f"%{node}"
        what, kind, where = f"{step.op} (step {step_index} of {loop})", step.type, step.where or provenance(graph, node)
    return f"check_finite: {what} produced NaN or Inf: {kind.text(ctx.names)}, {where}"
