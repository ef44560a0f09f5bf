"""Scalar math the generated kernels call by bare name (exp, log, tanh, sigmoid, ...), and size helpers.

PyPI's llvmlite has no SVML, so `math.exp` and friends in a Numba loop are scalar libm calls that stop
the loop from vectorizing. These versions are straight-line float arithmetic, integer bit operations
and selects, which LLVM vectorizes:
- exp/expm1: Cody-Waite range reduction x = k ln2 + r, |r| <= ln2/2, a Taylor polynomial for
  expm1(r) (degree 13 in float64, 8 in float32), and 2^k built from its bits (an integer-to-float
  bitcast, `_float_from_bits`); 2^k is applied in two halves so denormal and near-overflow results
  round once, correctly.
- log: x = m 2^k with m in [sqrt(2)/2, sqrt(2)) read from the bits, then fdlibm's (float64) and
  musl's (float32) minimax polynomial in s = (m-1)/(m+1); denormal inputs are scaled first.
- tanh = expm1(2|x|) / (expm1(2|x|) + 2) with x's sign; sigmoid from one exp(-|x|).
- log1p(x) = log(u) * x / (u - 1) with u = 1 + x (Goldberg's correction).
Each is within ~1-2 ulp of the correctly rounded result (tests/test_scalar_math.py measures it over
the whole range) and keeps IEEE semantics for NaN, +-Inf, 0 and denormals. Float32 arguments are
computed in float32 (full vector width), everything else in float64. LLVM inlines them into the kernel's loops
(Numba-level inlining is not needed and only slows compiles). Kernels must compile with
error_model="numpy": Python's division-by-zero check is a branch that stops vectorization.

`accumulate(acc, value)` is `acc + value` with LLVM's `reassoc` flag on that one addition: a loop that
sums into `acc` then vectorizes (partial sums per lane), changing the summation order (a value change
within rounding, like NumPy's pairwise sum) while every other operation keeps strict IEEE semantics.
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

sqrt = math.sqrt


# ---- bit casts ---------------------------------------------------------------------------------

@intrinsic
def _float_from_bits(typingctx, bits, like):
    """The float of `like`'s type whose IEEE bits are the integer `bits` (truncated to its width)."""
    width = like.bitwidth
    float_type = ir.DoubleType() if width == 64 else ir.FloatType()

    def codegen(context, builder, signature, args):
        value = args[0]
        if value.type.width != width:
            value = builder.trunc(value, ir.IntType(width)) if value.type.width > width else builder.sext(value, ir.IntType(width))
        return builder.bitcast(value, float_type)
    return like(bits, like), codegen


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


# ---- constants (float32 ones are np.float32 so float32 code stays float32) -----------------------

def _f32(*values):
    return tuple(np.float32(v) for v in values)


LN2_HI_64, LN2_LO_64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
LN2_HI_32, LN2_LO_32 = _f32(0.693359375, -2.12194440e-4)
LOG2E_64, LOG2E_32 = 1.4426950408889634, np.float32(1.4426950408889634)
HALF_32, ONE_32, TWO_32, ZERO_32 = _f32(0.5, 1.0, 2.0, 0.0)
EXPM1_64 = tuple(1.0 / math.factorial(n) for n in range(13, 1, -1))   # r^13/13! .. r^2/2!, Horner order
EXPM1_32 = _f32(*(1.0 / math.factorial(n) for n in range(8, 1, -1)))
# exp(x) overflows above / underflows to 0 below these; inputs are clamped into them first
EXP_RANGE_64, EXP_RANGE_32 = (-746.0, 710.0), _f32(-104.0, 89.0)
EXPM1_LOW_64, EXPM1_LOW_32 = -40.0, np.float32(-18.0)      # expm1 is -1 to the last bit below
TANH_CLAMP_64, TANH_CLAMP_32 = 20.0, np.float32(9.0)        # tanh is +-1 to the last bit beyond
# log: fdlibm (float64) and musl (float32) minimax coefficients of log(1+f) - f + f^2/2 in s = f/(2+f)
LG_64 = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
         1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)
