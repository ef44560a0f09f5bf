"""Ops that passes create: the softmax cross-entropy gate, and `fused` (a group of elementwise ops).

softmax_cross_entropy(logits[N,C], indices[N,1]) is mean_i(-log_softmax(logits)[i, indices[i]]), the
stabilize pass's replacement for the naive formula; its backward is (softmax - onehot) * g / N.
Labels must lie in [0, C) (as one_hot needs for the backward).

`fused` keeps its members as a `Body` (a straight-line program over its operands), so its shape
rule, NumPy reference and printing all derive from the members' own registry entries; codegen
compiles it to one loop (see runtime/codegen.py, fused_lines). A loop can also store intermediate
steps its group's other readers need: `output` picks the step a node yields.
"""
from dataclasses import dataclass, field

import numpy as np

from .. import functions as F
from ..errors import DTypeError, GradientError, ShapeError
from ..types import TensorType, is_float, same_shape
from .gates import _log_softmax_numpy
from .reduce import REDUCERS
from .registry import OPS, OpDef, register


# softmax_cross_entropy
def _cross_entropy_infer(types):
    logits, indices = types
    if not is_float(logits.dtype):
        raise DTypeError("softmax_cross_entropy needs float logits")
    if indices.dtype not in ("int32", "int64"):
        raise DTypeError("softmax_cross_entropy needs int32 or int64 labels")
    if logits.ndim != 2 or indices.ndim != 2 or not same_shape(indices.shape, (logits.shape[0], 1)):
        raise ShapeError("softmax_cross_entropy takes logits [N,C] and indices [N,1]")
    return TensorType((), logits.dtype)


def _cross_entropy_numpy(logits, indices):
    return -np.mean(np.take_along_axis(_log_softmax_numpy(logits, 1), indices, 1))


def _cross_entropy_vjp(g, out, logits, indices):
    """(softmax - onehot) * g / N, the one-hot part scattered by the labels (so C may be a call-time size)."""
    scale = g / F.apply("size_of", logits, axes=(0,))
    picked = F.apply("scatter_add_along_axis", F.broadcast_to(scale, indices.shape), indices, axis=1, shape=logits.shape)
    return F.softmax(logits, 1) * scale - picked, None


def _emit_cross_entropy(ctx, node):
    """Per row: the max, the sum of shifted exps, then top + log(total) - picked; the mean in float64."""
    z, idx = ctx.args(node)
    n, c = ctx.dims(z)
    zv, dtype = ctx.var(z), ctx.type(node).dtype
    zero, lowest = ctx.const(0, dtype), ctx.const(float("-inf"), dtype)
    return ["acc = 0.0",
            f"for i in range({n}):",
            f"    top = {lowest}",
            f"    for j in range({c}):",
            f"        top = max(top, {zv}[i, j])",
            f"    total = {zero}",
            f"    for j in range({c}):",
            f"        total += exp({zv}[i, j] - top)",
            f"    k = {ctx.var(idx)}[i, 0]",
            *ctx.index_error(node, "    ", f"k < 0 or k >= {c}", "a label is outside [0, classes)"),
            f"    acc += top + log(total) - {zv}[i, k]",
            f"{ctx.var(node)} = np.{dtype}(acc / {n})"]


register(OpDef("softmax_cross_entropy", _cross_entropy_infer, _cross_entropy_numpy,
               vjp=_cross_entropy_vjp, emit=_emit_cross_entropy, cost=16, checks=True))


# fused
@dataclass(frozen=True)
class Step:
    """One member of a fused group: op applied to ("in", k) operands, ("step", j) earlier steps or
    ("const", value, dtype) literals."""
    op: str
    args: tuple
    attrs: tuple  # sorted (name, value) pairs
    type: TensorType
    where: str = field(default=None, compare=False)  # "forward, file:line" of the member, for messages


@dataclass(frozen=True)
class Body:
    """The members of a fused node in order; the last step is its value (it may be a reduction)."""
    steps: tuple

    def text(self, output=-1):
        texts = []
        for step in self.steps:
            texts.append(_step_text(step, [_arg_text(a, texts) for a in step.args]))
        return texts[output][0]


def yields_reduction(attrs):
    """Whether a fused node's value (its `output` step, else its last) is a reduction."""
    return attrs["body"].steps[attrs.get("output", -1)].op in REDUCERS


INFIX = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("/", 2), "pow": ("**", 4)}
ATOM = 9


def _arg_text(arg, texts):
    if arg[0] == "in":
        return f"i{arg[1]}", ATOM
    if arg[0] == "step":
        return texts[arg[1]]
    value = arg[1]
    return (f"{value:g}" if isinstance(value, float) else str(value)), (ATOM if value >= 0 else 3)


def _wrap(arg, precedence, strict=False):
    text, p = arg
    return f"({text})" if p < precedence or (strict and p == precedence) else text


def _step_text(step, args):
    if step.op in INFIX:
        symbol, p = INFIX[step.op]
        return f"{_wrap(args[0], p)}{symbol}{_wrap(args[1], p, strict=True)}", p
    if step.op == "neg":
        return f"-{_wrap(args[0], 3)}", 3
    if step.op == "broadcast_to":
        return args[0]
    if step.op in REDUCERS:
        axes = dict(step.attrs)["axes"]
        return f"{step.op}[{','.join(map(str, axes))}]({args[0][0]})", ATOM
    return f"{step.op}({', '.join(a[0] for a in args)})", ATOM


def _operand_types(step, types, values):
    return [types[a[1]] if a[0] == "in" else values[a[1]] if a[0] == "step" else TensorType((), a[2])
            for a in step.args]


def _fused_infer(types, body, output=-1):
    values = []
    for step in body.steps:
        values.append(OPS[step.op].infer(_operand_types(step, types, values), **dict(step.attrs)))
    return values[output]


def _fused_numpy(*arrays, body, output=-1):
    values = []
    for step in body.steps[:len(body.steps) if output == -1 else output + 1]:
        operands = [arrays[a[1]] if a[0] == "in" else values[a[1]] if a[0] == "step" else np.asarray(a[1], a[2])
                    for a in step.args]
        values.append(np.asarray(OPS[step.op].numpy(*operands, **dict(step.attrs))).astype(step.type.dtype, copy=False))
    return values[-1]


def _fused_vjp(g, out, *inputs, body, output=-1):
    raise GradientError("fused nodes are formed after autodiff: take gradients before fusion")


# A group's loop may store more than its last step: each stored step is a node of its own, with the
# same operands and body and `output` naming the step; nodes sharing a "loop" tag are computed by one
# loop (the schedule keeps them adjacent, see Graph.order).
register(OpDef("fused", _fused_infer, _fused_numpy, vjp=_fused_vjp,
               emit=lambda ctx, node: ctx.fused(node, ctx.attrs(node)["body"].steps), fresh=True,
               format_attrs=lambda attrs, dim_text: "{" + attrs["body"].text(attrs.get("output", -1)) + "}"))
