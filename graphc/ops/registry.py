"""The op registry: one `OpDef` per op holds everything about it."""
from dataclasses import dataclass, field
from typing import Callable, Optional

OPS = {}


@dataclass(frozen=True)
class OpDef:
    """Everything about one op.

    infer(types, **attrs) -> TensorType: the shape/dtype rule; raises ShapeError/DTypeError with a detail.
    numpy(*arrays, **attrs): the reference implementation (the interpreter's oracle).
    vjp(g, out, *inputs, **attrs) -> tuple of Tensor | None: the gradient rule, written with graphc's
        own functions; `out` is the op's output, so gates reuse it; None means no gradient flows.
    scalar(s) -> str: a scalar expression over `s.args` (codegen builds loops from it): every
        elementwise op has one; any op with one can be a step of a fused loop (broadcast_to too).
    emit(ctx, node) -> list[str]: the kernel lines computing the node, for ops that are not one fused
        step (an op without it is: elementwise ops, sum, mean, max).
    kind: "elementwise", "reduce", "source" (inputs, constants) or "other".
    differentiable: False for ops whose output carries no gradient (comparisons, one_hot, casts to int).
    view: the result may be a view of the first operand's array (no copy): memory planning gives it
        that operand's buffer, and codegen copies it before returning it to the caller.
    fresh: the kernel code always returns a new array (elementwise and reduce ops do by their kind);
        memory planning assumes any other op's result may alias its operands.
    receives: the kernel code writes its result into the array `ctx.empty(node)` gives (elementwise
        ops do by their kind), so memory planning may hand it a dead buffer of its type.
    threaded: its kernel code runs on threads of its own (BLAS): the kernel's other loops stay serial,
        as Numba's parallel threads and BLAS's compete for the cores (W5: 1.6 ms a call became 16 ms).
    commutative: the two operands may be swapped (canonicalization, CSE and rewrite patterns use it).
    checks: its kernel code checks values at run time and may raise (an index out of range):
        memory planning writes no update into a caller's array before it, so a call that raises
        leaves the caller's arrays as they were (ctx.index_error refuses an op without it).
    joint: its nodes with the same operands and attributes but their `output` are results of one
        computation (a scan's final carry and stacked ys): one loop computes them, and autodiff calls
        the vjp once for the group (graphc/schedule.py joint_groups).
    inline: its kernel code is an expression or a call, not a loop: it is written into the graph's
        driver, never made a library kernel of its own (graphc/schedule.py).
    numpy_exact: the NumPy reference gives the kernel's bits for every input (IEEE-exact arithmetic,
        comparisons, data movement), so constant folding may evaluate it at compile time.
    """

    name: str
    infer: Callable
    numpy: Callable
    vjp: Optional[Callable] = None
    scalar: Optional[Callable] = None
    emit: Optional[Callable] = None
    kind: str = "other"
    differentiable: bool = True
    format_attrs: Callable = field(default=None)
    cost: int = 1  # rough per-element cost; fusion recomputes only cheap ops
    view: bool = False
    fresh: bool = False
    receives: bool = False
    commutative: bool = False
    numpy_exact: bool = False
    threaded: bool = False
    checks: bool = False
    inline: bool = False
    joint: bool = False

    def __post_init__(self):
        if self.format_attrs is None:
            object.__setattr__(self, "format_attrs", default_format_attrs)


def default_format_attrs(attrs, dim_text):
    def text(value):
        if isinstance(value, tuple):
            return "(" + ",".join(text(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        return dim_text(value)

    return ", ".join(f"{k}={text(v)}" for k, v in sorted(attrs.items()))


def register(opdef):
    if opdef.name in OPS:
        raise ValueError(f"op {opdef.name!r} registered twice")
    OPS[opdef.name] = opdef
    return opdef


def get(name):
    return OPS[name]