LG_32 = _f32(0.66666662693, 0.40000972152, 0.28498786688, 0.24279078841)
LOG_LN2_HI_32, LOG_LN2_LO_32 = _f32(6.9313812256e-01, 9.0580006145e-06)
SQRT_HALF_BITS_64, SQRT_HALF_BITS_32 = 0x3FE6A09E667F3BCD, 0x3F3504F3
MANTISSA_64, MANTISSA_32 = 0x000FFFFFFFFFFFFF, 0x007FFFFF
SMALLEST_NORMAL_64, SMALLEST_NORMAL_32 = 2.2250738585072014e-308, np.float32(1.17549435e-38)
DENORMAL_SCALE_64, DENORMAL_SCALE_32 = 2.0 ** 54, np.float32(2.0 ** 25)


# ---- float64 ---------------------------------------------------------------------------------------

@njit(cache=True)
def _pow2_64(k):
    """2^k for -1022 <= k <= 1023."""
    return _float_from_bits((k + 1023) << 52, 1.0)


@njit(cache=True)
def _reduce_64(x):
    """k and expm1(r) for x = k ln2 + r (x already clamped to the finite range)."""
    k = math.floor(x * LOG2E_64 + 0.5)
    kf = float(k)
    r = (x - kf * LN2_HI_64) - kf * LN2_LO_64
    c = EXPM1_64
    p = ((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]
    p = (((((p * r + c[6]) * r + c[7]) * r + c[8]) * r + c[9]) * r + c[10]) * r + c[11]
    return k, r + r * r * p


@njit(cache=True)
def _exp64(x):
    clamped = min(max(x, EXP_RANGE_64[0]), EXP_RANGE_64[1])
    k, q = _reduce_64(clamped)
    half = k >> 1
    y = ((1.0 + q) * _pow2_64(half)) * _pow2_64(k - half)
    return y if x == x else x


@njit(cache=True)
def _expm1_64(x):
    clamped = min(max(x, EXPM1_LOW_64), EXP_RANGE_64[1])
    k, q = _reduce_64(clamped)
    two_k = _pow2_64(min(k, 56))
    near = q if k == 0 else (two_k - 1.0) + two_k * q   # 2^k - 1 is exact for the k that reach here
    half = k >> 1
    far = ((1.0 + q) * _pow2_64(half)) * _pow2_64(k - half)   # exp(x) itself, -1 is below its last bit
    y = near if k <= 56 else far
    return x if x != x or x == 0.0 else y   # NaN, and zeros with their sign


@njit(cache=True)
def _log64(x):
    tiny = x < SMALLEST_NORMAL_64
    scaled = x * DENORMAL_SCALE_64 if tiny else x
    shifted = _bits_of_float(scaled) - SQRT_HALF_BITS_64
    k = (shifted >> 52) - (54 if tiny else 0)
    m = _float_from_bits((shifted & MANTISSA_64) + SQRT_HALF_BITS_64, 1.0)
    f = m - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LG_64[1] + w * (LG_64[3] + w * LG_64[5]))
    t2 = z * (LG_64[0] + w * (LG_64[2] + w * (LG_64[4] + w * LG_64[6])))
    kf = float(k)
    y = kf * LN2_HI_64 - ((hfsq - (s * (hfsq + t1 + t2) + kf * LN2_LO_64)) - f)
    y = -math.inf if x == 0.0 else y
    y = x if x == math.inf else y
    return y if x >= 0.0 else math.nan if x == x else x


# ---- float32 ---------------------------------------------------------------------------------------

@njit(cache=True)
def _pow2_32(k):
    """2^k for -126 <= k <= 127."""
    return _float_from_bits((k + 127) << 23, ONE_32)


