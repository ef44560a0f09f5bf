"""Random numbers as pure functions of a key: Philox-4x32-10 (Salmon et al., "Parallel random numbers:
as easy as 1, 2, 3", SC11; Random123's philox4x32) over one counter per element.

Element i (flat, C order) of a sample is computed from the block philox(key, counter (i mod 2^32,
i div 2^32, stream, 0)) alone, so its bits are the same in every run, process and thread count, and
in the NumPy reference (the interpreter) and the kernel alike: both use only integer arithmetic and
IEEE-exact float operations (+ - * / sqrt, int-to-float conversion, rounding to float32), in the same
order. The key is
an int64 scalar whose two's-complement bits are the Philox key (low word k0, high word k1). The
stream word keeps samples, fold_in and split apart: they never compute the same block.

From a block's 32-bit words w0..w3 an element takes:
- random_bits: w0 | w1 << 32 (an int64); split's keys too, with their own stream;
- random_uniform: float32 (w0 >> 8) * 2^-24, float64 ((w1 << 32 | w0) >> 11) * 2^-53, in [0, 1),
  then low + (high - low) * u in float64, rounded to the dtype, and kept below high (rounding may
  reach it);
- random_normal: Box-Muller, sqrt(-2 log u1) cos(2 pi u2) with u1 in (0, 1] from w0, w1 and u2 in
  [0, 1) from w2, w3 (53 bits each), in float64 then rounded to the dtype. log and cos are written
  here (fdlibm's log polynomial; Taylor series of cos and sin on a quarter turn reduced exactly by
  integers), not taken from libm or NumPy, whose last bits differ between them;
- random_fold_in(key, data): a new key per element of data, from the block of counter (data mod 2^32,
  data div 2^32, FOLDED, 0).
The ops have no gradient. They are not marked numpy_exact, though their reference is exact: constant
folding would bake a constant key's sample into the kernel as an array, which the kernel computes
as fast. CSE merges two only when key, shape and attributes are all the same: the same values.
"""
import math

import numpy as np

from ..errors import DTypeError, ShapeError
from ..types import FLOAT_DTYPES, TensorType
from .registry import OpDef, register

MASK = 0xFFFFFFFF
MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)  # PHILOX_M4x32_0, _1
WEYL = (0x9E3779B9, 0xBB67AE85)         # PHILOX_W32_0, _1: the key schedule's increments
ROUNDS = 10
SAMPLES, FOLDED, SPLIT = 0, 1, 2         # counter word 2: which use a block serves

# Box-Muller's float64 constants
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
LOG_ODD = (6.666666666666735130e-01, 2.857142874366239149e-01, 1.818357216161805012e-01, 1.479819860511658591e-01)
LOG_EVEN = (3.999999999940941908e-01, 2.222219843214978396e-01, 1.531383769920937332e-01)  # fdlibm's Lg1..Lg7
SQRT2 = math.sqrt(2.0)
COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(9))          # to theta^16: 2e-18 at pi/4
SIN_TAIL = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(1, 9))
ANGLE_UNIT = math.pi / 2 ** 52  # 2 pi / 2^53: a 53-bit fraction of a turn, in radians
HALVINGS = (32, 16, 8, 4, 2, 1)  # the binary search for an integer's highest set bit


# ---- the NumPy reference: the same arithmetic on arrays of uint64 holding 32-bit words ------------------

def philox4x32(counter, key, rounds=ROUNDS):
    """Random123's philox4x32_R: four counter words (arrays) and two key words -> the block's four words."""
    c0, c1, c2, c3 = (np.asarray(w, np.uint64) for w in counter)
    k0, k1 = (np.uint64(k) for k in key)
    m0, m1, mask, shift = np.uint64(MULTIPLIERS[0]), np.uint64(MULTIPLIERS[1]), np.uint64(MASK), np.uint64(32)
    for _ in range(rounds):
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ k0, p1 & mask, (p0 >> shift) ^ c3 ^ k1, p0 & mask
        k0, k1 = (k0 + np.uint64(WEYL[0])) & mask, (k1 + np.uint64(WEYL[1])) & mask
    return c0, c1, c2, c3


def key_words(key):
    """An int64 key's two 32-bit words (low, high) of its two's-complement bits."""
    bits = int(np.asarray(key, np.int64)) % 2 ** 64
    return bits & MASK, bits >> 32


def _blocks(key, values, stream):
    """The block of each value (uint64) as counter (value low, value high, stream, 0)."""
    values = np.asarray(values, np.uint64)
    zeros = np.zeros_like(values)
    return philox4x32((values & np.uint64(MASK), values >> np.uint64(32), zeros + np.uint64(stream), zeros),
                      key_words(key))


