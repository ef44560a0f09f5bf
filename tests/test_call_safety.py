"""Calls that can't go silently wrong: updates are simultaneous, a call that raises changes nothing,
overlapping arguments are copied or refused, and every call path checks dtype, byte order, layout,
alignment and scalar types itself (the ahead-of-time kernel and Numba's dispatcher get the same)."""
import ast
import decimal
import fractions
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import binder


@pytest.fixture(scope="module")
def rotations():
    """One graph holding every kind of update that reads another update's target: a rotation, a swap
    through transposes, a swap through reshapes, and W_prev <- W beside W <- W - 0.5."""
    a, b, c = (gc.tensor(k, (3,), "float64") for k in "abc")
    P, Q = gc.tensor("P", (2, 2), "float64"), gc.tensor("Q", (2, 2), "float64")
    R, S = gc.tensor("R", (2, 3), "float64"), gc.tensor("S", (3, 2), "float64")
    W, W_prev = gc.tensor("W", (4,), "float64"), gc.tensor("W_prev", (4,), "float64")
    updates = {a: b, b: c, c: a, P: Q.T, Q: P.T, R: gc.reshape(S, (2, 3)), S: gc.reshape(R, (3, 2)),
               W: W - 0.5, W_prev: W}
    return gc.compile([a, b, c, P, Q, R, S, W, W_prev], gc.sum(a) + gc.sum(W), updates=updates, name="rotations")


def test_updates_read_the_values_from_before_the_call(rotations):
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(3) for _ in range(3))
    P, Q, R, S = rng.standard_normal((2, 2)), rng.standard_normal((2, 2)), rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    W, W_prev = rng.standard_normal(4), rng.standard_normal(4)
    old = [x.copy() for x in (a, b, c, P, Q, R, S, W, W_prev)]
    value = rotations(a, b, c, P, Q, R, S, W, W_prev)
    oa, ob, oc, oP, oQ, oR, oS, oW, _ = old
    assert float(value) == pytest.approx(oa.sum() + oW.sum())
    for got, want in [(a, ob), (b, oc), (c, oa), (P, oQ.T), (Q, oP.T), (R, oS.reshape(2, 3)), (S, oR.reshape(3, 2)),
                      (W, oW - 0.5), (W_prev, oW)]:
        np.testing.assert_array_equal(got, want)


def test_a_swap_of_scalars_swaps():
    p, q = gc.tensor("p", (), "float64"), gc.tensor("q", (), "float64")
    f = gc.compile([p, q], p - q, updates={p: q, q: p})
    P, Q = np.array(1.0), np.array(2.0)
    assert float(f(P, Q)) == -1.0 and (float(P), float(Q)) == (2.0, 1.0)


@pytest.fixture(scope="module")
def checked_step():
    """An update the memory plan could write in place, computed before a label check that can fail."""
    w = gc.tensor("w", (3,), "float64")
    new_w = w - 1.0  # created first: scheduled before the cross-entropy gate and its label check
    scores, labels = gc.tensor("scores", (None, 3), "float64"), gc.tensor("labels", (None, 1), "int64")
    loss = -gc.mean(gc.take_along_axis(gc.log_softmax(scores * w, axis=1), labels, axis=1))
    return gc.compile([w, scores, labels], loss, updates={w: new_w}, name="checked_step")


def test_a_call_that_raises_leaves_the_callers_arrays_as_they_were(checked_step):
    w, scores = np.array([2.0, 2.0, 2.0]), np.ones((2, 3))
    with pytest.raises(gc.RunError, match=r"label is outside.*test_call_safety.py:\d+.*no argument was changed"):
        checked_step(w, scores, np.array([[0], [7]]))
    np.testing.assert_array_equal(w, [2.0, 2.0, 2.0])  # not half-updated, not updated twice
    checked_step(w, scores, np.array([[0], [2]]))
    np.testing.assert_array_equal(w, [1.0, 1.0, 1.0])  # one call, one update


@pytest.fixture(scope="module")
def accumulate():
    w, x = gc.tensor("w", (5,), "float64"), gc.tensor("x", (5,), "float64")
    return gc.compile([w, x], gc.sum(x), updates={w: w + x}, name="accumulate")


def test_an_input_overlapping_an_update_target_is_read_before_the_update(accumulate):
    memory = np.arange(1.0, 7.0)
    w, x = memory[1:], memory[:-1]  # x is w shifted back by one element
    accumulate(w, x)
    np.testing.assert_array_equal(w, [3.0, 5.0, 7.0, 9.0, 11.0])
    np.testing.assert_array_equal(memory, [1.0, 3.0, 5.0, 7.0, 9.0, 11.0])


