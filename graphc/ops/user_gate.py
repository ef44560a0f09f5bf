"""gate: a user-defined gate (gc.gate), one node whose body and gradient rules are straight-line
programs of graphc ops (fused.Body). It stays one node through the passes before autodiff (dumps
show gate[name]); its gradient is the user's rule, replayed on the node's operands; the
inline_gates pass then replaces it by its body, which fuses like any elementwise code.

attrs: name, body (the forward over ("in", k) operands), grads (one Body or None per operand: the
rule's gradient for it, over ("in", 0) the upstream gradient, ("in", 1) the gate's value, ("in", 2 + k)
operand k).
"""
import numpy as np

from ..types import transaction
from .registry import OPS, OpDef, register


def replay(body, operands, make_const, make_step):
    """The body's value computed by make_step(op, operands, attrs) over `operands` (each step's
    operands: earlier values, the given operands, constants made by make_const(value, dtype))."""
    values = []
    for step in body.steps:
        args = [operands[a[1]] if a[0] == "in" else values[a[1]] if a[0] == "step" else make_const(a[1], a[2])
                for a in step.args]
        values.append(make_step(step.op, args, dict(step.attrs), step))
    return values[-1]


def _infer(types, name, body, grads):
    def step_type(op, args, attrs, step):
        return OPS[op].infer(args, **attrs)

    from ..types import TensorType
    with transaction():
        return replay(body, types, lambda value, dtype: TensorType((), dtype), step_type)


def _numpy(*arrays, name, body, grads):
    def evaluate(op, args, attrs, step):
        return np.asarray(OPS[op].numpy(*args, **attrs)).astype(step.type.dtype, copy=False)
    return replay(body, arrays, lambda value, dtype: np.asarray(value, dtype), evaluate)


def _vjp(g, out, *inputs, name, body, grads):
    from ..tensor import apply, constant

    def step(op, args, attrs, _):
        return apply(op, *args, **attrs)
    return tuple(None if rule is None else replay(rule, (g, out, *inputs), constant, step) for rule in grads)


def _format(attrs, dim_text):
    return attrs["name"]


register(OpDef("gate", _infer, _numpy, vjp=_vjp, format_attrs=_format, cost=8))
