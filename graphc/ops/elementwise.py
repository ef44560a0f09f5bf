"""Elementwise ops: NumPy broadcasting; codegen builds loops from each op's scalar expression.

In a scalar expression, `s.args` are operand names, `s.c(v)` a literal of the output dtype,
exp/log/tanh/sqrt/log1p/expm1 name the kernel's scalar math (see runtime/scalar_math.py), and np.sin
and friends NumPy's scalar functions (Numba compiles them to libm calls).
"""
import numpy as np

from .. import functions as F
from ..errors import DTypeError, ShapeError
from ..types import TensorType, broadcast_shapes, is_float, result_dtype
from .registry import OpDef, register


def broadcast_type(types, dtype):
    shape = broadcast_shapes(*[t.shape for t in types])
    if shape is None:
        raise ShapeError("shapes don't broadcast")
    return TensorType(shape, dtype)


def arithmetic(types):
    if any(t.dtype == "bool" for t in types):
        raise DTypeError("arithmetic on bool tensors; cast them first")
    return broadcast_type(types, result_dtype(*[t.dtype for t in types]))


def floating(types):
    dtype = result_dtype(*[t.dtype for t in types])
    if not is_float(dtype):
        dtype = "float64"
    return broadcast_type(types, dtype)


def float_function(types):
    """exp, log, sqrt, tanh, sigmoid, softplus: a float result, float64 for ints. NumPy gives float16 for
    bool, which graphc lacks: the public functions cast bool to float32 first, so the rule refuses bool
    (the kernel's scalar math takes no bool)."""
    if types[0].dtype == "bool":
        raise DTypeError("a bool operand: cast it to a float dtype first (gc.exp and friends cast it to float32)")
    return floating(types)


def _quiet(numpy):
    """The reference follows IEEE like the kernel (inf - inf is NaN, 0 * inf too, x / 0 is inf), without warnings."""
    def reference(*arrays, **attrs):
        with np.errstate(all="ignore"):
            return numpy(*arrays)
    return reference


def elementwise(name, infer, numpy, scalar, vjp=None, differentiable=True, cost=1, commutative=False,
                numpy_exact=False):
    register(OpDef(name, lambda types, **attrs: infer(types), _quiet(numpy), vjp=vjp, scalar=scalar,
                   kind="elementwise", differentiable=differentiable, cost=cost, commutative=commutative,
                   numpy_exact=numpy_exact))


# arithmetic: add distributes, mul swaps
elementwise("add", arithmetic, np.add, lambda s: f"{s.args[0]} + {s.args[1]}",
            vjp=lambda g, out, a, b: (g, g), commutative=True, numpy_exact=True)
elementwise("sub", arithmetic, np.subtract, lambda s: f"{s.args[0]} - {s.args[1]}",
            vjp=lambda g, out, a, b: (g, -g), numpy_exact=True)
elementwise("mul", arithmetic, np.multiply, lambda s: f"{s.args[0]} * {s.args[1]}",
            vjp=lambda g, out, a, b: (g * b, g * a), commutative=True, numpy_exact=True)
elementwise("div", floating, np.true_divide, lambda s: f"{s.args[0]} / {s.args[1]}",
            vjp=lambda g, out, a, b: (g / b, -(g * out) / b), numpy_exact=True)


def _pow_vjp(g, out, a, b):
    """d/da a**b = b a**(b-1), 0 where b == 0 (a**0 is 1 everywhere: without the where, 0 * 0**-1 is NaN at
    a == 0; the exponent b - 1 is replaced there too, so no infinity reaches a second-order gradient);
    d/db a**b = a**b log(a), taken as 0 where a == 0 (a**b is flat there for b > 0, as in JAX)."""
    flat = b == 0
    return (F.where(flat, 0, g * b * a ** F.where(flat, 1, b - 1)),
            F.where(a == 0, 0, g * out * F.log(a)))


elementwise("pow", arithmetic, np.power, lambda s: f"{s.args[0]} ** {s.args[1]}", vjp=_pow_vjp, cost=8)
elementwise("neg", arithmetic, np.negative, lambda s: f"-{s.args[0]}",
            vjp=lambda g, out, a: (-g,), numpy_exact=True)

# transcendental and friends: their rules reuse the output where they can
elementwise("exp", float_function, np.exp, lambda s: f"exp({s.args[0]})",
            vjp=lambda g, out, a: (g * out,), cost=8)
