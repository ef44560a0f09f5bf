"""Errors users can hit: graphc's own exception classes, naming the op, the shapes/dtypes and the
user's file:line (declaration time), or the input and what came (call time); never a Numba traceback.

Each declaration-time case is a one-line lambda, so the line it was written on is the line the error
must name.
"""
import traceback

import numpy as np
import pytest

import graphc as gc

X = gc.tensor("x", (None, 3), "float64")
W = gc.tensor("w", (4,), "float64")
M = gc.tensor("m", (2, 5), "float64")
V32 = gc.tensor("v32", (3,), "float32")
LABELS = gc.tensor("labels", (None,), "int64")

DECLARATION = [
    # (name, failing declaration, exception class, words the message must hold besides the line)
    ("broadcast", lambda: X + W, gc.ShapeError, ["add", "f64[?,3]", "f64[4]", "broadcast"]),
    ("broadcast_number_side", lambda: 1.0 + M * W, gc.ShapeError, ["mul", "f64[2,5]", "f64[4]"]),
    ("matmul_inner", lambda: X @ W, gc.ShapeError, ["matmul", "f64[?,3]", "f64[4]", "inner sizes 3 and 4"]),
    ("matmul_inner_matrix", lambda: M @ M, gc.ShapeError, ["matmul", "f64[2,5]", "inner sizes 5 and 2"]),
    ("matmul_batch", lambda: gc.tensor("t", (2, 2, 3), "float64") @ gc.tensor("u", (3, 3, 2), "float64"), gc.ShapeError,
     ["matmul", "f64[2,2,3]", "batch dimensions"]),
    ("matmul_dtypes", lambda: V32 @ gc.tensor("v", (3,), "float64"), gc.DTypeError, ["matmul", "f32[3]", "f64[3]"]),
    ("sum_axis", lambda: gc.sum(X, axis=2), gc.ShapeError, ["sum", "f64[?,3]", "axis 2"]),
    ("mean_axes", lambda: gc.mean(X, axis=(0, 5)), gc.ShapeError, ["mean", "f64[?,3]", "(0, 5)"]),
    ("max_negative_axis", lambda: gc.max(X, axis=-3), gc.ShapeError, ["max", "f64[?,3]", "axis -3"]),
    ("repeated_axis", lambda: gc.sum(X, axis=(1, -1)), gc.ShapeError, ["sum", "repeated axis"]),
    ("logsumexp_axis", lambda: gc.logsumexp(M, axis=2), gc.ShapeError, ["logsumexp", "f64[2,5]", "axis 2"]),
    ("softmax_axis", lambda: gc.softmax(X, axis=2), gc.ShapeError, ["softmax", "f64[?,3]", "axis 2"]),
    ("softmax_float_axis", lambda: gc.softmax(X, axis=1.0), gc.ShapeError, ["softmax", "f64[?,3]", "int"]),
    ("log_softmax_axis", lambda: gc.log_softmax(X, axis=-3), gc.ShapeError, ["log_softmax", "axis -3"]),
    ("transpose_axes", lambda: gc.transpose(X, (0, 0)), gc.ShapeError, ["transpose", "f64[?,3]", "(0, 0)"]),
    ("transpose_rank", lambda: gc.transpose(X, (0, 1, 2)), gc.ShapeError, ["transpose", "(0, 1, 2)"]),
    ("reshape_size", lambda: gc.reshape(M, (3, 4)), gc.ShapeError, ["reshape", "f64[2,5]", "(3, 4)", "10 elements"]),
    ("reshape_minus_one", lambda: gc.reshape(M, (3, -1)), gc.ShapeError, ["reshape", "f64[2,5]", "(3, -1)"]),
    ("reshape_two_minus_ones", lambda: M.reshape(-1, -1), gc.ShapeError, ["reshape", "only one size may be -1"]),
    ("reshape_call_time", lambda: gc.reshape(X, (2, -1, 2)), gc.ShapeError, ["reshape", "f64[?,3]"]),
    ("broadcast_to", lambda: gc.broadcast_to(W, (3, 3)), gc.ShapeError, ["broadcast_to", "f64[4]", "(3, 3)"]),
    ("concatenate_sizes", lambda: gc.concatenate([M, gc.tensor("n", (3, 4), "float64")]), gc.ShapeError,
     ["concatenate", "f64[2,5]", "f64[3,4]"]),
    ("concatenate_axis", lambda: gc.concatenate([X, X], axis=2), gc.ShapeError, ["concatenate", "axis 2"]),
    ("concatenate_dtypes", lambda: gc.concatenate([V32, gc.tensor("v", (3,), "float64")]), gc.DTypeError,
     ["concatenate", "f32[3]", "f64[3]"]),
    ("take_along_axis_dtype", lambda: gc.take_along_axis(X, X, axis=1), gc.DTypeError, ["take_along_axis", "int"]),
    ("take_along_axis_axis", lambda: gc.take_along_axis(M, gc.tensor("i", (2, 1), "int64"), axis=2), gc.ShapeError,
     ["take_along_axis", "f64[2,5]", "i64[2,1]", "axis 2"]),
    ("take_along_axis_rank", lambda: gc.take_along_axis(M, LABELS, axis=1), gc.ShapeError, ["take_along_axis", "rank"]),
    ("getitem_bounds", lambda: W[5], gc.ShapeError, ["getitem", "f64[4]", "index 5"]),
    ("getitem_too_many", lambda: W[0, 1], gc.ShapeError, ["getitem", "f64[4]", "too many"]),
    ("getitem_mask", lambda: W[[True, False, True, True]], gc.DTypeError, ["getitem", "boolean masks", "gc.where"]),
    ("getitem_zero_step", lambda: W[::0], gc.ShapeError, ["getitem", "step"]),
    ("one_hot_labels", lambda: gc.one_hot(X, 3), gc.DTypeError, ["one_hot", "f64[?,3]", "int"]),
    ("one_hot_depth", lambda: gc.one_hot(LABELS, 0), gc.ShapeError, ["one_hot", "i64[?]", "depth"]),
    ("where_condition", lambda: gc.where(X, X, X), gc.DTypeError, ["where", "bool"]),
    ("bool_arithmetic", lambda: (X > 0) + (X > 0), gc.DTypeError, ["add", "bool[?,3]"]),
    ("bad_operand", lambda: X * "two", gc.GraphcError, ["mul", "str"]),
    ("unsupported_dtype_input", lambda: gc.tensor("h", (3,), "float16"), gc.DTypeError, ["'h'", "float16"]),
    ("unsupported_dtype_cast", lambda: gc.cast(X, "complex64"), gc.DTypeError, ["cast", "complex64", "f64[?,3]"]),
    ("unsupported_dtype_one_hot", lambda: gc.one_hot(LABELS, 3, dtype="float16"), gc.DTypeError, ["one_hot", "float16"]),
    ("bad_shape", lambda: gc.tensor("s", (3, -2)), gc.ShapeError, ["'s'", "-2"]),
    ("grad_of_non_scalar", lambda: gc.grad(X * 2.0, X), gc.GradientError, ["grad", "f64[?,3]", "scalar"]),
    ("grad_of_int", lambda: gc.grad(gc.sum(LABELS), LABELS), gc.GradientError, ["grad", "i64"]),
    ("grad_wrt_int", lambda: gc.grad(gc.sum(gc.cast(LABELS, "float64")), LABELS), gc.GradientError,
     ["grad", "i64[?]", "int64"]),
    ("grad_wrt_array", lambda: gc.grad(gc.sum(X), np.ones(3)), gc.GradientError, ["grad", "ndarray"]),
    ("truth_value", lambda: bool(X > 0), gc.GraphcError, ["truth value", "gc.where"]),
    ("iteration", lambda: list(X), gc.GraphcError, ["iterate", "f64[?,3]"]),
]