def _sample_blocks(key, shape, stream=SAMPLES):
    return _blocks(key, np.arange(math.prod(shape), dtype=np.uint64), stream)


def _joined(low, high):
    return (high << np.uint64(32)) | low


def _as_int64(words):
    return np.ascontiguousarray(words).view(np.int64)


def _bits_numpy(key, shape, stream):
    w0, w1, _, _ = _sample_blocks(key, shape, stream)
    return _as_int64(_joined(w0, w1)).reshape(shape)


def _fold_in_numpy(key, data):
    w0, w1, _, _ = _blocks(key, np.asarray(data, np.int64).reshape(-1).view(np.uint64), FOLDED)
    return _as_int64(_joined(w0, w1)).reshape(np.shape(data))


def uniform_constants(dtype, low, high):
    """(low, high - low, the largest value below high) as float64 numbers, low and high rounded to dtype."""
    kind = np.dtype(dtype).type
    lo, hi = kind(low), kind(high)
    below = np.nextafter(hi, kind(-np.inf))
    return float(lo), float(hi) - float(lo), float(below)


def _unit_numpy(words, dtype):
    w0, w1, _, _ = words
    if dtype == "float32":
        return (w0 >> np.uint64(8)).astype(np.float64) * 2.0 ** -24
    return (_joined(w0, w1) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _uniform_numpy(key, shape, dtype, low, high):
    lo, span, below = uniform_constants(dtype, low, high)
    value = (lo + span * _unit_numpy(_sample_blocks(key, shape), dtype)).astype(dtype)
    return np.where(value < np.asarray(high, dtype), value, np.asarray(below, dtype)).reshape(shape)


def _horner(x, coefs):
    total = coefs[-1]
    for coef in reversed(coefs[:-1]):
        total = coef + x * total
    return total


def _log_numpy(m):
    """log(m 2^-53) for integers m in [1, 2^53] (uint64)."""
    t, e = m, np.zeros(m.shape, np.int64)
    for halving in HALVINGS:
        big = t >= np.uint64(1 << halving)
        t = np.where(big, t >> np.uint64(halving), t)
        e = np.where(big, e + halving, e)
    f = m.astype(np.float64) / (np.uint64(1) << e.astype(np.uint64)).astype(np.float64)  # in [1, 2): exact
    high = f >= SQRT2
    f = np.where(high, f * 0.5, f)
    k = (np.where(high, e + 1, e) - 53).astype(np.float64)
    f = f - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * _horner(w, LOG_ODD) + w * _horner(w, LOG_EVEN)
    hfsq = 0.5 * f * f
    return k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)


def _cos_turn_numpy(b):
    """cos(2 pi b 2^-53) for integers b in [0, 2^53) (uint64)."""
    q = (b + np.uint64(1 << 50)) >> np.uint64(51)  # the nearest quarter turn, 0..4
    theta = (b.astype(np.int64) - (q << np.uint64(51)).astype(np.int64)).astype(np.float64) * ANGLE_UNIT
    z = theta * theta
    cos = _horner(z, COS)
    sin = theta + theta * z * _horner(z, SIN_TAIL)
    odd, high = (q & np.uint64(1)) == 1, (q & np.uint64(2)) == 2
    m = np.where(odd, sin, cos)
    return np.where(high != odd, -m, m)


def _normal_numpy(key, shape, dtype):
    w0, w1, w2, w3 = _sample_blocks(key, shape)
    radius = np.sqrt(-2.0 * _log_numpy((_joined(w0, w1) >> np.uint64(11)) + np.uint64(1)))
    return (radius * _cos_turn_numpy(_joined(w2, w3) >> np.uint64(11))).astype(dtype).reshape(shape)


# ---- kernel code: the same steps for one element, its words in uint64 variables {p}_x0..{p}_x3 ----------

def _u(value):
    return f"np.uint64({value})"


def _horner_text(x, coefs):
    text = repr(coefs[-1])
    for coef in reversed(coefs[:-1]):
        text = f"{coef!r} + {x} * ({text})"
    return text


def _philox_lines(p):
    """The block of counter {p}_x0..3 under key {p}_k0, {p}_k1, into {p}_x0..3."""
    mask, shift = _u(MASK), _u(32)
    return [f"{p}_a0 = {p}_k0", f"{p}_a1 = {p}_k1",
            f"for {p}_round in range({ROUNDS}):",
            f"    {p}_p0 = {_u(MULTIPLIERS[0])} * {p}_x0",
            f"    {p}_p1 = {_u(MULTIPLIERS[1])} * {p}_x2",
            f"    {p}_x0, {p}_x1, {p}_x2, {p}_x3 = (({p}_p1 >> {shift}) ^ {p}_x1 ^ {p}_a0, {p}_p1 & {mask}, "
            f"({p}_p0 >> {shift}) ^ {p}_x3 ^ {p}_a1, {p}_p0 & {mask})",
            f"    {p}_a0 = ({p}_a0 + {_u(WEYL[0])}) & {mask}",
            f"    {p}_a1 = ({p}_a1 + {_u(WEYL[1])}) & {mask}"]