elementwise("log", float_function, np.log, lambda s: f"log({s.args[0]})",
            vjp=lambda g, out, a: (g / a,), cost=8)
elementwise("sqrt", float_function, np.sqrt, lambda s: f"sqrt({s.args[0]})",
            vjp=lambda g, out, a: (g * 0.5 / out,), cost=4, numpy_exact=True)
elementwise("abs", arithmetic, np.abs, lambda s: f"abs({s.args[0]})",
            vjp=lambda g, out, a: (g * F.sign(a),), numpy_exact=True)
elementwise("sign", arithmetic, np.sign,
            lambda s: f"({s.c(1)} if {s.args[0]} > 0 else ({s.c(-1)} if {s.args[0]} < 0 else {s.args[0]} * {s.c(0)}))",
            vjp=lambda g, out, a: (None,), numpy_exact=True)
elementwise("tanh", float_function, np.tanh, lambda s: f"tanh({s.args[0]})",
            vjp=lambda g, out, a: (g * (1 - out * out),), cost=8)
elementwise("sigmoid", float_function, lambda x: 1 / (1 + np.exp(-x)),
            lambda s: f"{s.c(1)} / ({s.c(1)} + exp(-{s.args[0]}))",
            vjp=lambda g, out, a: (g * out * (1 - out),), cost=8)
elementwise("softplus", float_function, lambda x: np.logaddexp(0, x).astype(np.result_type(x, np.float32)),
            lambda s: f"(log1p(exp(-abs({s.args[0]}))) + ({s.args[0]} if {s.args[0]} > 0 else {s.c(0)}))",
            vjp=lambda g, out, a: (g * F.sigmoid(a),), cost=16)
# relu routes: the gradient at exactly 0 is 0; NaN passes through
elementwise("relu", arithmetic, lambda x: np.maximum(x, np.zeros((), x.dtype)),
            lambda s: f"({s.args[0]} if not ({s.args[0]} <= 0) else {s.c(0)})",
            vjp=lambda g, out, a: (F.where(a > 0, g, 0),), numpy_exact=True)
# maximum/minimum route; at ties each operand gets half; NaN propagates as in NumPy
elementwise("maximum", arithmetic, np.maximum,
            lambda s: f"({s.args[0]} if ({s.args[0]} >= {s.args[1]} or {s.args[0]} != {s.args[0]}) else {s.args[1]})",
            vjp=lambda g, out, a, b: (F.where(a > b, g, F.where(a == b, g * 0.5, 0)),
                                      F.where(b > a, g, F.where(a == b, g * 0.5, 0))), commutative=True,
            numpy_exact=True)
elementwise("minimum", arithmetic, np.minimum,
            lambda s: f"({s.args[0]} if ({s.args[0]} <= {s.args[1]} or {s.args[0]} != {s.args[0]}) else {s.args[1]})",
            vjp=lambda g, out, a, b: (F.where(a < b, g, F.where(a == b, g * 0.5, 0)),
                                      F.where(b < a, g, F.where(a == b, g * 0.5, 0))), commutative=True,
            numpy_exact=True)


def _where_infer(types):
    if types[0].dtype != "bool":
        raise DTypeError("the condition of where must be bool")
    if types[1].dtype != types[2].dtype:
        dtype = result_dtype(types[1].dtype, types[2].dtype)
    else:
        dtype = types[1].dtype
    return broadcast_type(types, dtype)


elementwise("where", _where_infer, np.where, lambda s: f"({s.args[1]} if {s.args[0]} else {s.args[2]})",
            vjp=lambda g, out, c, a, b: (None, F.where(c, g, 0), F.where(c, 0, g)), numpy_exact=True)


def _clip_vjp(g, out, x, lo, hi):
    """NumPy's clip is minimum(maximum(x, lo), hi): the gradient goes to whichever of x, lo, hi that is."""
    above = F.where(x < lo, lo, x) > hi
    return (F.where(above, 0, F.where(x < lo, 0, g)), F.where(above, 0, F.where(x < lo, g, 0)), F.where(above, g, 0))


# clip routes the gradient to x inside [lo, hi] (ends included), to lo below and to hi above
elementwise("clip", arithmetic, lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
            lambda s: f"min(max({s.args[0]}, {s.args[1]}), {s.args[2]})", vjp=_clip_vjp, numpy_exact=True)


