"""Values that enter a graph: inputs and constants."""
import numpy as np

from .registry import OpDef, register


def _no_infer(types, **attrs):
    raise AssertionError("sources are typed when declared")


def _emit_constant(ctx, node):
    value = ctx.attrs(node)["value"]
    if isinstance(value, np.ndarray):
        return [f"{ctx.var(node)} = {ctx.constant_array(node)}"]
    return [f"{ctx.var(node)} = {ctx.const(value, ctx.type(node).dtype)}"]


def _format_constant(attrs, dim_text):
    value = attrs["value"]
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=6, separator=",").replace("\n", "") if value.size <= 6 else f"array#{value.size}"
    return repr(value)


register(OpDef("input", _no_infer, numpy=None, kind="source", emit=lambda ctx, node: [],
               format_attrs=lambda attrs, dim_text: attrs["name"]))
register(OpDef("constant", _no_infer, numpy=lambda value: value, kind="source", emit=_emit_constant,
               differentiable=False, format_attrs=_format_constant))
