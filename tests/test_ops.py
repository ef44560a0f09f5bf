"""Every op (issues 3 and 12), table-driven: compiled == NumPy interpreter (float32 and float64), the interpreter
== an independent NumPy expression, and gradients of a random projection sum(op(...) * R) == central
differences in float64, element by element (shapes are tiny).

One compiled function per case computes the value and every gradient for both dtypes, so the suite
pays one Numba compile per case. A `None` in a declared shape is a call-time size (given as N below).
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pytest

import graphc as gc
from graphc import passes
from graphc.types import Dim

from graphc.ops import OPS

from numeric_gradient import central_differences

N = 2          # the call-time size of every `None` dimension
TOL = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=2e-5, atol=2e-6)}


@dataclass
class Input:
    """A declared input: kind f (normal floats), pos (in [0.5, 2]), away (|x| in [0.3, 2]), unit (in
    [-0.9, 0.9]), int (labels in [0, high)), bool; or explicit `values`."""
    shape: tuple
    kind: str = "f"
    high: int = 0
    values: Optional[np.ndarray] = None

    def sample(self, rng, dtype):
        shape = tuple(N if s is None else s for s in self.shape)
        if self.values is not None:
            return np.array(self.values, dtype=dtype if self.is_float else self.values.dtype)
        if self.kind == "int":
            return rng.integers(0, self.high, size=shape).astype(np.int64)
        if self.kind == "bool":
            return rng.random(shape) < 0.5
        if self.kind == "pos":
            return rng.uniform(0.5, 2.0, shape).astype(dtype)
        if self.kind == "away":
            return (rng.uniform(0.3, 2.0, shape) * rng.choice([-1, 1], shape)).astype(dtype)
        if self.kind == "unit":
            return rng.uniform(-0.9, 0.9, shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    def dtype(self, float_dtype):
        return {"int": "int64", "bool": "bool"}.get(self.kind, float_dtype)

    @property
    def is_float(self):
        return self.kind not in ("int", "bool")


@dataclass
class Case:
    name: str
    build: Callable            # graphc tensors -> graphc tensor
    inputs: list
    reference: Callable        # NumPy arrays -> the expected value (an independent NumPy expression)
    differentiable: bool = True
    wrt: Optional[list] = None  # which inputs get gradients (default: every float input)
    extra: dict = field(default_factory=dict)


def f(*shape, **kw):
    return Input(shape, **kw)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def logsumexp(x, axis=None, keepdims=False):
    top = x.max(axis=axis, keepdims=True)
    out = np.log(np.exp(x - top).sum(axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)



def _conv_reference(name):
    """tests/test_conv.py's direct-loop references (imported late: test_conv imports this module)."""
    import test_conv
    return getattr(test_conv, name)


def _scanned(result):
    final, ys = result
    return final + gc.sum(ys, axis=0)


def _scan_reference(x):
    c, total = np.zeros_like(x[0]), np.zeros_like(x[0])
    for xt in x:
        c, y = c * 0.5 + np.tanh(xt), c * xt
        total = total + y
    return c + total