@pytest.mark.parametrize("name, declare, error_class, words", DECLARATION, ids=[c[0] for c in DECLARATION])
def test_declaration_errors_name_the_op_types_and_line(name, declare, error_class, words):
    with pytest.raises(error_class) as caught:
        declare()
    message = str(caught.value)
    assert isinstance(caught.value, gc.GraphcError)
    assert f"test_errors.py:{declare.__code__.co_firstlineno}" in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    _no_numba(caught.value)


def test_a_rejected_op_unifies_nothing():
    """A failed declaration leaves no trace: sizes it tried to unify stay independent."""
    a, b = gc.tensor("a", (None, 3)), gc.tensor("b", (None, 4))
    with pytest.raises(gc.ShapeError):
        a + b
    c = gc.tensor("c", (5, 4))
    assert (b + c).shape == (5, 4)
    assert not isinstance(a.shape[0], int), "a's size must still be unknown"


@pytest.fixture(scope="module")
def compiled():
    x = gc.tensor("x", (None, 3), "float64")
    labels = gc.tensor("labels", (None,), "int64")
    w = gc.tensor("w", (3,), "float64")
    b = gc.scalar("b", "float64")
    scores = x @ w + b
    loss = gc.sum(scores * gc.cast(labels, "float64"))
    return gc.compile([x, labels, w, b], [loss])