def test_two_updated_inputs_sharing_memory_are_refused():
    a, b = gc.tensor("a", (4,), "float64"), gc.tensor("b", (4,), "float64")
    f = gc.compile([a, b], gc.sum(a), updates={a: a + 1.0, b: b * 2.0})
    same = np.zeros(4)
    with pytest.raises(gc.CallError, match="share memory"):
        f(same, same)
    np.testing.assert_array_equal(same, 0.0)


@pytest.fixture(scope="module")
def scaled():
    x = gc.tensor("x", (None, 3), "float32")
    s = gc.scalar("s", "float64")
    n = gc.scalar("n", "int32")
    return gc.compile([x, s, n], gc.sum(x) * gc.cast(s, "float32") + gc.cast(n, "float32"), name="scaled")


def odd_layouts():
    """(name, array) pairs holding the values 1..6 as a (2, 3) float32 array, in every layout a caller
    may hand over."""
    base = np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3)
    readonly = base.copy()
    readonly.flags.writeable = False
    raw = np.zeros(2 * 3 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(2, 3)  # one byte off: unaligned
    raw[...] = base
    wide = np.zeros((2, 6), np.float32)
    wide[:, ::2] = base
    return [("C", base), ("Fortran", np.asfortranarray(base)), ("big-endian", base.astype(">f4")),
            ("unaligned", raw), ("read-only", readonly), ("strided", wide[:, ::2]),
            ("broadcast", np.broadcast_to(np.arange(1.0, 4.0, dtype=np.float32), (2, 3)))]


@pytest.mark.parametrize("layout", [name for name, _ in odd_layouts()])
def test_inputs_in_any_layout_give_numpys_answer(scaled, layout):
    x = dict(odd_layouts())[layout]
    want = np.float32(x.astype(np.float64).sum() * 2.0 + 3)
    for _ in range(2):  # the second call must not reuse a type seen by the first (Numba's type cache)
        assert float(scaled(x, 2.0, 3)) == pytest.approx(float(want), rel=1e-6)
    assert float(scaled(dict(odd_layouts())["big-endian"], 2.0, 3)) == pytest.approx(45.0)


@pytest.mark.parametrize("bad", ["0.5", b"0.5", decimal.Decimal("0.5"), fractions.Fraction(1, 2), 1 + 2j,
                                 np.complex128(1), np.array([0.5]), None, [0.5]])
def test_scalars_accept_numbers_only(scaled, bad):
    with pytest.raises(gc.CallError, match=r"input 's' \(declared f64\[\] at test_call_safety.py:\d+\) expects a scalar"):
        scaled(np.ones((1, 3), np.float32), bad, 3)


@pytest.mark.parametrize("bad, words", [(2 ** 40, "out of range for int32"), (2.0, "float is not truncated"),
                                        (np.float64(2), "float is not truncated"), ("2", "got str")])
def test_int_scalars_are_checked(scaled, bad, words):
    with pytest.raises(gc.CallError, match=words):
        scaled(np.ones((1, 3), np.float32), 1.0, bad)


def test_zero_d_arrays_and_numpy_numbers_are_scalars(scaled):
    x = np.ones((1, 3), np.float32)
    for s, n in [(np.array(2.0), np.array(3)), (np.float32(2), np.int64(3)), (True, np.int32(3)), (2, True)]:
        assert float(scaled(x, s, n)) == 3 * float(s) + int(n)


def test_update_targets_must_be_writable_native_contiguous_and_aligned(accumulate):
    x = np.ones(5)
    for name, w in [("read-only", np.broadcast_to(np.zeros(1), (5,))), ("non-contiguous", np.zeros(10)[::2]),
                    ("byte-swapped", np.zeros(5, ">f8")), ("unaligned", np.zeros(41, np.uint8)[1:].view(np.float64))]:
        before = w.copy()
        with pytest.raises(gc.CallError, match="input 'w' .* is updated in place, so it must be"):
            accumulate(w, x)
        np.testing.assert_array_equal(w, before)


class Recorder:
    """Stands in for a kernel: records what the binder hands it."""

    def __init__(self, results):
        self.results, self.calls = results, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.results


def test_the_kernel_only_ever_receives_exact_types(scaled):
    """The ahead-of-time kernel unboxes without checking, so the binder must hand every path the
    kernel's exact types: native C-contiguous aligned arrays of the declared dtype, Python numbers."""
    recorder = Recorder((np.float32(1.0),))
    call, _ = binder.make_binder(scaled.ir, scaled._kernel, recorder, [], True)
    for _, x in odd_layouts():
        for s, n in [(2.0, 3), (np.array(2.0), np.int64(3)), (np.float32(2), True)]:
            call(x, s, n)
    for x, s, n in recorder.calls:
        assert type(x) is np.ndarray and x.dtype is np.dtype("float32") and x.ndim == 2
        assert x.flags.c_contiguous and x.flags.aligned and x.flags.writeable
        assert type(s) in (float, np.float64, np.float32) and type(n) in (int, np.int64, np.int32)


@pytest.mark.parametrize("names", [("Exception", "type"), ("r", "_x"), ("\uff59", "x")])
def test_input_names_never_change_the_binder(names):
    """The binder's own names start with an underscore; names Python would normalize (NFKC: the
    full-width x is x) or that would shadow a builtin fall back to positional parameters."""
    a, b = gc.tensor(names[0], (2,), "float64"), gc.tensor(names[1], (2,), "float64")
    f = gc.compile([a, b], gc.sum(a * b))
    assert float(f(np.ones(2), np.full(2, 3.0))) == 6.0
    with pytest.raises(gc.CallError, match="expects a numpy array"):
        f(np.ones(2), "not an array")


def test_hostile_names_and_paths_never_reach_generated_code_as_code(tmp_path):
    """A user's file path with a quote and newlines, and an input name with quotes, end up in kernel
    comments and messages: the kernel source must parse to the same code and run nothing else."""
    marker = tmp_path / "ran"
    run = "import os; os.mknod(os.environ['MARKER'])"  # no slash: the location keeps the file's basename
    path, name = f"evil'\n{run}\n#.py", f"x\"\"\"'); {run} #"
    code = 'x = gc.tensor(NAME, (2,), "float64")\nf = gc.compile([x], gc.sum(x * 2.0))'
    program = (f"import ast, numpy as np, graphc as gc\nNAME = {name!r}\nexec(compile({code!r}, {path!r}, 'exec'))\n"
               "ast.parse(f.source())\nprint(float(f(np.ones(2))))\n")
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "cache"), GRAPHC_AOT="0", MARKER=str(marker))
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4.0"] and not marker.exists()