CASES = [
    # arithmetic, with broadcasting and call-time sizes
    Case("add", lambda a, b: a + b, [f(None, 3), f(3)], np.add),
    Case("add_python_number", lambda a: 2.0 + a * 3, [f(2, 3)], lambda a: 2.0 + a * 3),
    Case("sub", lambda a, b: a - b, [f(2, 1, 3), f(4, 1)], np.subtract),
    Case("array_constants", lambda a: a * np.arange(1.0, 4.0).astype(a.dtype) - np.ones((2, 1), a.dtype), [f(None, 3)],
         lambda a: a * np.arange(1.0, 4.0).astype(a.dtype) - np.ones((2, 1), a.dtype)),
    Case("rsub", lambda a: 1.0 - a, [f(3)], lambda a: 1.0 - a),
    Case("mul", lambda a, b: a * b, [f(2, 3), f(2, 1)], np.multiply),
    Case("mul_same_operand", lambda a: a * a, [f(None, 2)], lambda a: a * a),
    Case("div", lambda a, b: a / b, [f(3), f(2, 3, kind="away")], np.divide),
    Case("rdiv", lambda a: 1.0 / a, [f(None, 3, kind="away")], lambda a: 1.0 / a),
    Case("pow", lambda a, b: a ** b, [f(2, 3, kind="pos"), f(3)], np.power),
    # d/da at a == 0 has no central difference (0 - eps)**b, so only the exponent's gradient is checked
    Case("pow_zero_base", lambda a, b: a ** b, [f(3, values=[0.0, 1.5, 2.0]), f(3, kind="pos")], np.power, wrt=[1]),
    Case("pow_const", lambda a: a ** 3, [f(2, 3)], lambda a: a ** 3),
    Case("rpow", lambda a: 2.0 ** a, [f(3)], lambda a: 2.0 ** a),
    Case("neg", lambda a: -a, [f(None, 3)], np.negative),
    # transcendental and routing elementwise ops
    Case("exp", gc.exp, [f(2, 3)], np.exp),
    Case("log", gc.log, [f(None, 3, kind="pos")], np.log),
    Case("sqrt", gc.sqrt, [f(2, 3, kind="pos")], np.sqrt),
    Case("abs", gc.abs, [f(2, 3, kind="away")], np.abs),
    Case("sign", gc.sign, [f(2, 3, kind="away")], np.sign),
    Case("softplus", gc.softplus, [f(None, 3)], lambda a: np.log1p(np.exp(a))),
    Case("tanh", gc.tanh, [f(None, 3)], np.tanh),
    Case("sigmoid", gc.sigmoid, [f(2, 3)], sigmoid),
    Case("relu", gc.relu, [f(2, 3, kind="away")], lambda a: np.maximum(a, 0)),
    Case("maximum", gc.maximum, [f(2, 3), f(3)], np.maximum),
    Case("minimum", gc.minimum, [f(None, 1), f(3)], np.minimum),
    Case("where", gc.where, [f(2, 3, kind="bool"), f(2, 3), f(3)], np.where),
    Case("where_comparison", lambda a, b: gc.where(a > b, a * b, b), [f(None, 3), f(3)],
         lambda a, b: np.where(a > b, a * b, b)),
    Case("clip", gc.clip, [f(2, 3, values=[[-2.0, -0.5, 0.2], [0.7, 1.5, 3.0]]), f(), f(values=1.0)],
         lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
         extra={"values": {1: -1.0}}),
    Case("clip_inverted_bounds", lambda x, lo, hi: gc.clip(x, lo, hi), [f(2, 3), f(values=0.5), f(values=-0.5)],
         lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)),
    Case("clip_numbers", lambda x: gc.clip(x, -0.5, 0.5), [f(None, 3, kind="away")], lambda x: np.clip(x, -0.5, 0.5)),
    Case("cast_float64", lambda a: gc.cast(a, "float64") * 2.0, [f(2, 3)], lambda a: a.astype(np.float64) * 2),
    # a float32 result's central differences are meaningless, so only its value is checked here
    Case("cast_float32", lambda a: gc.cast(a, np.float32), [f(2, 3)], lambda a: a.astype(np.float32),
         differentiable=False),
    Case("cast_from_int", lambda a, y: a * gc.cast(y, a.dtype), [f(None, 3), f(None, 3, kind="int", high=5)],
         lambda a, y: a * y.astype(a.dtype)),
    Case("mixed_precision", lambda a, b: a * gc.cast(b, "float64") + 1.0, [f(2, 3), f(3)],
         lambda a, b: a.astype(np.float64) * b + 1),
    Case("scalar_inputs", lambda a, b: gc.tanh(a * b) + gc.sum(a) + gc.max(b) + gc.mean(a) * b, [f(), f()],
         lambda a, b: np.tanh(a * b) + a + b + a * b),
    # integer and bool tensors flow through (no gradient)
    Case("int_arithmetic", lambda y: (y * 2 + 1 - y) * (-y) + abs(y - 2) + y ** 2, [f(None, kind="int", high=5)],
         lambda y: (y * 2 + 1 - y) * (-y) + abs(y - 2) + y ** 2, differentiable=False),
    Case("int_true_divide", lambda y: y / 2, [f(None, kind="int", high=5)], lambda y: y / 2, differentiable=False),
    Case("int_reductions", lambda y: gc.sum(y, axis=0) + gc.max(y, axis=0) + gc.sum(y > 1, axis=0), [f(None, 2, kind="int", high=5)],
         lambda y: y.sum(0) + y.max(0) + (y > 1).sum(0), differentiable=False),
    Case("int_mean", lambda y: gc.mean(y), [f(None, kind="int", high=5)], np.mean, differentiable=False),
    Case("int_where_maximum", lambda y: gc.where(y > 1, y, 0) + gc.maximum(y, 2), [f(2, 3, kind="int", high=5)],
         lambda y: np.where(y > 1, y, 0) + np.maximum(y, 2), differentiable=False),
    Case("bool_input", lambda c: gc.cast(c, "int64") + gc.cast(c == (c == c), "int64"), [f(None, kind="bool")],
         lambda c: c.astype(np.int64) * 2, differentiable=False),
    # comparisons and casts to int carry no gradient
    Case("lt", lambda a, b: a < b, [f(2, 3), f(3)], np.less, differentiable=False),
    Case("le", lambda a, b: a <= b, [f(2, 3), f(2, 3)], np.less_equal, differentiable=False),
    Case("gt", lambda a, b: a > b, [f(None, 3), f(3)], np.greater, differentiable=False),
    Case("ge", lambda a: a >= 0.0, [f(2, 3)], lambda a: a >= 0, differentiable=False),
    Case("eq", gc.equal, [f(2, 3, values=[[1, 2, 3], [3, 2, 1]]), f(3, values=[1, 2, 1])], np.equal,
         differentiable=False),
    Case("ne", gc.not_equal, [f(2, 3, values=[[1, 2, 3], [3, 2, 1]]), f(3, values=[1, 2, 1])], np.not_equal,
         differentiable=False),
    Case("cast_int", lambda a: gc.cast(a * 3, "int64"), [f(2, 3)], lambda a: (a * 3).astype(np.int64),
         differentiable=False),
    # matmul: the four rank combinations, as NumPy treats them
    Case("matmul_matrix_matrix", lambda a, b: a @ b, [f(None, 3), f(3, 2)], np.matmul),
    Case("matmul_matrix_vector", lambda a, b: a @ b, [f(2, 3), f(3)], np.matmul),
    Case("matmul_vector_matrix", lambda a, b: a @ b, [f(3), f(3, 2)], np.matmul),
    Case("matmul_vector_vector", lambda a, b: a @ b, [f(None), f(None)], np.matmul),
    Case("matmul_transposed", lambda a, b: a.T @ b, [f(3, 2), f(3, 4)], lambda a, b: a.T @ b),
    # reductions
    Case("sum_all", gc.sum, [f(2, 3)], np.sum),
    Case("sum_axis", lambda a: gc.sum(a, axis=1), [f(None, 3)], lambda a: a.sum(axis=1)),
    Case("sum_axes_keepdims", lambda a: gc.sum(a, axis=(0, 2), keepdims=True), [f(2, 3, 2)],
         lambda a: a.sum(axis=(0, 2), keepdims=True)),
    Case("sum_negative_axis", lambda a: a.sum(axis=-1), [f(2, 3)], lambda a: a.sum(axis=-1)),
    Case("mean_all", gc.mean, [f(None, 3)], np.mean),
    Case("mean_axis_keepdims", lambda a: gc.mean(a, axis=0, keepdims=True), [f(None, 3)],
         lambda a: a.mean(axis=0, keepdims=True)),
    Case("mean_axes", lambda a: gc.mean(a, axis=(1, 2)), [f(2, 3, 2)], lambda a: a.mean(axis=(1, 2))),
    Case("max_all", gc.max, [f(2, 3)], np.max),
    Case("max_axis", lambda a: gc.max(a, axis=1), [f(None, 3)], lambda a: a.max(axis=1)),
    Case("max_axes_keepdims", lambda a: gc.max(a, axis=(0, 2), keepdims=True), [f(2, 3, 2)],
         lambda a: a.max(axis=(0, 2), keepdims=True)),
    # issue 12's elementwise ops
    *[Case(name, getattr(gc, name), [f(None, 3, kind="unit")], getattr(np, name))
      for name in ("sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "log1p", "expm1")],
    # away from their jumps (central differences see the gradient 0 there too)
    *[Case(name, getattr(gc, name), [f(2, 3, values=[[-1.7, -0.6, -0.3], [0.4, 1.2, 2.6]])], getattr(np, name))
      for name in ("floor", "ceil", "round")],
    Case("square", gc.square, [f(None, 3)], np.square),
    Case("reciprocal", gc.reciprocal, [f(2, 3, kind="away")], np.reciprocal),
    Case("mod", gc.mod, [f(2, 3, values=[[-2.5, -0.7, 0.4], [1.3, 3.1, -4.2]]), f(3, values=[0.9, -1.6, 1.1])], np.mod),
    Case("int_functions", lambda y, z: gc.mod(y, z) * 100 + gc.floor(y) + gc.round(y) * gc.ceil(z) + gc.square(y)
         + gc.cumsum(z) + gc.argmax(y, axis=0) + gc.prod(y, axis=0) + gc.min(y, axis=0),
         [f(2, 3, kind="int", values=np.array([[-7, 5, 0], [3, -4, 6]])), f(3, kind="int", values=np.array([3, -2, 5]))],
         lambda y, z: np.mod(y, z) * 100 + y + y * z + y * y + np.cumsum(z) + y.argmax(0) + y.prod(0) + y.min(0),
         differentiable=False),
    # issue 12's reductions and sorting
    Case("min_axes", lambda a: gc.min(a, axis=(0, 2), keepdims=True), [f(2, 3, 2)],
         lambda a: a.min(axis=(0, 2), keepdims=True)),
    # products over a call-time axis: one zero (the first lane), two (the second), none (the third)
    Case("prod_axes_zeros", lambda a: gc.prod(a, axis=(0, 2)),
         [f(None, 3, 2, values=[[[0.0, 1.5], [0.0, 0.0], [1.2, -0.7]], [[0.9, 2.0], [0.5, 1.1], [0.8, 1.3]]])],
         lambda a: a.prod(axis=(0, 2))),
    Case("argmax_argmin", lambda a: gc.argmax(a, axis=0) * 10 + gc.argmin(a, axis=0, keepdims=True) + gc.argmax(a),
         [f(3, None)], lambda a: a.argmax(0) * 10 + a.argmin(0, keepdims=True) + a.argmax(), differentiable=False),
    Case("cumsum", lambda a: gc.cumsum(a, axis=0) + gc.cumsum(a * 2.0, axis=1), [f(3, None)],
         lambda a: np.cumsum(a, 0) + np.cumsum(a * 2, 1)),
    Case("sort", lambda a: gc.sort(a, axis=0), [f(3, None)], lambda a: np.sort(a, axis=0)),
    # std is sqrt(var): its gradient checks var's too (tests/test_ops_more.py checks var's other forms)
    Case("std", lambda a: gc.std(a, axis=0, ddof=1), [f(None, 3)], lambda a: a.std(axis=0, ddof=1)),
    Case("shape_arithmetic", lambda a: gc.sum(a, axis=0) / a.shape[0] + (a.shape[0] - 1) * gc.max(a), [f(None, 3)],
         lambda a: a.sum(axis=0) / a.shape[0] + (a.shape[0] - 1) * a.max()),
    # gates
    Case("softmax", gc.softmax, [f(None, 4)], softmax),
    Case("softmax_axis0", lambda a: gc.softmax(a, axis=0), [f(3, 2)], lambda a: softmax(a, 0)),
    Case("gates_on_a_vector", lambda v: gc.softmax(v) * gc.logsumexp(v) + gc.log_softmax(v), [f(None)],
         lambda v: softmax(v) * logsumexp(v) + np.log(softmax(v))),
    Case("log_softmax", gc.log_softmax, [f(None, 4)], lambda a: np.log(softmax(a))),
    Case("log_softmax_axis0", lambda a: gc.log_softmax(a, axis=0), [f(3, 2)], lambda a: np.log(softmax(a, 0))),
    Case("logsumexp_all", gc.logsumexp, [f(2, 3)], logsumexp),
    Case("logsumexp_axis", lambda a: gc.logsumexp(a, axis=1), [f(None, 3)], lambda a: logsumexp(a, 1)),
    Case("logsumexp_axis0_keepdims", lambda a: gc.logsumexp(a, axis=0, keepdims=True), [f(3, 2)],
         lambda a: logsumexp(a, 0, True)),
    Case("logsumexp_axes", lambda a: gc.logsumexp(a, axis=(0, 2)), [f(2, 3, 2)], lambda a: logsumexp(a, (0, 2))),
    # movement
    Case("reshape", lambda a: gc.reshape(a, (3, -1)), [f(2, 6)], lambda a: a.reshape(3, -1)),
    Case("reshape_call_time", lambda a: gc.reshape(a, (-1,)), [f(None, 4)], lambda a: a.reshape(-1)),
    Case("reshape_method", lambda a: a.reshape(-1, 3), [f(None, 6)], lambda a: a.reshape(-1, 3)),
    Case("reshape_keep_call_time", lambda a: a.reshape(a.shape[0], 2, -1), [f(None, 4)], lambda a: a.reshape(N, 2, -1)),
    Case("reshape_to_scalar", lambda a: gc.reshape(a, ()), [f(1, 1)], lambda a: a.reshape(())),
    Case("transpose_axes", lambda a: gc.transpose(a, (1, 2, 0)), [f(2, 3, 2)], lambda a: a.transpose(1, 2, 0)),
    Case("transpose_default", gc.transpose, [f(2, 3, 2)], np.transpose),
    Case("transpose_T", lambda a: a.T * 2.0, [f(None, 3)], lambda a: a.T * 2),
    Case("transpose_negative_axes", lambda a: gc.transpose(a, (-1, 0, 1)), [f(2, 3, 2)], lambda a: a.transpose(-1, 0, 1)),
    # views (transposes, slices) feeding ops that read memory directly
    Case("views_composed", lambda a, w: gc.reshape(a.T, (-1,)) + gc.sum(a.T, axis=0).sum() + gc.softmax(a.T)[0, 0]
         + (a[:, 1:3] @ w)[0], [f(None, 3), f(2)],
         lambda a, w: a.T.reshape(-1) + a.T.sum(axis=0).sum() + softmax(a.T)[0, 0] + (a[:, 1:3] @ w)[0]),
    Case("reduce_no_axes", lambda a: gc.sum(a, axis=()) + gc.max(a, axis=()) * gc.mean(a, axis=()), [f(2, 3)],
         lambda a: a + a * a),
    Case("broadcast_to", lambda a: gc.broadcast_to(a, (2, 3)), [f(3)], lambda a: np.broadcast_to(a, (2, 3))),
    Case("broadcast_to_ones", lambda a: gc.broadcast_to(a, (2, 2, 3)), [f(2, 1)],
         lambda a: np.broadcast_to(a, (2, 2, 3))),
    Case("concatenate_axis0", lambda a, b: gc.concatenate([a, b]), [f(2, 3), f(1, 3)],
         lambda a, b: np.concatenate([a, b])),
    Case("concatenate_axis1", lambda a, b, c: gc.concatenate([a, b, c], axis=1), [f(None, 1), f(None, 2), f(None, 1)],
         lambda a, b, c: np.concatenate([a, b, c], axis=1)),
    Case("concatenate_negative_axis", lambda a, b: gc.concatenate([a, b], axis=-1), [f(2, 2), f(2, 1)],
         lambda a, b: np.concatenate([a, b], axis=-1)),
    Case("concatenate_call_time_axis", lambda a, b, c: gc.concatenate([a, b, c, a]), [f(None, 2), f(3, 2), f(None, 2)],
         lambda a, b, c: np.concatenate([a, b, c, a])),
    Case("take_along_axis_labels", lambda s, y: gc.take_along_axis(s, y, axis=1), [f(None, 4), f(None, 1, kind="int", high=4)],
         lambda s, y: np.take_along_axis(s, y, axis=1)),
    Case("take_along_axis_repeats", lambda s, y: gc.take_along_axis(s, y, axis=1), [f(2, 3), f(2, 4, kind="int", high=3)],
         lambda s, y: np.take_along_axis(s, y, axis=1)),
    Case("take_along_axis_0", lambda s, y: gc.take_along_axis(s, y, axis=0), [f(3, 2), f(2, 2, kind="int", high=3)],
         lambda s, y: np.take_along_axis(s, y, axis=0)),
    Case("take_along_axis_broadcast_x", lambda s, y: gc.take_along_axis(s, y, axis=1), [f(1, 4), f(3, 2, kind="int", high=4)],
         lambda s, y: np.take_along_axis(np.broadcast_to(s, (3, 4)), y, axis=1)),
    Case("take_along_axis_broadcast_indices", lambda s, y: gc.take_along_axis(s, y, axis=0), [f(3, None), f(2, 1, kind="int", high=3)],
         lambda s, y: np.take_along_axis(s, np.broadcast_to(y, (2, s.shape[1])), axis=0)),
    Case("correct_class_score", lambda s, y: gc.take_along_axis(s, gc.reshape(y, (-1, 1)), 1),
         [f(None, 4), f(None, kind="int", high=4)], lambda s, y: s[np.arange(len(y)), y][:, None]),
    Case("one_hot", lambda y: gc.one_hot(y, 4), [f(None, kind="int", high=4)],
         lambda y: np.eye(4, dtype=np.float32)[y], differentiable=False),
    Case("one_hot_f64_2d", lambda y: gc.one_hot(y, 3, dtype="float64"), [f(2, 2, kind="int", high=3)],
         lambda y: np.eye(3)[y], differentiable=False),
    Case("one_hot_cross_entropy", lambda s, y: -gc.sum(gc.one_hot(y, 4, dtype=s.dtype) * gc.log_softmax(s), axis=1),
         [f(None, 4), f(None, kind="int", high=4)], lambda s, y: -np.log(softmax(s))[np.arange(len(y)), y]),
    # the cross-entropy gate (the stabilize pass rewrites both forms into softmax_cross_entropy)
    Case("cross_entropy", lambda s, y: -gc.mean(gc.take_along_axis(gc.log_softmax(s, axis=1), y, axis=1)),
         [f(None, 4), f(None, 1, kind="int", high=4)],
         lambda s, y: -np.mean(np.take_along_axis(np.log(softmax(s)), y, axis=1))),
    Case("cross_entropy_call_time_classes", lambda s, y: -gc.mean(gc.take_along_axis(gc.log_softmax(s, axis=1), y, axis=1)),
         [f(None, None), f(None, 1, kind="int", high=N)],
         lambda s, y: -np.mean(np.take_along_axis(np.log(softmax(s)), y, axis=1))),
    Case("cross_entropy_one_hot", lambda s, y: -gc.mean(gc.sum(gc.log_softmax(s, axis=1) * gc.one_hot(y, 3, dtype=s.dtype), axis=1)),
         [f(None, 3), f(None, kind="int", high=3)], lambda s, y: -np.mean(np.log(softmax(s))[np.arange(len(y)), y])),
    # naive formulas the stabilize pass rewrites into gates
    Case("naive_sigmoid", lambda a: 1.0 / (gc.exp(-a) + 1.0), [f(2, 3)], sigmoid),
    Case("naive_log_softmax", lambda a: gc.log(gc.softmax(a, axis=1)), [f(None, 3)], lambda a: np.log(softmax(a))),
    Case("naive_logsumexp", lambda a: gc.log(gc.sum(gc.exp(a), axis=1)), [f(None, 3)], lambda a: logsumexp(a, 1)),
    # basic indexing and slicing
    Case("getitem_int", lambda w: w[0], [f(3)], lambda w: w[0]),
    Case("getitem_row", lambda w: w[1], [f(3, 2)], lambda w: w[1]),
    Case("getitem_slice", lambda x: x[:, 1:3], [f(None, 4)], lambda x: x[:, 1:3]),
    Case("getitem_negative_step", lambda x: x[::-1, -1], [f(None, 3)], lambda x: x[::-1, -1]),
    Case("getitem_step_none", lambda x: x[None, 1::2, ::-2], [f(3, 4)], lambda x: x[None, 1::2, ::-2]),
    Case("getitem_ellipsis", lambda x: x[..., -2], [f(2, 2, 3)], lambda x: x[..., -2]),
    Case("getitem_negative_int", lambda x: x[-1, 0], [f(None, 3)], lambda x: x[-1, 0]),
    Case("getitem_call_time_slice", lambda x: x[1:], [f(None, 2)], lambda x: x[1:]),
    Case("getitem_call_time_steps", lambda x: x[::-2] + x[-2::-2] * 2.0, [f(None, 2)], lambda x: x[::-2] + x[-2::-2] * 2.0),
    # gc.nn convolution and pooling (references: direct loops in tests/test_conv.py)
    Case("conv2d", lambda x, w, b: gc.nn.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
         [f(None, 2, 4, 5), f(4, 1, 2, 2), f(4)],
         lambda x, w, b: _conv_reference('reference_conv2d')(x, w, b, (2, 1), 1, (1, 2), 2).astype(x.dtype)),
    Case("max_pool2d", lambda x: gc.nn.max_pool2d(x, 2, stride=1, padding=1), [f(None, 2, 3, 3)],
         lambda x: _conv_reference("reference_pool")("max", x, 2, 1, 1).astype(x.dtype)),
    Case("avg_pool2d", lambda x: gc.nn.avg_pool2d(x, (2, 3), stride=(1, 2), padding=1), [f(None, 2, 3, 4)],
         lambda x: _conv_reference("reference_pool")("avg", x, (2, 3), (1, 2), 1).astype(x.dtype)),
    # gc.random (references: the ops' own NumPy Philox, checked against Random123 in tests/test_random.py)
    Case("random", lambda k: gc.random.uniform(k, (2, 3), "float64") + gc.random.normal(gc.random.split(k)[1], (3,), "float64")
         + gc.cast(gc.random.bits(gc.random.fold_in(k, 1), (3,)) > 0, "float64"),
         [f(kind="int", high=2 ** 62)],
         lambda k: OPS["random_uniform"].numpy(k, shape=(2, 3), dtype="float64", low=0.0, high=1.0)
         + OPS["random_normal"].numpy(OPS["random_bits"].numpy(k, shape=(2,), stream=2)[1], shape=(3,), dtype="float64")
         + (OPS["random_bits"].numpy(OPS["random_fold_in"].numpy(k, np.int64(1)), shape=(3,), stream=0) > 0),
         differentiable=False),
    # gc.scan: a carried state over the leading axis (reference: the same loop in NumPy)
    Case("scan", lambda x: _scanned(gc.scan(lambda c, xt: (c * 0.5 + gc.tanh(xt), c * xt), x[0] * 0.0, x)),
         [f(None, 3)], lambda x: _scan_reference(x)),
    # contractions and fancy indexing (graphc/contract.py)
    Case("matmul_batched_broadcast", lambda a, b: a @ b, [f(None, 1, 2, 3), f(2, 3, 2)], np.matmul),
    Case("einsum_diagonal", lambda a: gc.einsum("ii->i", a), [f(3, 3)], lambda a: np.einsum("ii->i", a)),
    Case("index_array", lambda x, i: x[i], [f(3, 2), f(4, kind="int", values=np.array([2, 0, -1, 2]))],
         lambda x, i: x[i]),
]
CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "case names must be unique"
DTYPES = ("float32", "float64")


def _shape_of(tensor):
    return tuple(None if isinstance(s, Dim) else s for s in tensor.shape)


def declare(case, dtype, tag=""):
    """The case's inputs, output, projected loss sum(out * r) and gradients, for one float dtype."""
    tensors = [gc.tensor(f"x{k}_{dtype}{tag}", spec.shape, spec.dtype(dtype)) for k, spec in enumerate(case.inputs)]
    out = case.build(*tensors)
    part = {"tensors": tensors, "out": out, "all_inputs": list(tensors), "outputs": [out], "wrt": []}
    if case.differentiable:
        r = gc.tensor(f"r_{dtype}{tag}", _shape_of(out), out.dtype)
        loss = gc.sum(out * r)
        wrt = [t for t, spec in zip(tensors, case.inputs) if spec.is_float] if case.wrt is None else [tensors[k] for k in case.wrt]
        part.update(r=r, loss=loss, wrt=wrt, all_inputs=tensors + [r], outputs=[out] + gc.grad(loss, wrt))
    return part


class Built:
    """One case declared for both dtypes and compiled once: value and gradients for float32 and float64."""

    def __init__(self, case):
        self.case = case
        self.parts = {dtype: declare(case, dtype) for dtype in DTYPES}
        # the same values for both dtypes
        self.arrays = {dtype: sample_inputs(case, np.random.default_rng(_seed(case)), dtype) for dtype in DTYPES}
        inputs = [t for dtype in DTYPES for t in self.parts[dtype]["all_inputs"]]
        outputs = [t for dtype in DTYPES for t in self.parts[dtype]["outputs"]]
        self.inputs, self.outputs = inputs, outputs
        self.compiled = gc.compile(inputs, outputs, name=f"case_{case.name}")

    def arguments(self):
        """Arrays for every input (the projection R drawn once the output's shape is known)."""
        args = []
        for dtype in DTYPES:
            part, arrays = self.parts[dtype], list(self.arrays[dtype])
            if self.case.differentiable:
                out_shape = np.shape(self.case.reference(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]))
                arrays.append(np.random.default_rng(_seed(self.case) + 1).standard_normal(out_shape).astype(part["out"].dtype))
            args += arrays
        return args


