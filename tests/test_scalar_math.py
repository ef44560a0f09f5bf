"""runtime/scalar_math: accuracy in ulps against a long-double reference over the whole range, IEEE
special values, and the vectorization it exists for."""
import math
import platform
import re

import numba
import numpy as np
import pytest

from graphc.runtime import scalar_math as sm

NAMES = ("exp", "expm1", "log", "log1p", "tanh", "sigmoid")
# Worst case measured over these inputs (round-to-nearest would be 0.5): the bound each test holds.
MAX_ULPS = {"exp": 1.0, "expm1": 2.0, "log": 1.0, "log1p": 2.5, "tanh": 1.5, "sigmoid": 2.1}
REFERENCE = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh,
             "sigmoid": lambda x: 1 / (1 + np.exp(-x))}


@numba.njit(error_model="numpy")
def _apply_all(x):
    out = np.empty((6, x.size), x.dtype)
    for i in range(x.size):
        v = x[i]
        out[0, i], out[1, i], out[2, i] = sm.exp(v), sm.expm1(v), sm.log(v)
        out[3, i], out[4, i], out[5, i] = sm.log1p(v), sm.tanh(v), sm.sigmoid(v)
    return out


def inputs(dtype):
    """Random magnitudes over every binade, both signs, plus the edges: overflow and underflow
    thresholds, denormals, zeros, infinities and NaN."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(7)
    low, high = np.log10(info.smallest_subnormal), np.log10(info.max)
    random = rng.choice([-1, 1], 300_000) * 10.0 ** rng.uniform(low, high, 300_000)
    edges = (88.72, 89.0, -87.3, -103.97, -104.0) if dtype == np.float32 else (709.78, 709.79, -708.4, -745.13, -746.0)
    sweeps = [np.linspace(e - 2, e + 2, 2001) for e in edges] + [np.linspace(-25, 25, 20001)]
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, info.tiny, info.tiny / 2, info.smallest_subnormal,
               -info.smallest_subnormal, info.max, -info.max, 1.0, -1.0, -1 + info.eps]
    denormals = np.geomspace(info.smallest_subnormal, info.tiny, 2000)
    with np.errstate(over="ignore"):
        return np.concatenate([random, *sweeps, special, denormals, 1 + denormals]).astype(dtype)


def ulp_errors(got, x, name, dtype):
    with np.errstate(all="ignore"):
        want = REFERENCE[name](x.astype(np.longdouble))
        rounded = want.astype(dtype)
        spacing = np.spacing(np.abs(rounded)).astype(np.longdouble)
        errors = np.abs(got.astype(np.longdouble) - want) / spacing
    exact = (got == rounded) | (np.isnan(got) & np.isnan(want))
    return np.where(exact, 0.0, errors), rounded


@pytest.fixture(scope="module", params=[np.float32, np.float64], ids=["float32", "float64"])
def results(request):
    dtype = request.param
    x = inputs(dtype)
    return dtype, x, _apply_all(x)


@pytest.mark.parametrize("name", NAMES)
def test_accuracy_in_ulps(results, name):
    dtype, x, out = results
    got = out[NAMES.index(name)]
    assert got.dtype == dtype
    errors, rounded = ulp_errors(got, x, name, dtype)
    worst = int(np.argmax(errors))
    assert errors[worst] <= MAX_ULPS[name], f"{name}({x[worst]!r}) = {got[worst]!r}, want {rounded[worst]!r}"


@pytest.mark.parametrize("name", NAMES)
def test_special_values_follow_ieee(results, name):
    dtype, x, out = results
    got = dict(zip(map(float, x[-(2000 * 2 + 14):-(2000 * 2)]), out[NAMES.index(name)][-(2000 * 2 + 14):-(2000 * 2)]))
    want = {"exp": (1, 1, math.inf, 0), "expm1": (0, -0.0, math.inf, -1), "log": (-math.inf, -math.inf, math.inf, math.nan),
            "log1p": (0, -0.0, math.inf, math.nan), "tanh": (0, -0.0, 1, -1), "sigmoid": (0.5, 0.5, 1, 0)}[name]
    for value, expected in zip((0.0, -0.0, math.inf, -math.inf), want):
        assert got[value] == expected or (math.isnan(expected) and math.isnan(got[value])), (name, value, got[value])
    assert math.isnan(out[NAMES.index(name)][np.isnan(x)][0])
    if name in ("expm1", "log1p", "tanh"):  # odd near 0: the sign of zero is kept
        assert math.copysign(1, got[-0.0]) == -1


def test_log_of_negatives_is_nan_and_of_denormals_finite(results):
    dtype, x, out = results
    log = out[NAMES.index("log")]
    assert np.all(np.isnan(log[x < 0]))
    tiny = (x > 0) & (x < np.finfo(dtype).tiny)
    assert np.all(np.isfinite(log[tiny])) and tiny.any()


def test_each_function_body_has_a_name_of_its_own(results):
    """Numba names a compiled function by qualified name and a per-process counter. The six bodies were
    one anonymous lambda each, so a kernel loaded from Numba's cache, calling `<lambda>` number k by
    name, was bound to this process's k-th lambda: in the full test suite a cached kernel's exp ran as
    log (NaN gradients in test_second_order)."""
    dtype, x, out = results
    ir = _apply_all.inspect_llvm(_apply_all.signatures[[s[0].dtype for s in _apply_all.signatures].index(numba.from_dtype(dtype))])
    width = np.dtype(dtype).itemsize * 8
    for name in NAMES:
        body = f"{name}_float{width}"
        assert f"scalar_math{len(body)}{body}B" in ir, f"no function named {body} in the kernel"
    assert not re.search(r"scalar_math\w*lambda", ir)


def test_accumulate_reassociates_only_the_sum():
    @numba.njit(error_model="numpy")
    def total(x):
        acc = np.float32(0)
        for i in range(x.size):
            acc = sm.accumulate(acc, sm.exp(x[i]))
        return acc
    x = np.linspace(-3, 3, 10_001).astype(np.float32)
    assert total(x) == pytest.approx(np.exp(x.astype(np.float64)).sum(), rel=1e-5)
    ir = total.inspect_llvm(total.signatures[0])
    assert re.search(r"fadd reassoc <\d+ x float>", ir), "the summing loop did not vectorize"
    assert not re.search(r"fadd (fast|nnan|ninf)", ir)


def test_elementwise_loop_vectorizes():
    @numba.njit(error_model="numpy")
    def chain(x, out):
        for i in range(x.size):
            out[i] = sm.tanh(x[i]) * sm.sigmoid(x[i]) + sm.log(sm.exp(x[i]) + np.float32(1))
    x = np.ones(64, np.float32)
    chain(x, np.empty_like(x))
    ir = chain.inspect_llvm(chain.signatures[0])
    assert re.search(r"<\d+ x float>", ir) and not re.search(r"call \w+ @(expf|tanhf|logf)", ir)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 assembly")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "log", "expm1", "log1p"])
def test_each_function_vectorizes_in_the_machine_code(name, dtype):
    """Each function alone, in a plain loop, compiles to packed vector arithmetic (a loop calling libm's
    math.tanh has none): on an Intel Xeon tanh, sigmoid and log compiled to scalar code while exp
    vectorized, which a test of all of them in one loop (above) did not see."""
    function = getattr(sm, name)

    @numba.njit(error_model="numpy")
    def loop(x, out):
        for i in range(x.size):
            out[i] = function(x[i])
    x = np.ones(64, dtype)
    loop(x, np.empty_like(x))
    asm = loop.inspect_asm(loop.signatures[0])
    packed = "ps" if dtype == "float32" else "pd"
    assert re.search(rf"\bv?(?:mul|add|sub|fn?madd\d+|fn?msub\d+){packed}\s", asm), \
        f"{name} ({dtype}) did not vectorize on this CPU ({cpu_name()})"


def cpu_name():
    import llvmlite.binding as llvm
    return llvm.get_host_cpu_name()