@njit(cache=True)
def _reduce_32(x):
    k = math.floor(x * LOG2E_32 + HALF_32)
    kf = np.float32(k)
    r = (x - kf * LN2_HI_32) - kf * LN2_LO_32
    c = EXPM1_32
    p = (((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) * r + c[6]
    return k, r + r * r * p


@njit(cache=True)
def _exp32(x):
    clamped = min(max(x, EXP_RANGE_32[0]), EXP_RANGE_32[1])
    k, q = _reduce_32(clamped)
    half = k >> 1
    y = ((ONE_32 + q) * _pow2_32(half)) * _pow2_32(k - half)
    return y if x == x else x


@njit(cache=True)
def _expm1_32(x):
    clamped = min(max(x, EXPM1_LOW_32), EXP_RANGE_32[1])
    k, q = _reduce_32(clamped)
    two_k = _pow2_32(min(k, 25))
    near = q if k == 0 else (two_k - ONE_32) + two_k * q
    half = k >> 1
    far = ((ONE_32 + q) * _pow2_32(half)) * _pow2_32(k - half)
    y = near if k <= 25 else far
    return x if x != x or x == ZERO_32 else y


@njit(cache=True)
def _log32(x):
    tiny = x < SMALLEST_NORMAL_32
    scaled = x * DENORMAL_SCALE_32 if tiny else x
    shifted = _bits_of_float(scaled) - SQRT_HALF_BITS_32
    k = (shifted >> 23) - (25 if tiny else 0)
    m = _float_from_bits((shifted & MANTISSA_32) + SQRT_HALF_BITS_32, ONE_32)
    f = m - ONE_32
    s = f / (TWO_32 + f)
    z = s * s
    w = z * z
    r = z * (LG_32[0] + w * LG_32[2]) + w * (LG_32[1] + w * LG_32[3])
    hfsq = HALF_32 * f * f
    kf = np.float32(k)
    y = s * (hfsq + r) + kf * LOG_LN2_LO_32 - hfsq + f + kf * LOG_LN2_HI_32
    y = np.float32(-math.inf) if x == ZERO_32 else y
    y = x if x == np.float32(math.inf) else y
    return y if x >= ZERO_32 else np.float32(math.nan) if x == x else x


# ---- shared forms ----------------------------------------------------------------------------------

def _float_version(impl64, impl32):
    """An overload body: float32 runs the float32 kernel, every other number the float64 one."""
    def choose(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: impl32(x)
        if isinstance(x, (types.Float, types.Integer, types.Boolean)):
            return lambda x: impl64(float(x))
        return None
    return choose


@njit(cache=True)
def _tanh64(x):
    e = _expm1_64(2.0 * min(abs(x), TANH_CLAMP_64))
    return math.copysign(e / (e + 2.0), x)


@njit(cache=True)
def _tanh32(x):
    e = _expm1_32(TWO_32 * min(abs(x), TANH_CLAMP_32))
    return np.float32(math.copysign(e / (e + TWO_32), x))


@njit(cache=True)
def _sigmoid64(x):
    e = _exp64(-abs(x))
    s = 1.0 / (1.0 + e)
    return s if x >= 0.0 else e * s if x == x else x


@njit(cache=True)
def _sigmoid32(x):
    e = _exp32(-abs(x))
    s = ONE_32 / (ONE_32 + e)
    return s if x >= ZERO_32 else e * s if x == x else x


@njit(cache=True)
def _log1p64(x):
    u = 1.0 + x
    y = x if u == 1.0 else _log64(u) * (x / (u - 1.0))
    return x if x == math.inf else y


@njit(cache=True)
def _log1p32(x):
    u = ONE_32 + x
    y = x if u == ONE_32 else _log32(u) * (x / (u - ONE_32))
    return x if x == np.float32(math.inf) else y


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


for _stub, _impls in [(exp, (_exp64, _exp32)), (expm1, (_expm1_64, _expm1_32)), (log, (_log64, _log32)),
                      (log1p, (_log1p64, _log1p32)), (tanh, (_tanh64, _tanh32)), (sigmoid, (_sigmoid64, _sigmoid32))]:
    overload(_stub)(_float_version(*_impls))


PARALLEL_MIN_CHUNK = 1 << 16  # elements: below this a chunk's work doesn't pay for waking a thread
PARALLEL_MAX_CHUNKS = 64


@njit(cache=True)
def parallel_chunks(size):
    """How many chunks a parallel loop of `size` elements splits into: at least PARALLEL_MIN_CHUNK
    elements each (a small call is one chunk), at most PARALLEL_MAX_CHUNKS; prange spreads them over
    the threads. It depends on the size only, so per-chunk partial sums give the same result for any
    thread count (and the kernel stays cacheable: numba.get_num_threads() in a kernel is not)."""
    return max(1, min(PARALLEL_MAX_CHUNKS, size // PARALLEL_MIN_CHUNK))


@njit(inline="always", cache=True)
def slice_length(size, start, stop, step):
    """len(range(size)[start:stop:step]) for a size known only at call time."""
    return len(range(size)[slice(start, stop, step)])