def _joined_text(p, low, high):
    return f"(({p}_x{high} << {_u(32)}) | {p}_x{low})"


def _bits_lines(ctx, node, p):
    return [f"{p}_v = np.int64({_joined_text(p, 0, 1)})"]


def _unit_text(p, dtype):
    if dtype == "float32":
        return f"np.float64({p}_x0 >> {_u(8)}) * {2.0 ** -24!r}"
    return f"np.float64({_joined_text(p, 0, 1)} >> {_u(11)}) * {2.0 ** -53!r}"


def _uniform_lines(ctx, node, p):
    attrs = ctx.attrs(node)
    dtype = attrs["dtype"]
    lo, span, below = uniform_constants(dtype, attrs["low"], attrs["high"])
    return [f"{p}_s = np.{dtype}({lo!r} + {span!r} * {_unit_text(p, dtype)})",
            f"{p}_v = {p}_s if {p}_s < {ctx.const(attrs['high'], dtype)} else {ctx.const(below, dtype)}"]


def _log_lines(p, m):
    """{p}_log = log({m} 2^-53) for the uint64 {m} in [1, 2^53], as _log_numpy computes it."""
    lines = [f"{p}_t = {m}", f"{p}_e = np.int64(0)"]
    for halving in HALVINGS:
        lines += [f"if {p}_t >= {_u(1 << halving)}:",
                  f"    {p}_t = {p}_t >> {_u(halving)}",
                  f"    {p}_e = {p}_e + {halving}"]
    return lines + [
        f"{p}_f = np.float64({m}) / np.float64({_u(1)} << np.uint64({p}_e))",
        f"if {p}_f >= {SQRT2!r}:",
        f"    {p}_f = {p}_f * 0.5",
        f"    {p}_e = {p}_e + 1",
        f"{p}_k = np.float64({p}_e - 53)",
        f"{p}_f = {p}_f - 1.0",
        f"{p}_s = {p}_f / (2.0 + {p}_f)",
        f"{p}_z = {p}_s * {p}_s",
        f"{p}_w = {p}_z * {p}_z",
        f"{p}_r = {p}_z * ({_horner_text(f'{p}_w', LOG_ODD)}) + {p}_w * ({_horner_text(f'{p}_w', LOG_EVEN)})",
        f"{p}_h = 0.5 * {p}_f * {p}_f",
        f"{p}_log = {p}_k * {LN2_HI!r} - (({p}_h - ({p}_s * ({p}_h + {p}_r) + {p}_k * {LN2_LO!r})) - {p}_f)"]


def _cos_turn_lines(p, b):
    """{p}_cos_turn = cos(2 pi {b} 2^-53) for the uint64 {b} in [0, 2^53), as _cos_turn_numpy computes it."""
    return [
        f"{p}_q = ({b} + {_u(1 << 50)}) >> {_u(51)}",
        f"{p}_th = np.float64(np.int64({b}) - np.int64({p}_q << {_u(51)})) * {ANGLE_UNIT!r}",
        f"{p}_z = {p}_th * {p}_th",
        f"{p}_cos = {_horner_text(f'{p}_z', COS)}",
        f"{p}_sin = {p}_th + {p}_th * {p}_z * ({_horner_text(f'{p}_z', SIN_TAIL)})",
        # the quadrant's cos is cos, -sin, -cos, sin: two selects (a four-way branch was 10x slower)
        f"{p}_odd = ({p}_q & {_u(1)}) == {_u(1)}",
        f"{p}_high = ({p}_q & {_u(2)}) == {_u(2)}",
        f"{p}_m = {p}_sin if {p}_odd else {p}_cos",
        f"{p}_cos_turn = -{p}_m if {p}_high != {p}_odd else {p}_m"]


def _normal_lines(ctx, node, p):
    return (_log_lines(p, f"(({_joined_text(p, 0, 1)} >> {_u(11)}) + {_u(1)})")
            + _cos_turn_lines(p, f"({_joined_text(p, 2, 3)} >> {_u(11)})")
            + [f"{p}_v = np.{ctx.attrs(node)['dtype']}(sqrt(-2.0 * {p}_log) * {p}_cos_turn)"])


