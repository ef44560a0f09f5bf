"""Scalar math the generated kernels call by bare name (exp, log, tanh, sigmoid, ...), and size helpers.

PyPI's llvmlite has no SVML, so `math.exp` and friends in a Numba loop are scalar libm calls that stop
the loop from vectorizing. These versions are straight-line float arithmetic, integer bit operations
and selects, which LLVM vectorizes:
- exp/expm1: range reduction x = k ln2 + r, |r| <= ln2/2 (k rounded by one `rint`, r by two fused
  multiply-adds), a Taylor polynomial in Horner form with fused multiply-adds (degree 13 in float64,
  7 in float32), and 2^k built from its bits; exp applies 2^k in two halves so denormal and
  near-overflow results round once, correctly.
- tanh: an odd polynomial below |x| = 0.5493 (where tanh reaches 1/2), above it
  expm1(2|x|) / (expm1(2|x|) + 2) with x's sign; sigmoid from one exp(-|x|).
- log: x = m 2^k with m in [sqrt(2)/2, sqrt(2)) read from the bits, then fdlibm's (float64) and
  musl's (float32) minimax polynomial in s = (m-1)/(m+1); denormal inputs are scaled first.
- log1p(x) = log(u) * x / (u - 1) with u = 1 + x (Goldberg's correction).
Each is written once for both widths: the float32 and float64 versions are the same function
given the constants of their width (`F32`, `F64`), and everything,
the integer bits included, stays at the argument's width (float32 fills the full vector width).
Each is within ~1-2 ulp of the correctly rounded result (tests/test_scalar_math.py measures it over
the whole range) and keeps IEEE semantics for NaN, +-Inf, 0 and denormals. Each public function is
one Numba function per width, shared by every kernel of the process, which LLVM inlines into the
kernel's loops; the helpers inside it are inlined at Numba's level (inline="always"), because every
separate Numba function is a compile of its own on a cold start (~0.5 s less for exp, log and tanh).
Kernels must compile with error_model="numpy": Python's division-by-zero check is a branch that
stops vectorization.

`accumulate(acc, value)` is `acc + value` with LLVM's `reassoc` flag on that one addition: a loop that
sums into `acc` then vectorizes (partial sums per lane), changing the summation order (a value change
within rounding, like NumPy's pairwise sum) while every other operation keeps strict IEEE semantics.
"""
import collections
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

sqrt = math.sqrt


# ---- bit casts ---------------------------------------------------------------------------------

@intrinsic
def _float_from_bits(typingctx, bits, like):
    """The float of `like`'s type whose IEEE bits are the integer `bits` (at least as wide; truncated)."""
    def codegen(context, builder, signature, args):
        value = args[0]
        if value.type.width > like.bitwidth:
            value = builder.trunc(value, ir.IntType(like.bitwidth))
        return builder.bitcast(value, context.get_value_type(like))
    return like(bits, like), codegen


@intrinsic
def _float_of_int(typingctx, value, like):
    """The integer `value` converted to `like`'s float type."""
    def codegen(context, builder, signature, args):
        return builder.sitofp(args[0], context.get_value_type(like))
    return like(value, like), codegen


@intrinsic
def _bits_of_float(typingctx, x):
    """The IEEE bits of a float as an int64 (sign-extended from 32 bits for float32)."""
    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], ir.IntType(x.bitwidth))
        return bits if x.bitwidth == 64 else builder.sext(bits, ir.IntType(64))
    return types.int64(x), codegen


@intrinsic
def accumulate(typingctx, acc, value):
    """acc + value, reassociable (only this addition), so a summing loop vectorizes."""
    if not (isinstance(acc, types.Float) and acc == value):
        return None

    def codegen(context, builder, signature, args):
        return builder.fadd(args[0], args[1], flags=("reassoc",))
    return acc(acc, value), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma: one instruction on FMA hardware)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return a(a, b, c), codegen