def good_arguments(n=4):
    return [np.ones((n, 3)), np.arange(n, dtype=np.int64), np.ones(3), 0.5]


def replace(k, value):
    args = good_arguments()
    args[k] = value
    return args


CALLS = [
    # (name, positional arguments, keyword arguments, words the message must hold)
    ("missing", good_arguments()[:3], {}, ["missing", "'b'", "f64[]"]),
    ("missing_keyword", [], dict(x=np.ones((4, 3)), labels=np.arange(4), b=0.5), ["missing", "'w'", "f64[3]"]),
    ("extra", good_arguments() + [1.0], {}, ["4 arguments", "got 5"]),
    ("unknown_keyword", good_arguments(), {"z": 1}, ["no input named z"]),
    ("wrong_dtype", replace(0, np.ones((4, 3), np.float32)), {}, ["'x'", "float32", "float64"]),
    ("wrong_int_dtype", replace(1, np.arange(4, dtype=np.int32)), {}, ["'labels'", "int32", "int64"]),
    ("bool_for_float", replace(0, np.ones((4, 3), bool)), {}, ["'x'", "bool", "float64"]),
    ("wrong_fixed_size", replace(2, np.ones(4)), {}, ["'w'", "f64[3]", "(4,)", "axis 0 must be 3"]),
    ("wrong_rank", replace(2, np.ones((3, 1))), {}, ["'w'", "rank 2", "rank 1"]),
    ("inconsistent_call_time_size", replace(1, np.arange(5)), {}, ["'labels'", "5", "4", "'x'"]),
    ("list_for_array", replace(0, np.ones((4, 3)).tolist()), {}, ["'x'", "numpy array", "list"]),
    ("string_for_array", replace(0, "abc"), {}, ["'x'", "str"]),
    ("array_for_scalar", replace(3, np.ones(2)), {}, ["'b'", "scalar", "float64[2]"]),
    ("none_for_scalar", replace(3, None), {}, ["'b'", "scalar", "NoneType"]),
]


