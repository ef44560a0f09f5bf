"""Issue 12's ops beyond tests/test_ops.py's table (which checks each op's values in float32 and float64
against NumPy and its gradients against central differences; TIE_RULES there pins min's ties, prod's
zeros, x ** 0 at 0, floor's and std's flat spots): NumPy's edge cases (NaN, ties, first occurrence,
stable order, integer and bool dtypes, ddof beyond the count, log1p near 0), NumPy's entry points,
second-order gradients of prod at zeros and of x ** 0 at 0, sizes in arithmetic over two batch sizes
without a recompile, fusion, and declaration errors.

One compiled function computes every value checked here (a module fixture); shapes are tiny.
"""
import numpy as np
import pytest

import graphc as gc
from graphc import passes
from graphc.printer import format_graph
from graphc.runtime.compile import COUNTS

from numeric_gradient import central_differences
from test_ops import scalar_function

NAN = np.nan
# ties, a NaN in the first row: NumPy's first occurrence, a NaN counting as the extreme
T_VALUES = np.array([[1.0, 3.0, 3.0, NAN, 3.0], [2.0, -1.0, -1.0, 2.0, 0.0]])
I_VALUES = np.array([[3, 1, 3, 0], [-2, 1, 1, -2], [0, 0, 5, 5]], np.int32)
B_VALUES = np.array([True, False, True, True, False])
L_VALUES = np.array([1e-17, -1e-17, 3e-300, 1e-10, -0.5])
P_VALUES = np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 3.0], [0.5, 2.0, -1.5]])  # one zero, two, none
V_VALUES = np.array([1.0, 2.0, 4.0])


def _stability_values():
    """float32 with many ties and NaNs: a stable order is one permutation among many."""
    values = np.random.default_rng(3).integers(0, 3, size=(5, 6)).astype(np.float32)
    values[1, 2] = values[3, 0] = values[3, 4] = NAN
    return values


K_VALUES = _stability_values()