@intrinsic
def round_even(typingctx, x):
    """x rounded to the nearest integer (ties to even), as a float: llvm.rint, one instruction."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        return builder.call(builder.module.declare_intrinsic("llvm.rint", [args[0].type]), args)
    return x(x), codegen


def _exponent_layout(float_type):
    """(integer type, exponent bias, mantissa bits) of a Numba float type."""
    return (ir.IntType(64), 1023, 52) if float_type.bitwidth == 64 else (ir.IntType(32), 127, 23)


def _power_of_two(builder, float_type, k, layout):
    """The float 2^k for an integer k of the float's width (k in the normal exponent range)."""
    int_type, bias, mantissa = layout
    return builder.bitcast(builder.shl(builder.add(k, int_type(bias)), int_type(mantissa)), float_type)


@intrinsic
def pow2(typingctx, k):
    """2^k for a float k holding an integer in the normal exponent range."""
    if not isinstance(k, types.Float):
        return None
    layout = _exponent_layout(k)

    def codegen(context, builder, signature, args):
        return _power_of_two(builder, args[0].type, builder.fptosi(args[0], layout[0]), layout)
    return k(k), codegen


@intrinsic
def scale2(typingctx, y, k):
    """y * 2^k for a float k holding an integer up to twice the normal exponent range: 2^k goes on in
    two halves, so a denormal or near-overflow result is rounded once."""
    if not (isinstance(y, types.Float) and y == k):
        return None
    layout = _exponent_layout(k)

    def codegen(context, builder, signature, args):
        value, power = args[0], builder.fptosi(args[1], layout[0])
        half = builder.ashr(power, layout[0](1))
        value = builder.fmul(value, _power_of_two(builder, value.type, half, layout))
        return builder.fmul(value, _power_of_two(builder, value.type, builder.sub(power, half), layout))
    return y(y, k), codegen


# ---- constants of each float width --------------------------------------------------------------

FloatConstants = collections.namedtuple("FloatConstants", [
    "zero", "half", "one", "two", "inf", "nan",
    "log2e", "ln2_hi", "ln2_lo",      # ln2 = ln2_hi + ln2_lo, ln2_hi with trailing zero bits
    "exp_low", "exp_high",            # exp(x) underflows to 0 below / overflows above: inputs are clamped
    "exp_poly",                       # 1/n! .. 1/2!, Horner order: exp(r) = 1 + r + r^2 p(r)
    "expm1_low", "expm1_exact_k",     # expm1 is -1 to the last bit below; 2^k - 1 is exact up to this k
    "tanh_small", "tanh_clamp",       # the polynomial below, tanh is +-1 to the last bit above
    "tanh_poly",                      # tanh(x) = x + x^3 q(x^2) below tanh_small (Chebyshev fits, mpmath)
    "log_ln2_hi", "log_ln2_lo",       # log's own split of ln2
    "log_odd", "log_even",            # log(1+f) - f + f^2/2 = z q_odd(w) + w q_even(w), s = f/(2+f), z = s^2, w = z^2
    "smallest_normal", "denormal_scale",
    # integer fields: the bit layout
    "mantissa_bits", "mantissa_mask", "sqrt_half_bits", "denormal_shift",
])


def _constants(dtype, *floats, ints):
    """FloatConstants with every float field (tuples too) of `dtype`, followed by the integer fields."""
    typed = (tuple(map(dtype, v)) if isinstance(v, tuple) else dtype(v) for v in floats)
    return FloatConstants(*typed, *ints)