def test_kernel_comments_are_single_lines():
    from graphc.runtime.codegen import comment
    text = comment("a\nb\rc\x00d\u2028e")
    assert "\n" not in text and "\r" not in text and "\x00" not in text and ast.parse(text).body == []


@pytest.fixture(scope="module")
def finite_step():
    x, w = gc.tensor("x", (None, 2), "float64"), gc.tensor("w", (2,), "float64")
    h = gc.log(x @ w)  # the forward NaN's line
    loss = gc.sum(h * h) + gc.sum(w ** 0.5)  # the backward Inf's line: d sqrt(w) at 0
    (g,) = gc.grad(loss, [w])
    return gc.compile([x, w], [loss, g], updates={w: w - 0.01 * g}, check_finite=True, name="finite_step")


def test_check_finite_names_the_first_node_that_produced_a_nan(finite_step):
    x, w = -np.ones((3, 2)), np.array([1.0, 0.5])
    line = finite_step.ir[finite_step.ir.inputs[0]]["loc"].split(":")[1]  # x's declaration; log is the next line
    with pytest.raises(gc.RunError, match=rf"check_finite: log .* produced NaN or Inf: f64\[N\], forward, "
                                          rf"test_call_safety.py:{int(line) + 1}; no argument was changed"):
        finite_step(x, w)
    np.testing.assert_array_equal(w, [1.0, 0.5])


def test_check_finite_names_backward_nodes(finite_step):
    w = np.array([1.0, 0.0])
    with pytest.raises(gc.RunError, match=r"produced NaN or Inf: .*backward, grad of pow at test_call_safety.py:\d+"):
        finite_step(np.ones((3, 2)), w)
    np.testing.assert_array_equal(w, [1.0, 0.0])


def test_check_finite_checks_inputs_and_passes_finite_calls(finite_step):
    x = np.ones((3, 2))
    x[1, 1] = np.inf
    with pytest.raises(gc.RunError, match="input 'x' holds NaN or Inf"):
        finite_step(x, np.ones(2))
    w = np.array([1.0, 4.0])
    loss, g = finite_step(np.ones((3, 2)), w)
    assert float(loss) == pytest.approx(3 * np.log(5.0) ** 2 + 3.0)
    np.testing.assert_allclose(w, np.array([1.0, 4.0]) - 0.01 * g)


def test_without_check_finite_nans_flow_through():
    x = gc.tensor("x", (2,), "float64")
    f = gc.compile([x], gc.sum(gc.log(x)))
    assert np.isnan(float(f(np.array([1.0, -1.0]))))