def sample_inputs(case, rng, dtype):
    """The case's input arrays, drawn from `rng` (explicit `extra["values"]` in their places)."""
    arrays = [spec.sample(rng, dtype) for spec in case.inputs]
    for k, value in case.extra.get("values", {}).items():
        arrays[k] = np.array(value, dtype=dtype)
    return arrays


def _seed(case):
    return sum(map(ord, case.name))


_BUILT = {}


def built(name):
    if name not in _BUILT:
        _BUILT[name] = Built(CASES_BY_NAME[name])
    return _BUILT[name]


def _expanded(outputs, inputs):
    """The interpreter's graph: lowered and with gc.grad nodes expanded, nothing else."""
    graph = gc.lower(outputs, inputs)
    return passes.run_pipeline(graph, [p for p in passes.PIPELINE if p.name == "autodiff"]).graph


def _split(values, b):
    """Per dtype, its slice of a flat list of outputs."""
    out, start = {}, 0
    for dtype in DTYPES:
        n = len(b.parts[dtype]["outputs"])
        out[dtype] = values[start:start + n]
        start += n
    return out


@pytest.mark.parametrize("name", list(CASES_BY_NAME))
def test_compiled_matches_interpreter_and_reference(name):
    b = built(name)
    args = b.arguments()
    compiled = _split(list(b.compiled(*args)), b)
    interpreted = _split(gc.interpret(_expanded(b.outputs, b.inputs), *args)[0], b)
    start = 0
    for dtype in DTYPES:
        part = b.parts[dtype]
        arrays = args[start:start + len(part["all_inputs"])]
        start += len(part["all_inputs"])
        for got, want in zip(compiled[dtype], interpreted[dtype]):
            assert got.shape == want.shape and got.dtype == want.dtype, (dtype, got.shape, want.shape, got.dtype, want.dtype)
            np.testing.assert_allclose(got, want, **TOL[dtype], err_msg=f"{name} {dtype}: compiled vs interpreter")
        expected = b.case.reference(*arrays[:len(part["tensors"])])
        value = interpreted[dtype][0]
        assert value.dtype == np.dtype(part["out"].dtype)
        # NumPy 2's promotion is graphc's: a Python number takes the array's dtype (x * 2.0 stays float32)
        assert value.dtype == np.asarray(expected).dtype, f"{name} {dtype}: {value.dtype}, NumPy gives {np.asarray(expected).dtype}"
        np.testing.assert_allclose(value, expected, **TOL[dtype], err_msg=f"{name} {dtype}: interpreter vs NumPy")


