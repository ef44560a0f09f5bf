"""gc.scan: an Elman RNN as a scan against its unrolled form and against NumPy (values, and gradients
against central differences in float64), a tuple carry with tuple xs and ys, reverse, a call-time
length without recompiling, second order, the generated code not growing with T, kernels shared by
scans of one shape, saving and loading, and the errors. One module-scoped compile holds most cases."""
import re

import numpy as np
import pytest

import graphc as gc
from graphc import passes
from graphc.errors import DTypeError, GraphcError, ShapeError
from graphc.runtime import codegen
from graphc.runtime.compile import COUNTS
from graphc.scan import scan

from numeric_gradient import central_differences

B, D, H, T = 2, 3, 4, 3
RTOL, ATOL = 1e-6, 1e-8


def cell(h, x, Wx, Wh, b):
    return gc.tanh(x @ Wx + h @ Wh + b)


def rnn_numpy(Wx, Wh, b, h0, xs, reverse=False):
    h, hs = h0, [None] * len(xs)
    for t in (reversed(range(len(xs))) if reverse else range(len(xs))):
        h = hs[t] = np.tanh(xs[t] @ Wx + h @ Wh + b)
    return h, np.stack(hs) if hs else np.zeros((0,) + h0.shape)


def loss_numpy(Wx, Wh, b, h0, xs, reverse=False):
    h, hs = rnn_numpy(Wx, Wh, b, h0, xs, reverse)
    return 0.5 * np.sum(hs * hs) + np.sum(h)


def masked_numpy(Wx, Wh, b, h0, xs, mask):
    """The tuple scan's reference: the carry (h, steps), xs (x, mask), ys (h, per-row sum of h*h)."""
    h, steps, hs, sums = h0, 0, [], []
    for x, m in zip(xs, mask):
        h = np.where(m[:, None] > 0.5, np.tanh(x @ Wx + h @ Wh + b), h)
        steps += 1
        hs.append(h)
        sums.append(np.sum(h * h, axis=1))
    return h, steps, np.stack(hs), np.stack(sums)


def masked_loss_numpy(Wx, Wh, b, h0, xs, mask):
    h, _, hs, sums = masked_numpy(Wx, Wh, b, h0, xs, mask)
    return np.sum(hs) + 0.5 * np.sum(sums) + np.sum(h * h)


def sample(length, seed=0):
    rng = np.random.default_rng(seed)
    return {"Wx": rng.standard_normal((D, H)) * 0.5, "Wh": rng.standard_normal((H, H)) * 0.5,
            "b": rng.standard_normal(H) * 0.5, "h0": rng.standard_normal((B, H)), "xs": rng.standard_normal((length, B, D)),
            "mask": (rng.random((length, B)) > 0.3).astype(np.float64), "S": rng.standard_normal((H, H))}