@pytest.mark.parametrize("name, args, kwargs, words", CALLS, ids=[c[0] for c in CALLS])
def test_call_errors_are_call_errors(compiled, name, args, kwargs, words):
    with pytest.raises(gc.CallError) as caught:
        compiled(*args, **kwargs)
    message = str(caught.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert "test_errors.py:" in message or name in ("extra", "unknown_keyword"), "call errors name the input's line"


def test_good_calls_still_work_after_errors(compiled):
    args = good_arguments()
    want = np.sum((args[0] @ args[2] + args[3]) * args[1])
    np.testing.assert_allclose(compiled(*args), want)
    np.testing.assert_allclose(compiled(*good_arguments(7)), np.sum(3.5 * np.arange(7)))


def test_call_errors_carry_no_numba_traceback(compiled):
    with pytest.raises(gc.CallError) as caught:
        compiled(*replace(0, np.ones((4, 3), np.float32)))
    _no_numba(caught.value)


def _no_numba(error):
    """Neither the message nor the printed traceback (causes and contexts included) mentions Numba."""
    printed = "".join(traceback.format_exception(error))
    frames = "".join(line for line in printed.splitlines(keepends=True) if line.lstrip().startswith("File "))
    assert "numba" not in str(error).lower() and "no matching definition" not in printed.lower(), printed
    assert "/numba/" not in frames, printed


@pytest.fixture(scope="module")
def indexing():
    scores = gc.tensor("scores", (None, 4), "float64")
    labels = gc.tensor("labels", (None, 1), "int64")
    picked = gc.take_along_axis(scores, labels, axis=1)
    third = scores[2]
    loss = gc.sum(picked) + gc.sum(third)
    return gc.compile([scores, labels], [loss, gc.grad(loss, scores)])


def test_indices_out_of_range_raise_instead_of_reading_past_the_array(indexing):
    """Numba doesn't bounds-check: the kernel checks labels and int indices on call-time axes itself."""
    f = indexing
    scores = np.arange(12.0).reshape(3, 4)
    loss, grad = f(scores, np.array([[0], [3], [-1]]))
    assert loss == 0 + 7 + 11 + (8 + 9 + 10 + 11)
    # the kernel's messages name the op and the line it was compiled from (a cached kernel keeps the line
    # of the first compile: the cache key leaves locations out), so only the op is matched here
    with pytest.raises(gc.GraphcError, match="take_along_axis: an index is out of range .*test_errors.py:"):
        f(scores, np.array([[0], [4], [1]]))
    with pytest.raises(gc.GraphcError, match="getitem: index 2 is out of bounds for axis 0 .*test_errors.py:"):
        f(scores[:2], np.array([[0], [1]]))


def test_sizes_derived_from_call_time_sizes_are_checked():
    """A size computed from others (a flattened x, a slice of x, a concatenation) and unified with
    another one must agree with it at call time; the loops would read past an array otherwise."""
    a, v = gc.tensor("a", (None, 3), "float64"), gc.tensor("v", (None,), "float64")
    x, y = gc.tensor("x", (None, 3), "float64"), gc.tensor("y", (None, 3), "float64")
    f = gc.compile([a, v, x, y], [gc.reshape(a, (-1,)) + v, x[1::2] * y[1:], y + x[1:]])
    good = [np.ones((2, 3)), np.arange(6.0), np.ones((4, 3)), np.ones((3, 3))]
    np.testing.assert_array_equal(f(*good)[0], np.arange(6.0) + 1)
    cases = [(1, np.ones(5), r"reshape at test_errors.py:\d+: a size a.shape\[0\]\*3 must equal v.shape\[0\]"),
             (3, np.ones((2, 3)), r"getitem at test_errors.py:\d+: a size .*y.shape\[0\].* must equal .*x.shape\[0\]"),
             (2, np.ones((5, 3)), r"getitem at test_errors.py:\d+: a size .*shape\[0\].* must equal .*shape\[0\]")]
    for k, value, message in cases:
        args = list(good)
        args[k] = value
        with pytest.raises(gc.GraphcError, match=message):
            f(*args)


def test_labels_outside_the_classes_raise_in_the_cross_entropy_gate():
    scores, labels = gc.tensor("scores", (None, 3), "float64"), gc.tensor("labels", (None, 1), "int64")
    loss = -gc.mean(gc.take_along_axis(gc.log_softmax(scores, axis=1), labels, axis=1))
    f = gc.compile([scores, labels], [loss, gc.grad(loss, scores)])
    assert "softmax_cross_entropy" in f.dump()
    f(np.zeros((2, 3)), np.array([[0], [2]]))
    with pytest.raises(gc.GraphcError, match="(outside|out of range).*test_errors.py:"):
        f(np.zeros((2, 3)), np.array([[0], [3]]))


def test_a_failing_gradient_rule_names_the_op_and_line(monkeypatch):
    import dataclasses

    from graphc.ops import OPS

    def refuse(g, out, a):
        raise gc.ShapeError("no rule here")
    monkeypatch.setitem(OPS, "exp", dataclasses.replace(OPS["exp"], vjp=refuse))
    x = gc.tensor("x", (3,), "float64")
    y = gc.exp(x)
    with pytest.raises(gc.ShapeError, match=f"the gradient of exp at {y.loc}: no rule here"):
        gc.compile([x], gc.grad(gc.sum(y), x), name="failing_rule")  # a name no cached graph has