@pytest.mark.parametrize("name", [c.name for c in CASES if c.differentiable])
def test_gradients_match_central_differences(name):
    b = built(name)
    part = b.parts["float64"]
    args = b.arguments()
    args64 = args[len(b.parts["float32"]["all_inputs"]):]
    analytic = _split(list(b.compiled(*args)), b)["float64"][1:]
    loss = scalar_function(part["loss"], part["all_inputs"])
    for target, grad in zip(part["wrt"], analytic):
        k = next(i for i, t in enumerate(part["all_inputs"]) if t is target)
        numeric = central_differences(loss, args64, k)
        assert grad.shape == numeric.shape
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7, err_msg=f"{name}: d/d{target.name}")


def scalar_function(y, inputs):
    """Scalar tensor `y` as a float function of the inputs' arrays, through the interpreter."""
    graph = _expanded([y], inputs)
    return lambda arrays: float(gc.interpret(graph, *arrays)[0][0])


# Ties and kinks: the documented routing rules, checked exactly (central differences can't see them).
TIE_RULES = [
    # (name, build, input values, gradients of sum(build(inputs)) with respect to each input, worked out by hand)
    ("max_row_ties", lambda x: gc.max(x, axis=1), [[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]],
     [[[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]]),
    ("max_all_ties", gc.max, [[[3.0, 1.0], [3.0, 3.0]]], [[[1 / 3, 0.0], [1 / 3, 1 / 3]]]),
    ("relu_at_zero", gc.relu, [[0.0, -1.0, 2.0]], [[0.0, 0.0, 1.0]]),
    ("abs_at_zero", gc.abs, [[0.0, -1.0, 2.0]], [[0.0, -1.0, 1.0]]),
    ("maximum_ties", gc.maximum, [[1.0, 2.0, 3.0], [1.0, 0.0, 4.0]], [[0.5, 1.0, 0.0], [0.5, 0.0, 1.0]]),
    ("minimum_ties", gc.minimum, [[1.0, 2.0, 3.0], [1.0, 0.0, 4.0]], [[0.5, 0.0, 1.0], [0.5, 1.0, 0.0]]),
    ("clip_at_ends", lambda x, lo, hi: gc.clip(x, lo, hi), [[-1.0, 1.0, 0.0, -2.0, 2.0], -1.0, 1.0],
     [[1.0, 1.0, 1.0, 0.0, 0.0], 1.0, 1.0]),
    ("min_row_ties", lambda x: gc.min(x, axis=1), [[[1.0, -3.0, -3.0], [2.0, 2.0, 2.0]]],
     [[[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]]),
    ("min_all_ties", gc.min, [[[-3.0, 1.0], [-3.0, -3.0]]], [[[1 / 3, 0.0], [1 / 3, 1 / 3]]]),
    # prod: the product of the others, also at zeros (one zero: the rest's product there; two: 0 everywhere)
    ("prod_one_zero", lambda x: gc.prod(x, axis=1), [[[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]]],
     [[[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]]]),
    # x ** 0 is 1 everywhere: gradient 0, also at x = 0 (0 * 0 ** -1 was NaN); d/dp x ** p at x = 0 is 0
    ("pow_zero_exponent", lambda x: x ** 0, [[0.0, 2.0]], [[0.0, 0.0]]),
    ("pow_zero_exponent_input", lambda x, p: x ** p, [[0.0, 0.0, 2.0], [0.0, 1.0, 0.0]],
     [[0.0, 1.0, 0.0], [0.0, 0.0, float(np.log(2.0))]]),
    # floor, ceil and round are flat between their jumps, and have gradient 0 at them too
    ("rounding_flat", lambda x: gc.floor(x) + gc.ceil(x) + gc.round(x), [[1.0, 0.5, -2.3]], [[0.0, 0.0, 0.0]]),
    # std where every element is equal: 0 (sqrt's slope there is infinite, times a zero deviation)
    ("std_zero_variance", lambda x: gc.std(x, axis=1), [[[1.5, 1.5, 1.5], [1.0, 2.0, 3.0]]],
     [[[0.0, 0.0, 0.0], [-1 / (3 * np.sqrt(2 / 3)), 0.0, 1 / (3 * np.sqrt(2 / 3))]]]),  # (x - mean) / (n std)
]


@pytest.fixture(scope="module")
def tie_function():
    """One compiled function: every tie rule's gradients of sum(out), float32 and float64."""
    inputs, outputs, feeds, expected = [], [], [], []
    for dtype in DTYPES:
        for name, build, values, grads in TIE_RULES:
            tensors = [gc.tensor(f"{name}{k}_{dtype}", np.shape(v), dtype) for k, v in enumerate(values)]
            inputs += tensors
            outputs += gc.grad(gc.sum(build(*tensors)), tensors)
            feeds += [np.array(v, dtype) for v in values]
            expected += [(f"{name} {dtype} d/d{k}", np.array(g)) for k, g in enumerate(grads)]
    return gc.compile(inputs, outputs, name="tie_rules"), feeds, expected


def test_tie_rules(tie_function):
    """max and min split their gradient equally among tied extremes; relu and abs have gradient 0 at 0;
    maximum/minimum give half to each operand at a tie; clip passes the gradient to x at its ends; prod's is
    exact at zeros; x ** 0's is 0 at 0; floor/ceil/round have gradient 0; std's is 0 at zero variance."""
    f, feeds, expected = tie_function
    for got, (label, want) in zip(f(*feeds), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=label)