def _index_counter(ctx, node, p):
    """(setup, per-element lines) of a sample's counter for element {p}_i: (i low, i high, stream, 0)."""
    stream = ctx.attrs(node).get("stream", SAMPLES)
    return [], [f"{p}_c = np.uint64({p}_i)", f"{p}_x0 = {p}_c & {_u(MASK)}", f"{p}_x1 = {p}_c >> {_u(32)}",
                f"{p}_x2 = {_u(stream)}", f"{p}_x3 = {_u(0)}"]


def _data_counter(ctx, node, p):
    """(setup, per-element lines) of fold_in's counter for element {p}_i of data: (data low, data high, FOLDED, 0)."""
    data = ctx.args(node)[1]
    if ctx.type(data).ndim == 0:
        setup, element = [], ctx.var(data)
    else:
        setup, element = [f"{p}_data = {ctx.contiguous(data)}.reshape(-1)"], f"{p}_data[{p}_i]"
    return setup, [f"{p}_c = np.uint64({element})", f"{p}_x0 = {p}_c & {_u(MASK)}", f"{p}_x1 = {p}_c >> {_u(32)}",
                   f"{p}_x2 = {_u(FOLDED)}", f"{p}_x3 = {_u(0)}"]


def _emit(counter_lines, value_lines):
    """Kernel lines: the key's words, then per element (a loop over the flat output, parallel chunks when
    large, as runtime/loops.py decides) its counter, its block and its value {p}_v."""
    def emit(ctx, node):
        from graphc.runtime.loops import runs_in_parallel  # (imported here: the runtime imports the ops)
        p = ctx.var(node)
        key = ctx.var(ctx.args(node)[0])
        setup, counter = counter_lines(ctx, node, p)
        head = [f"{p}_key = np.uint64({key})", f"{p}_k0 = {p}_key & {_u(MASK)}", f"{p}_k1 = {p}_key >> {_u(32)}"] + setup
        body = counter + _philox_lines(p) + value_lines(ctx, node, p)
        if ctx.type(node).ndim == 0:
            return head + [f"{p}_i = 0"] + body + [f"{p} = {p}_v"]
        body.append(f"{p}_flat[{p}_i] = {p}_v")
        head += [f"{p} = {ctx.empty(node)}", f"{p}_flat = {p}.reshape(-1)", f"{p}_n = {' * '.join(ctx.dims(node))}"]
        if ctx.may_use_prange and runs_in_parallel(ctx.type(node).shape):
            ctx.parallel = True  # each element's value depends on its index only: any split gives the same bits
            return head + [f"{p}_chunks = parallel_chunks({p}_n)", f"{p}_step = ({p}_n + {p}_chunks - 1) // {p}_chunks",
                           f"for {p}_chunk in prange({p}_chunks):",
                           f"    for {p}_i in range({p}_chunk * {p}_step, min(({p}_chunk + 1) * {p}_step, {p}_n)):"
                           ] + ["        " + line for line in body]
        return head + [f"for {p}_i in range({p}_n):"] + ["    " + line for line in body]
    return emit


# ---- shape and dtype rules ---------------------------------------------------------------------------------

def _check_key(t):
    if t.dtype != "int64":
        raise DTypeError(f"a key is an int64 scalar, not {t.dtype} (declare gc.scalar('key', 'int64'), or pass an int)")
    if t.ndim:
        raise ShapeError(f"a key is an int64 scalar (rank 0), not rank {t.ndim} (index an array of keys: keys[0])")


def _float_dtype(dtype):
    if dtype not in FLOAT_DTYPES:
        raise DTypeError(f"samples are float32 or float64, not {dtype}")


def _bits_infer(types, shape, stream):
    _check_key(types[0])
    return TensorType(shape, "int64")


def _uniform_infer(types, shape, dtype, low, high):
    _check_key(types[0])
    _float_dtype(dtype)
    return TensorType(shape, dtype)


def _normal_infer(types, shape, dtype):
    _check_key(types[0])
    _float_dtype(dtype)
    return TensorType(shape, dtype)


def _fold_in_infer(types):
    key, data = types
    _check_key(key)
    if data.dtype != "int64":
        raise DTypeError(f"fold_in's data is int64, not {data.dtype}")
    return TensorType(data.shape, "int64")


def _random_op(name, infer, numpy, value_lines, counter=_index_counter):
    register(OpDef(name, infer, numpy, emit=_emit(counter, value_lines), differentiable=False, fresh=True,
                   receives=True, cost=64))


_random_op("random_bits", _bits_infer, _bits_numpy, _bits_lines)
_random_op("random_uniform", _uniform_infer, _uniform_numpy, _uniform_lines)
_random_op("random_normal", _normal_infer, _normal_numpy, _normal_lines)
_random_op("random_fold_in", _fold_in_infer, _fold_in_numpy, _bits_lines, counter=_data_counter)