@pytest.fixture(scope="module")
def rnn():
    """One compile: the scan RNN (call-time T) and its gradients, the same RNN unrolled over T steps, the
    tuple scan, the reverse scan, and the scan RNN's second order. Wh is a gc.shared parameter."""
    xs, xu = gc.tensor("xs", (None, B, D), "float64"), gc.tensor("xu", (T, B, D), "float64")
    mask, S = gc.tensor("mask", (None, B), "float64"), gc.tensor("S", (H, H), "float64")
    h0, Wx, b = gc.tensor("h0", (B, H), "float64"), gc.tensor("Wx", (D, H), "float64"), gc.tensor("b", (H,), "float64")
    Wh = gc.shared(np.zeros((H, H)), name="Wh")
    wrt = [Wx, Wh, b, h0]

    def step(h, x):
        h = cell(h, x, Wx, Wh, b)
        return h, h
    hT, hs = scan(step, h0, xs)
    loss = 0.5 * gc.sum(hs * hs) + gc.sum(hT)
    h, unrolled = h0, []
    for t in range(T):
        h = cell(h, xu[t], Wx, Wh, b)
        unrolled.append(gc.reshape(h, (1, B, H)))
    hs_u = gc.concatenate(unrolled, 0)
    loss_u = 0.5 * gc.sum(hs_u * hs_u) + gc.sum(h)

    def masked(carry, inputs):
        (h, steps), (x, m) = carry, inputs
        h = gc.where(gc.reshape(m, (B, 1)) > 0.5, cell(h, x, Wx, Wh, b), h)
        return (h, steps + 1), (h, gc.sum(h * h, axis=1))
    (hT_m, steps), (hs_m, sums) = scan(masked, (h0, 0), (xs, mask))
    loss_m = gc.sum(hs_m) + 0.5 * gc.sum(sums) + gc.sum(hT_m * hT_m)
    hT_r, hs_r = scan(step, h0, xs, reverse=True)
    loss_r = 0.5 * gc.sum(hs_r * hs_r) + gc.sum(hT_r)
    z = gc.sum(gc.grad(loss, Wh) * S)
    named = {"hT": hT, "hs": hs, "loss": loss, "grads": gc.grad(loss, wrt + [xs]),
             "hT_u": h, "hs_u": hs_u, "loss_u": loss_u, "grads_u": gc.grad(loss_u, wrt + [xu]),
             "hT_m": hT_m, "steps": steps, "hs_m": hs_m, "sums": sums, "loss_m": loss_m,
             "grads_m": gc.grad(loss_m, wrt + [xs]), "hT_r": hT_r, "hs_r": hs_r, "grads_r": gc.grad(loss_r, wrt + [xs]),
             "z": z, "second": gc.grad(z, [Wx, Wh])}
    outputs, slots = [], {}
    for name, value in named.items():
        values = value if isinstance(value, list) else [value]
        slots[name] = slice(len(outputs), len(outputs) + len(values)) if isinstance(value, list) else len(outputs)
        outputs += values
    f = gc.compile([xs, xu, mask, S, h0, Wx, b], outputs, name="scan_rnn")

    def run(values):
        Wh.set_value(values["Wh"])
        results = f(values["xs"], values["xs"][:T] if len(values["xs"]) >= T else np.zeros((T, B, D)), values["mask"],
                    values["S"], values["h0"], values["Wx"], values["b"])
        return {name: results[slot] for name, slot in slots.items()}
    return f, run


ARGS = ["Wx", "Wh", "b", "h0", "xs"]


def test_scan_and_unrolled_rnn_agree_on_values_and_gradients(rnn):
    _, run = rnn
    got = run(sample(T))
    for scanned, unrolled in [("hT", "hT_u"), ("hs", "hs_u"), ("loss", "loss_u")]:
        np.testing.assert_allclose(got[scanned], got[unrolled], rtol=1e-12, atol=1e-14, err_msg=scanned)
    for name, g, g_u in zip(ARGS, got["grads"], got["grads_u"]):
        np.testing.assert_allclose(g, g_u, rtol=1e-12, atol=1e-14, err_msg=f"d loss / d {name}")


def test_scan_rnn_values_and_gradients_against_numpy(rnn):
    _, run = rnn
    values = sample(T, seed=1)
    got = run(values)
    hT, hs = rnn_numpy(*[values[a] for a in ARGS])
    np.testing.assert_allclose(got["hT"], hT, rtol=1e-12)
    np.testing.assert_allclose(got["hs"], hs, rtol=1e-12)
    arrays = [values[a] for a in ARGS]
    for k, name in enumerate(ARGS):  # Wh is a gc.shared parameter: captured, and given its gradient
        numeric = central_differences(lambda a: loss_numpy(*a), arrays, k)
        np.testing.assert_allclose(got["grads"][k], numeric, rtol=RTOL, atol=ATOL, err_msg=f"d loss / d {name}")


def test_tuple_carry_tuple_xs_and_tuple_ys(rnn):
    _, run = rnn
    values = sample(T, seed=2)
    got = run(values)
    h, steps, hs, sums = masked_numpy(*[values[a] for a in ARGS], values["mask"])
    assert got["steps"].dtype == np.int64 and got["steps"] == T
    for name, want in [("hT_m", h), ("hs_m", hs), ("sums", sums)]:
        np.testing.assert_allclose(got[name], want, rtol=1e-12, err_msg=name)
    arrays = [values[a] for a in ARGS] + [values["mask"]]
    for k, name in enumerate(ARGS):
        numeric = central_differences(lambda a: masked_loss_numpy(*a), arrays, k)
        np.testing.assert_allclose(got["grads_m"][k], numeric, rtol=RTOL, atol=ATOL, err_msg=f"d loss / d {name}")