F64 = _constants(
    np.float64,
    0.0, 0.5, 1.0, 2.0, math.inf, math.nan,
    1.4426950408889634, 6.93147180369123816490e-01, 1.90821492927058770002e-10,
    -746.0, 710.0,
    tuple(1.0 / math.factorial(n) for n in range(13, 1, -1)),
    -40.0, 56.0,
    0.5493, 20.0,
    (-2.0635184405443472246e-5, 8.5159730369283864705e-5, -2.3466312745690210655e-4, 5.8894559889768605068e-4,
     -1.4556637641338977425e-3, 3.5921106202983503565e-3, -8.8632344161136159551e-3, 2.1869488494459271562e-2,
     -5.3968253967451342324e-2, 1.3333333333332729433e-1, -3.3333333333333332581e-1),
    6.93147180369123816490e-01, 1.90821492927058770002e-10,
    (1.479819860511658591e-01, 1.818357216161805012e-01, 2.857142874366239149e-01, 6.666666666666735130e-01),
    (1.531383769920937332e-01, 2.222219843214978396e-01, 3.999999999940941908e-01),
    2.2250738585072014e-308, 2.0 ** 54,
    ints=(52, 0x000FFFFFFFFFFFFF, 0x3FE6A09E667F3BCD, 54),
)
F32 = _constants(
    np.float32,
    0.0, 0.5, 1.0, 2.0, math.inf, math.nan,
    1.4426950408889634, 0.693359375, -2.12194440e-4,
    -104.0, 89.0,
    tuple(1.0 / math.factorial(n) for n in range(7, 1, -1)),
    -18.0, 25.0,
    0.5493, 9.0,
    (-6.6149536931217252362e-3, 2.1311897539520468013e-2, -5.3909837128763974460e-2, 1.3333115800999722231e-1,
     -3.3333332023813319569e-1),
    6.9313812256e-01, 9.0580006145e-06,
    (0.28498786688, 0.66666662693),
    (0.24279078841, 0.40000972152),
    1.17549435e-38, 2.0 ** 25,
    ints=(23, 0x007FFFFF, 0x3F3504F3, 25),
)
# log's polynomials: fdlibm's (float64) and musl's (float32) minimax coefficients, Horner order


# ---- exp, expm1, tanh, sigmoid: one body for both widths, `c` the constants of x's width ---------

@njit(inline="always", cache=True)
def _horner(r, coefs):
    p = coefs[0]
    for coef in coefs[1:]:
        p = fma(p, r, coef)
    return p


@njit(inline="always", cache=True)
def _reduce(x, c):
    """k (an integral float) and r with x = k ln2 + r, |r| <= ln2/2."""
    k = round_even(x * c.log2e)
    return k, fma(k, -c.ln2_lo, fma(k, -c.ln2_hi, x))


@njit(inline="always", cache=True)
def _expm1_reduced(r, c):
    return fma(_horner(r, c.exp_poly) * r, r, r)


@njit(inline="always", cache=True)
def _exp(x, c):
    k, r = _reduce(min(max(x, c.exp_low), c.exp_high), c)
    y = scale2(fma(fma(_horner(r, c.exp_poly), r, c.one), r, c.one), k)
    return y if x == x else x


@njit(inline="always", cache=True)
def _expm1(x, c):
    k, r = _reduce(min(max(x, c.expm1_low), c.exp_high), c)
    q = _expm1_reduced(r, c)
    two_k = pow2(min(k, c.expm1_exact_k))
    near = q if k == c.zero else fma(two_k, q, two_k - c.one)
    far = scale2(q + c.one, k)   # exp(x) itself: the -1 is below its last bit
    y = near if k <= c.expm1_exact_k else far
    return x if x != x or x == c.zero else y   # NaN, and zeros with their sign


@njit(inline="always", cache=True)
def _tanh(x, c):
    magnitude = abs(x)
    k, r = _reduce(c.two * min(magnitude, c.tanh_clamp), c)
    two_k = pow2(k)
    e = fma(two_k, _expm1_reduced(r, c), two_k - c.one)   # expm1(2|x|), k >= 0
    z = magnitude * magnitude
    small = fma(magnitude * z, _horner(z, c.tanh_poly), magnitude)
    y = small if magnitude < c.tanh_small else e / (e + c.two)
    return math.copysign(y, x) if x == x else x