def declare():
    t = gc.tensor("t", (2, 5), "float64")
    i = gc.tensor("i", (3, 4), "int32")
    b = gc.tensor("b", (5,), "bool")
    k = gc.tensor("k", (None, 6), "float32")
    l64, l32 = gc.tensor("l64", (5,), "float64"), gc.tensor("l32", (5,), "float32")
    v = gc.tensor("v", (3,), "float64")
    s = gc.tensor("s", (None, 4), "float64")
    s32 = gc.tensor("s32", (None, 4), "float32")
    p, p_dir = gc.tensor("p", (3, 3), "float64"), gc.tensor("p_dir", (3, 3), "float64")
    z = gc.tensor("z", (2,), "float64")
    n = s.shape[0]
    # (label, value, expected(feeds) -> NumPy's array)
    checks = [
        ("log1p near 0", gc.log1p(l64), lambda a: np.log1p(a["l64"])),
        ("log1p near 0 f32", gc.log1p(l32), lambda a: np.log1p(a["l32"])),
        ("expm1 near 0", gc.expm1(l64), lambda a: np.expm1(a["l64"])),
        ("argmax rows", gc.argmax(t, axis=1), lambda a: np.argmax(a["t"], axis=1)),
        ("argmin rows", gc.argmin(t, axis=1), lambda a: np.argmin(a["t"], axis=1)),
        ("argmax columns keepdims", gc.argmax(t, axis=0, keepdims=True), lambda a: np.argmax(a["t"], 0, keepdims=True)),
        ("argmax flattened", gc.argmax(t), lambda a: np.argmax(a["t"])),
        ("argmin flattened keepdims", gc.argmin(i, keepdims=True), lambda a: np.argmin(a["i"], keepdims=True)),
        ("argmax int32", gc.argmax(i, axis=1), lambda a: np.argmax(a["i"], axis=1)),
        ("argmin int32 columns", gc.argmin(i, axis=-2), lambda a: np.argmin(a["i"], axis=0)),
        ("argmax bool", gc.argmax(b), lambda a: np.argmax(a["b"])),
        ("argmax over the batch", gc.argmax(s, axis=0), lambda a: np.argmax(a["s"], axis=0)),
        ("min NaN", gc.min(t, axis=1), lambda a: np.min(a["t"], axis=1)),
        ("min all NaN", gc.min(t), lambda a: np.min(a["t"])),
        ("min int32", gc.min(i, axis=0), lambda a: np.min(a["i"], axis=0)),
        ("min bool", gc.min(b), lambda a: np.min(a["b"])),
        ("prod int32 in int64", gc.prod(i, axis=0), lambda a: np.prod(a["i"], axis=0)),
        ("prod bool in int64", gc.prod(b), lambda a: np.prod(a["b"])),
        ("prod NaN", gc.prod(t, axis=1, keepdims=True), lambda a: np.prod(a["t"], axis=1, keepdims=True)),
        ("cumsum flattened int32 in int64", gc.cumsum(i), lambda a: np.cumsum(a["i"])),
        ("cumsum bool", gc.cumsum(b), lambda a: np.cumsum(a["b"])),
        ("cumsum NaN", gc.cumsum(t, axis=-1), lambda a: np.cumsum(a["t"], axis=-1)),
        ("argsort stable rows", gc.argsort(k), lambda a: np.argsort(a["k"], kind="stable")),
        ("argsort stable columns", gc.argsort(k, axis=0), lambda a: np.argsort(a["k"], axis=0, kind="stable")),
        ("argsort stable flattened", gc.argsort(k, axis=None, kind="quicksort"),
         lambda a: np.argsort(a["k"], axis=None, kind="stable")),
        ("argsort int32", gc.argsort(i, axis=0), lambda a: np.argsort(a["i"], axis=0, kind="stable")),
        ("argsort bool", gc.argsort(b), lambda a: np.argsort(a["b"], kind="stable")),
        ("sort NaN last", gc.sort(k, axis=0), lambda a: np.sort(a["k"], axis=0)),
        ("sort flattened", gc.sort(k, axis=None), lambda a: np.sort(a["k"], axis=None)),
        ("var int32 in float64", gc.var(i, axis=1, ddof=1), lambda a: np.var(a["i"], axis=1, ddof=1)),
        ("std keepdims", gc.std(t[1:], axis=(0, 1), keepdims=True),
         lambda a: np.std(a["t"][1:], axis=(0, 1), keepdims=True)),
        ("var ddof = n", gc.var(v, ddof=3), lambda a: np.var(a["v"], ddof=3)),
        ("var ddof > n", gc.var(v, ddof=5), lambda a: np.var(a["v"], ddof=5)),
        ("var float ddof", gc.var(v, ddof=0.5), lambda a: np.var(a["v"], ddof=0.5)),
        # NumPy's functions and methods reach graphc's ops
        ("np.prod", np.prod(t[1:], axis=1), lambda a: np.prod(a["t"][1:], axis=1)),
        ("np.min", np.min(t[1:]), lambda a: np.min(a["t"][1:])),
        ("np.argmax", np.argmax(t, axis=1), lambda a: np.argmax(a["t"], axis=1)),
        ("np.cumsum", np.cumsum(i, axis=1), lambda a: np.cumsum(a["i"], axis=1)),
        ("np.var", np.var(v, ddof=1), lambda a: np.var(a["v"], ddof=1)),
        ("np.std", np.std(v), lambda a: np.std(a["v"])),
        ("np.argsort", np.argsort(i), lambda a: np.argsort(a["i"], kind="stable")),
        ("np.round", np.round(v * 1.5), lambda a: np.round(a["v"] * 1.5)),
        ("np.floor, np.mod, np.square", np.floor(v * 0.7) + np.mod(v, -1.5) + np.square(v) + np.reciprocal(v),
         lambda a: np.floor(a["v"] * 0.7) + np.mod(a["v"], -1.5) + np.square(a["v"]) + np.reciprocal(a["v"])),
        ("methods", t[1].min() + t[1].prod() + t.cumsum(axis=1)[1, -1] + i.argmax(axis=0)
         + i.argsort(axis=0)[0] + v.var() + v.std(ddof=1) + v.round()[0],
         lambda a: (a["t"][1].min() + a["t"][1].prod() + a["t"].cumsum(1)[1, -1] + a["i"].argmax(0)
                    + a["i"].argsort(0, kind="stable")[0] + a["v"].var() + a["v"].std(ddof=1) + a["v"].round()[0])),
        # call-time sizes in arithmetic: shapes and numbers, read when the function runs
        ("reshape to n * 2 rows", gc.reshape(s, (n * 2, -1)), lambda a: a["s"].reshape(len(a["s"]) * 2, -1)),
        ("mean as sum / n", gc.sum(s, axis=0) / n, lambda a: a["s"].sum(axis=0) / len(a["s"])),
        ("f32 sum / n stays f32", gc.sum(s32, axis=0) / s32.shape[0], lambda a: a["s32"].sum(axis=0) / len(a["s32"])),
        ("n // 2 rows", gc.broadcast_to(gc.sum(s, axis=0), (n // 2, 4)),
         lambda a: np.broadcast_to(a["s"].sum(axis=0), (len(a["s"]) // 2, 4))),
        ("sizes as numbers", gc.max(s) * (n // 2) + (n - 1) * 1.5 + n / 4 + n % 3 + (2 * n + 1) * gc.min(s),
         lambda a: (a["s"].max() * (len(a["s"]) // 2) + (len(a["s"]) - 1) * 1.5 + len(a["s"]) / 4 + len(a["s"]) % 3
                    + (2 * len(a["s"]) + 1) * a["s"].min())),
    ]
    # second order: prod at zeros (exact: the products of all but two), x ** 0 at 0 (0, not NaN)
    y = gc.sum(gc.grad(gc.sum(gc.prod(p, axis=1)), p) * p_dir)
    power = gc.grad(gc.sum(gc.grad(gc.sum(z ** 0), z) + gc.grad(gc.sum(z ** 1), z) * z), z)
    inputs = [t, i, b, k, l64, l32, v, s, s32, p, p_dir, z]
    outputs = [value for _, value, _ in checks] + [gc.grad(y, p), power]
    return inputs, outputs, checks, y


def feeds(batch):
    rng = np.random.default_rng(batch)
    return {"t": T_VALUES, "i": I_VALUES, "b": B_VALUES, "k": K_VALUES[:batch], "l64": L_VALUES,
            "l32": L_VALUES.astype(np.float32), "v": V_VALUES, "s": rng.standard_normal((batch, 4)),
            "s32": rng.standard_normal((batch, 4)).astype(np.float32), "p": P_VALUES,
            "p_dir": rng.standard_normal((3, 3)), "z": np.array([0.0, 2.0])}


@pytest.fixture(scope="module")
def compiled():
    inputs, outputs, checks, y = declare()
    return gc.compile(inputs, outputs, name="ops_more"), inputs, checks, y


def _run(compiled, batch):
    f, inputs, checks, _ = compiled
    arrays = feeds(batch)
    return f(*[arrays[x.name] for x in inputs]), arrays


@pytest.mark.filterwarnings("ignore:Degrees of freedom <= 0")  # NumPy's, for ddof >= n (inf, as graphc gives)
@pytest.mark.parametrize("batch", [4, 5])
def test_values_match_numpy(compiled, batch):
    results, arrays = _run(compiled, batch)
    with np.errstate(all="ignore"):
        for (label, _, expected), got in zip(compiled[2], results):
            want = np.asarray(expected(arrays))
            assert (got.dtype, got.shape) == (want.dtype, want.shape), (label, got.dtype, want.dtype, got.shape)
            if got.dtype.kind in "ib":  # indices and counts: exactly NumPy's
                np.testing.assert_array_equal(got, want, err_msg=label)
            else:
                np.testing.assert_allclose(got, want, rtol=2e-6 if got.dtype == np.float32 else 1e-12, atol=0,
                                           err_msg=label)


def test_log1p_and_expm1_keep_tiny_values_exactly(compiled):
    results, _ = _run(compiled, 4)
    assert results[0][0] == 1e-17 and results[0][1] == -1e-17 and results[0][2] == 3e-300
    assert results[2][0] == 1e-17 and results[1][0] == np.float32(1e-17)


def test_sizes_in_arithmetic_recompile_nothing_across_batch_sizes(compiled):
    _run(compiled, 4)
    before = dict(COUNTS)
    results, _ = _run(compiled, 6)
    labels = [label for label, _, _ in compiled[2]]
    assert results[labels.index("reshape to n * 2 rows")].shape == (12, 2)
    assert results[labels.index("n // 2 rows")].shape == (3, 4)
    assert dict(COUNTS) == before


def test_argmax_over_an_empty_call_time_axis_raises(compiled):
    with pytest.raises(gc.RunError, match="argmax: attempt to get argmax of an empty sequence"):
        _run(compiled, 0)


def test_second_order_of_prod_at_zeros_and_of_pow_zero(compiled):
    results, arrays = _run(compiled, 4)
    f, inputs, _, y = compiled
    second, power = results[-2:]
    values = [arrays[x.name] for x in inputs]
    k = next(j for j, x in enumerate(inputs) if x.name == "p")
    numeric = central_differences(scalar_function(y, inputs), values, k)
    np.testing.assert_allclose(second, numeric, rtol=1e-6, atol=1e-7)
    # d2/dz2 of sum(z ** 0) is 0; of z ** 1 (through z * d/dz z ** 1 = z) it is 1; no NaN at z = 0
    np.testing.assert_array_equal(power, [1.0, 1.0])


def _final_graph(outputs, inputs):
    return passes.run_pipeline(gc.lower(outputs, inputs), passes.PIPELINE).graph


def test_new_elementwise_ops_and_min_fuse_into_one_loop():
    x = gc.tensor("x", (None, 3), "float32")
    graph = _final_graph([gc.sin(x) * gc.cos(x) + 1, gc.min(gc.arctan(x) * 2.0, axis=1)], [x])
    nodes = [n for n in graph.order() if graph.op(n) != "input"]
    assert [graph.op(n) for n in nodes] == ["fused", "fused"], format_graph(graph)
    text = format_graph(graph)
    assert "fused{sin(i0)*cos(i0)+1}" in text and "fused{min[1](arctan(i0)*2)}" in text, text


DECLARATION_ERRORS = [
    # (failing declaration, exception class, words the message must hold besides the line)
    (lambda: gc.argmax(gc.tensor("a", (2, 5)), axis=2), gc.ShapeError, ["argmax", "f32[2,5]", "axis 2"]),
    (lambda: gc.argmin(gc.tensor("a", (0, 3)), axis=0), gc.ShapeError, ["argmin", "f32[0,3]", "empty"]),
    (lambda: gc.cumsum(gc.tensor("a", (2, 5)), axis=-3), gc.ShapeError, ["cumsum", "f32[2,5]", "axis -3"]),
    (lambda: gc.sort(gc.tensor("a", (2, 5)), axis=1.5), gc.ShapeError, ["sort", "f32[2,5]", "float 1.5"]),
    (lambda: gc.sort(gc.scalar("a")), gc.ShapeError, ["sort", "f32[]", "axis -1"]),
    (lambda: gc.argsort(gc.tensor("a", (3,)), kind="fast"), gc.ShapeError, ["argsort", "f32[3]", "kind", "'fast'"]),
    (lambda: gc.min(gc.tensor("a", (2, 5)), axis=(0, -2)), gc.ShapeError, ["min", "f32[2,5]", "repeated"]),
    (lambda: gc.prod(gc.tensor("a", (None, 5)), axis=3), gc.ShapeError, ["prod", "f32[?,5]", "axis 3"]),
    (lambda: gc.var(gc.tensor("a", (2, 5)), axis=(1, 2)), gc.ShapeError, ["var", "f32[2,5]", "axis 2"]),
    (lambda: gc.std(gc.tensor("a", (2,)), ddof="1"), gc.ShapeError, ["std", "f32[2]", "ddof", "str"]),
    (lambda: gc.reciprocal(gc.tensor("a", (3,), "int32")), gc.DTypeError, ["reciprocal", "i32[3]", "float"]),
    (lambda: gc.round(gc.tensor("a", (3,)), 2), gc.ShapeError, ["round", "f32[3]", "decimals"]),
    (lambda: gc.mod(gc.tensor("a", (3,), "bool"), 2), gc.DTypeError, ["mod", "bool[3]"]),
    (lambda: gc.floor(gc.tensor("a", (3,)) > 0), gc.DTypeError, ["floor", "bool[3]"]),
    (lambda: gc.arcsin("half"), gc.GraphcError, ["arcsin", "str"]),
    (lambda: gc.tensor("a", (None,)).shape[0] * "two", gc.GraphcError, ["size arithmetic (*)", "str 'two'"]),
    (lambda: np.ones(2) + gc.tensor("a", (None,)).shape[0], gc.GraphcError, ["size arithmetic (+)", "ndarray"]),
    (lambda: gc.tensor("a", (None,)).shape[0] // 0, gc.ShapeError, ["size arithmetic (//)", "by 0"]),
]


@pytest.mark.parametrize("declare_bad, error_class, words", DECLARATION_ERRORS,
                         ids=[" ".join(words[:2]) for _, _, words in DECLARATION_ERRORS])
def test_declaration_errors_name_the_op_types_and_line(declare_bad, error_class, words):
    with pytest.raises(error_class) as caught:
        declare_bad()
    message = str(caught.value)
    assert f"test_ops_more.py:{declare_bad.__code__.co_firstlineno}" in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_a_size_of_an_input_not_compiled_is_refused_by_name():
    x, other = gc.tensor("x", (None,), "float64"), gc.tensor("other", (None,), "float64")
    with pytest.raises(gc.ShapeError, match=r"shape_of at test_ops_more.py:\d+: other.shape\[0\] is a size of an input"):
        gc.compile([x], gc.sum(x) / other.shape[0])


def test_size_arithmetic_keeps_sizes_and_ints():
    x = gc.tensor("x", (None, 4), "float64")
    n = x.shape[0]
    assert n * 1 is n and 0 + n is n and n - 0 is n and n // 1 is n and n * 0 == 0
    assert gc.reshape(x, (n * 2, -1)).shape[1] == 2 and gc.reshape(x, (-1, n)).shape[0] == 4
    assert (n * 2 * 3).factor == 3 and gc.reshape(gc.reshape(x, (n * 2, 2)), (n, 4)).shape[0] is n
    bound = gc.tensor("u", (None,), "float64")
    size = bound.shape[0]
    _ = bound + np.ones(3)  # binds the call-time size to 3
    assert size * 2 == 6 and size // 2 == 1 and size - 1 == 2
    assert (gc.sum(x) / n).dtype == "float64" and (n / 2).dtype == "float64" and (n * 2.5).dtype == "float64"