def test_reverse_scan(rnn):
    _, run = rnn
    values = sample(T, seed=3)
    got = run(values)
    hT, hs = rnn_numpy(*[values[a] for a in ARGS], reverse=True)
    np.testing.assert_allclose(got["hT_r"], hT, rtol=1e-12)
    np.testing.assert_allclose(got["hs_r"], hs, rtol=1e-12)
    arrays = [values[a] for a in ARGS]
    for k, name in enumerate(ARGS):
        numeric = central_differences(lambda a: loss_numpy(*a, reverse=True), arrays, k)
        np.testing.assert_allclose(got["grads_r"][k], numeric, rtol=RTOL, atol=ATOL, err_msg=f"d loss / d {name}")


@pytest.mark.parametrize("length", [5, 1, 0])
def test_a_call_time_length_runs_without_recompiling(rnn, length):
    f, run = rnn
    before = dict(COUNTS)
    values = sample(length, seed=4)
    got = run(values)
    assert dict(COUNTS) == before, "a new length compiled something"
    hT, hs = rnn_numpy(*[values[a] for a in ARGS])
    assert got["hs"].shape == (length, B, H) and got["grads"][4].shape == (length, B, D)
    np.testing.assert_allclose(got["hT"], hT, rtol=1e-12)
    np.testing.assert_allclose(got["hs"], hs, rtol=1e-12)
    np.testing.assert_allclose(got["loss"], loss_numpy(*[values[a] for a in ARGS]), rtol=1e-12)
    if length == 0:  # nothing ran: the final carry is h0, and only h0 has a gradient
        np.testing.assert_array_equal(got["grads"][3], np.ones((B, H)))
        assert not np.any(got["grads"][0]) and not np.any(got["grads"][1])


def test_second_order(rnn):
    """gc.grad of a gradient through the scan: the reverse scan's own vjp is a scan again."""
    _, run = rnn
    values = sample(T, seed=5)
    got = run(values)

    def z(arrays):
        return float(run(dict(values, Wx=arrays[0], Wh=arrays[1]))["z"])
    for k, name in enumerate(["Wx", "Wh"]):
        numeric = central_differences(z, [values["Wx"], values["Wh"]], k)
        np.testing.assert_allclose(got["second"][k], numeric, rtol=1e-5, atol=1e-7, err_msg=f"d z / d {name}")


def test_one_loop_computes_each_scan(rnn):
    """A scan's results (its final carries, its ys, the carries its backward reads) are one kernel call."""
    f, _ = rnn
    graph, scans = f.ir, {}
    for node in f.ir.g.nodes:
        if graph.op(node) == "scan":
            attrs = graph.attrs(node)
            scans.setdefault((graph.args(node), attrs["fn"], attrs["reverse"]), []).append(node)
    loops = [sorted(s.nodes) for s in graph.schedule.steps if graph.op(s.node) == "scan"]
    assert sorted(loops) == sorted(sorted(nodes) for nodes in scans.values())
    assert max(map(len, loops)) >= 3


def _rnn_source(length, unrolled):
    """The generated code (driver and library kernels) of an RNN's loss and gradients over `length`
    steps, without compiling it."""
    xs, h0 = gc.tensor("xs", (length, B, D), "float32"), gc.tensor("h0", (B, H), "float32")
    Wx, Wh, b = (gc.tensor(n, s, "float32") for n, s in [("Wx", (D, H)), ("Wh", (H, H)), ("b", (H,))])
    if unrolled:
        h = h0
        for t in range(length):
            h = cell(h, xs[t], Wx, Wh, b)
    else:
        h, _ = scan(lambda h, x: (cell(h, x, Wx, Wh, b), None), h0, xs)
    loss = gc.sum(h * h)
    graph = passes.run_pipeline(gc.lower([loss] + gc.grad(loss, [Wx, Wh, b]), [xs, h0, Wx, Wh, b]), passes.PIPELINE).graph
    return codegen.generate(graph).full_source()