# more float functions; logs and exponentials near 0 keep their precision (log1p(1e-17) is 1e-17)
elementwise("log1p", float_function, np.log1p, lambda s: f"log1p({s.args[0]})",
            vjp=lambda g, out, a: (g / (1 + a),), cost=8)
elementwise("expm1", float_function, np.expm1, lambda s: f"expm1({s.args[0]})",
            vjp=lambda g, out, a: (g * (out + 1),), cost=8)


def libm(name, vjp):
    """A float function the kernel computes with NumPy's scalar function of that name (a libm call in
    Numba, so its loop does not vectorize as exp's and log's do)."""
    numpy = getattr(np, name)
    elementwise(name, float_function, numpy, lambda s: f"np.{name}({s.args[0]})", vjp=vjp, cost=8)


libm("sin", lambda g, out, a: (g * F.cos(a),))
libm("cos", lambda g, out, a: (-(g * F.sin(a)),))
libm("tan", lambda g, out, a: (g * (1 + out * out),))
libm("arcsin", lambda g, out, a: (g / F.sqrt(1 - a * a),))
libm("arccos", lambda g, out, a: (-(g / F.sqrt(1 - a * a)),))
libm("arctan", lambda g, out, a: (g / (1 + a * a),))
libm("sinh", lambda g, out, a: (g * F.cosh(a),))
libm("cosh", lambda g, out, a: (g * F.sinh(a),))


def rounding(name, numpy, kernel):
    """floor, ceil, round (half to even): integers stay as they are (NumPy 2 keeps their dtype); the
    gradient is 0 (the functions are flat between their jumps)."""
    elementwise(name, arithmetic, numpy, lambda s: f"np.{kernel}({s.args[0]})" if is_float(s.dtype) else s.args[0],
                vjp=lambda g, out, a: (None,), numpy_exact=True)


rounding("floor", np.floor, "floor")
rounding("ceil", np.ceil, "ceil")
rounding("round", np.round, "rint")


def _mod_scalar(s):
    """Numba's % is Python's, which is np.mod's (the sign of the divisor; x % 0 is NaN for floats, 0 for
    ints under the kernels' numpy error model); an int32 % int32 is int64 in Numba, so it is cast back."""
    text = f"{s.args[0]} % {s.args[1]}"
    return text if is_float(s.dtype) else f"np.{s.dtype}({text})"


# mod(a, b) = a - b * floor(a / b): its gradient is 1 for a and -floor(a / b) for b (between the jumps)
elementwise("mod", arithmetic, np.mod, _mod_scalar, vjp=lambda g, out, a, b: (g, -(g * F.floor(a / b))))
elementwise("square", arithmetic, np.square, lambda s: f"{s.args[0]} * {s.args[0]}",
            vjp=lambda g, out, a: (g * 2 * a,), numpy_exact=True)


def _float_only(types):
    """reciprocal: NumPy's integer reciprocal truncates (1 // x), a trap graphc refuses."""
    if not is_float(types[0].dtype):
        raise DTypeError(f"needs a float tensor, not {types[0].dtype} (NumPy's integer reciprocal truncates to 0, 1 "
                         "or -1); write 1 / x for a float result")
    return broadcast_type(types, types[0].dtype)


elementwise("reciprocal", _float_only, np.reciprocal, lambda s: f"{s.c(1)} / {s.args[0]}",
            vjp=lambda g, out, a: (-(g * out * out),), numpy_exact=True)


def comparison(name, numpy, symbol):
    elementwise(name, lambda types: broadcast_type(types, "bool"), numpy,
                lambda s: f"{s.args[0]} {symbol} {s.args[1]}", differentiable=False, numpy_exact=True)


comparison("lt", np.less, "<")
comparison("le", np.less_equal, "<=")
comparison("gt", np.greater, ">")
comparison("ge", np.greater_equal, ">=")
comparison("eq", np.equal, "==")
comparison("ne", np.not_equal, "!=")


def _cast_scalar(s):
    if s.dtype == "bool":
        return f"({s.args[0]} != 0)"
    return f"np.{s.dtype}({s.args[0]})"


def _cast_vjp(g, out, a, dtype):
    return (F.cast(g, a.dtype) if is_float(a.dtype) and is_float(dtype) else None,)


register(OpDef("cast", lambda types, dtype: TensorType(types[0].shape, dtype),
               lambda a, dtype: a.astype(dtype), vjp=_cast_vjp, scalar=_cast_scalar, kind="elementwise",
               numpy_exact=True))