@njit(inline="always", cache=True)
def _sigmoid(x, c):
    e = _exp(-abs(x), c)
    return (c.one if x >= c.zero else e) / (c.one + e) if x == x else x


@njit(inline="always", cache=True)
def _log1p(x, c):
    u = c.one + x
    y = x if u == c.one else log(u) * (x / (u - c.one))
    return x if x == math.inf else y


# ---- log --------------

@njit(inline="always", cache=True)
def _log_reduce(x, c):
    """k and f with x = 2^k (1 + f), 1 + f in [sqrt(2)/2, sqrt(2)) (denormal x scaled up first)."""
    tiny = x < c.smallest_normal
    shifted = _bits_of_float(x * c.denormal_scale if tiny else x) - c.sqrt_half_bits
    k = (shifted >> c.mantissa_bits) - (c.denormal_shift if tiny else 0)
    return k, _float_from_bits((shifted & c.mantissa_mask) + c.sqrt_half_bits, c.one) - c.one


@njit(inline="always", cache=True)
def _log_edges(x, y, c):
    """log(x) given y, its value for finite positive x: -inf at 0, inf at inf, NaN below 0 and at NaN."""
    y = -c.inf if x == c.zero else y
    y = x if x == c.inf else y
    return y if x >= c.zero else c.nan if x == x else x


@njit(inline="always", cache=True)
def _log(x, c):
    k, f = _log_reduce(x, c)
    s = f / (c.two + f)
    z = s * s
    w = z * z
    r = z * _horner(w, c.log_odd) + w * _horner(w, c.log_even)
    hfsq = c.half * f * f
    kf = _float_of_int(k, c.one)
    return _log_edges(x, s * (hfsq + r) + kf * c.log_ln2_lo - hfsq + f + kf * c.log_ln2_hi, c)


def _by_width(name, generic):
    """An overload body: float32 runs `generic` with the float32 constants, every other number with
    the float64 ones.

    Each body gets a qualified name of its own (exp_float32, ...): Numba names a compiled function by
    its qualified name and a per-process counter, and a kernel loaded from Numba's cache that calls
    such a function by that name was bound to another process's function of the same name (six
    anonymous lambdas: a cached kernel's exp ran as log)."""
    def choose(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            body = lambda x: generic(x, F32)  # noqa: E731
            body.__qualname__ = f"{name}_float32"
            return body
        if isinstance(x, (types.Float, types.Integer, types.Boolean)):
            body = lambda x: generic(float(x), F64)  # noqa: E731
            body.__qualname__ = f"{name}_float64"
            return body
        return None
    return choose


def exp(x):
    return math.exp(x)


def expm1(x):
    return math.expm1(x)


def log(x):
    return math.log(x)


def log1p(x):
    return math.log1p(x)


def tanh(x):
    return math.tanh(x)


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


for _stub, _generic in [(exp, _exp), (expm1, _expm1), (log, _log), (log1p, _log1p), (tanh, _tanh),
                        (sigmoid, _sigmoid)]:
    overload(_stub)(_by_width(_stub.__name__, _generic))


PARALLEL_MIN_CHUNK = 1 << 16  # elements: below this a chunk's work doesn't pay for waking a thread
PARALLEL_MAX_CHUNKS = 64


@njit(cache=True)
def parallel_chunks(size):
    """How many chunks a parallel loop of `size` elements splits into: at least PARALLEL_MIN_CHUNK
    elements each (a small call is one chunk), at most PARALLEL_MAX_CHUNKS; prange spreads them over
    the threads. It depends on the size only, so per-chunk partial sums give the same result for any
    thread count (and the kernel stays cacheable: numba.get_num_threads() in a kernel is not)."""
    return max(1, min(PARALLEL_MAX_CHUNKS, size // PARALLEL_MIN_CHUNK))