def test_the_generated_code_does_not_grow_with_the_length():
    def shape_of(source):  # the code with its numbers (the length among them) blanked out
        return re.sub(r"\d+", "#", source)
    assert shape_of(_rnn_source(5, unrolled=False)) == shape_of(_rnn_source(50, unrolled=False))
    assert shape_of(_rnn_source(5, unrolled=True)) != shape_of(_rnn_source(6, unrolled=True))


def test_scans_of_one_shape_share_a_library_kernel():
    """Two stacked layers of one width: their scans are one library kernel, called by a Python driver."""
    xs = gc.tensor("xs", (None, B, H), "float64")
    layers = [(gc.tensor(f"W{k}", (H, H), "float64"), gc.tensor(f"U{k}", (H, H), "float64")) for k in range(2)]
    h0 = gc.tensor("h0", (B, H), "float64")
    seq, finals = xs, []
    for W, U in layers:
        hT, seq = scan(lambda h, x, W=W, U=U: (gc.tanh(x @ W + h @ U),) * 2, h0, seq)
        finals.append(hT)
    weights = [w for pair in layers for w in pair]
    f = gc.compile([xs, h0] + weights, [seq] + finals, name="stacked")
    assert f.source().count("@njit") == 1 and f.cache_info()["library_kernels"] == 1, f.source()
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((T, B, H)), rng.standard_normal((B, H))] + [rng.standard_normal((H, H)) * 0.5
                                                                            for _ in weights]
    seq_v, got = arrays[0], f(*arrays)
    for k in range(2):
        h_last, seq_v = rnn_numpy(arrays[2 + 2 * k], arrays[3 + 2 * k], 0.0, arrays[1], seq_v)
        np.testing.assert_allclose(got[1 + k], h_last, rtol=1e-12)
    np.testing.assert_allclose(got[0], seq_v, rtol=1e-12)
    loaded = gc.from_json(f.to_json()).compile()  # the step is data: the function saves, loads and caches
    assert loaded.cache_info()["status"] == "hit"
    for a, b in zip(loaded(*arrays), got):
        np.testing.assert_array_equal(a, b)


def test_a_tampered_step_is_refused():
    xs = gc.tensor("xs", (None, 2), "float64")
    _, ys = scan(lambda c, x: (c + x, c * x), gc.constant(np.zeros(2)), xs)
    text = gc.to_json([ys], inputs=[xs])
    assert '"step_function"' in text
    with pytest.raises(gc.GraphcError, match="unknown op 'evil'"):
        gc.from_json(text.replace('"op":"mul"', '"op":"evil"'))


def test_errors_name_the_problem_and_the_line():
    xs = gc.tensor("xs", (None, 3), "float64")
    h = gc.tensor("h", (3,), "float64")
    with pytest.raises(DTypeError, match=r"carry 0 is f64\[3\] and fn returns f32\[3\].*test_scan.py"):
        scan(lambda c, x: (gc.cast(c + x, "float32"), None), h, xs)
    with pytest.raises(ShapeError, match=r"carry 0 is f64\[3\] and fn returns f64\[1,3\]"):
        scan(lambda c, x: (gc.reshape(c + x, (1, 3)), None), h, xs)
    with pytest.raises(GraphcError, match=r"must return \(carry, y\)"):
        scan(lambda c, x: c + x, h, xs)
    with pytest.raises(GraphcError, match="init's structure"):
        scan(lambda c, x: ((c, c), None), h, xs)
    with pytest.raises(ShapeError, match="xs 0 is a scalar"):
        scan(lambda c, x: (c, None), h, gc.scalar("s", "float64"))
    with pytest.raises(ShapeError, match="the xs differ in length.*test_scan.py"):
        scan(lambda c, x: (c, None), h, (gc.tensor("a", (4, 3), "float64"), gc.tensor("b", (5, 3), "float64")))
