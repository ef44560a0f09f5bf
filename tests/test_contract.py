"""Contractions and data movement (graphc/contract.py): batched, broadcasting matmul, einsum, tensordot, dot,
stack, split and integer-array indexing.

Each case is checked compiled against NumPy (float32 and float64) and, for its float64 gradients of a
random projection sum(out * R), against central differences through the interpreter, element by element
on tiny shapes. The cases share a few compiled functions (Numba's compile dominates). A `None` in a
declared shape is a call-time size, given as N.
"""
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pytest

import graphc as gc
from graphc import passes
from graphc.contract import dot, einsum, index, matmul, split, stack, tensordot
from graphc.types import Dim

from numeric_gradient import central_differences

N = 3
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6)}
DTYPES = ("float32", "float64")


@dataclass
class Case:
    name: str
    build: Callable            # graphc tensors -> a graphc tensor
    shapes: list               # float inputs' declared shapes
    reference: Callable        # NumPy arrays -> the expected value
    ints: Optional[list] = None  # int64 inputs after the floats: their fixed values


def case(name, build, shapes, reference, ints=None):
    return Case(name, build, shapes, reference, ints)


def einsum_case(name, subscripts, shapes):
    return case(name, lambda *xs: einsum(subscripts, *xs), shapes, lambda *xs: np.einsum(subscripts, *xs))


IDX = np.array([2, 0, -1, 2])  # repeats and a negative index, for a size-3 axis
CASES = [
    # matmul, NumPy's rules for rank >= 3: batch dimensions broadcast, rank-1 operands promoted
    case("matmul_batched", lambda a, b: a @ b, [(2, 2, 3), (2, 3, 4)], np.matmul),
    case("matmul_broadcast_batch", matmul, [(2, 1, 2, 3), (3, 3, 2)], np.matmul),
    case("matmul_call_time_batch", lambda a, b: a @ b, [(None, 2, 3), (None, 3, 2)], np.matmul),
    case("matmul_call_time_against_one", lambda a, b: a @ b, [(None, 2, 3), (1, 3, 2)], np.matmul),
    case("matmul_batched_matrix", lambda a, b: a @ b, [(None, 2, 3), (3, 2)], np.matmul),
    case("matmul_matrix_batched", lambda a, b: a @ b, [(2, 3), (2, 3, 4)], np.matmul),
    case("matmul_vector_batched", lambda a, b: a @ b, [(3,), (2, 3, 2)], np.matmul),
    case("matmul_batched_vector", lambda a, b: a @ b, [(2, 2, 3), (3,)], np.matmul),
    # einsum, lowered to transposes, reshapes, matmul, products and sums
    einsum_case("einsum_matrix_product", "ij,jk->ik", [(2, 3), (3, 4)]),
    einsum_case("einsum_batched", "bij,bjk->bik", [(None, 2, 3), (None, 3, 2)]),
    einsum_case("einsum_diagonal", "ii->i", [(3, 3)]),
    einsum_case("einsum_trace", "ii", [(3, 3)]),
    einsum_case("einsum_sum_all", "ij->", [(2, 3)]),
    einsum_case("einsum_inner", "i,i->", [(3,), (3,)]),
    einsum_case("einsum_elementwise", "ij,ij->ij", [(2, 3), (2, 3)]),
    einsum_case("einsum_attention", "bhqd,bhkd->bhqk", [(2, 2, 3, 2), (2, 2, 2, 2)]),
    einsum_case("einsum_implicit", "ij,jk", [(2, 3), (3, 2)]),
    einsum_case("einsum_implicit_order", "kj,ji", [(2, 3), (3, 4)]),
    einsum_case("einsum_transpose", "ijk->kij", [(2, 3, 2)]),
    einsum_case("einsum_outer", "i,j->ij", [(2,), (3,)]),
    einsum_case("einsum_three_operands", "ij,jk,kl->il", [(2, 3), (3, 2), (2, 4)]),
    einsum_case("einsum_summed_free_axes", "ijk,jil->kl", [(2, 3, 2), (3, 2, 3)]),
    einsum_case("einsum_diagonal_batched", "bii,bi->b", [(2, 3, 3), (2, 3)]),
    einsum_case("einsum_broadcast_one", "ij,ij->ij", [(1, 3), (2, 3)]),
    # tensordot and dot, NumPy's rules
    case("tensordot_default", lambda a, b: tensordot(a, b), [(2, 3, 2), (3, 2, 2)], lambda a, b: np.tensordot(a, b)),
    case("tensordot_one", lambda a, b: tensordot(a, b, axes=1), [(2, 3), (3, 2, 2)],
         lambda a, b: np.tensordot(a, b, axes=1)),
    case("tensordot_pairs", lambda a, b: tensordot(a, b, axes=([1, 0], [0, 2])), [(2, 3, 2), (3, 2, 2)],
         lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 2]))),
    case("tensordot_outer", lambda a, b: tensordot(a, b, axes=0), [(2,), (None, 2)],
         lambda a, b: np.tensordot(a, b, axes=0)),
    case("dot_inner", dot, [(3,), (3,)], np.dot),
    case("dot_matrices", dot, [(None, 3), (3, 2)], np.dot),
    case("dot_tensor_vector", dot, [(2, 2, 3), (3,)], np.dot),
    case("dot_vector_tensor", dot, [(3,), (2, 3, 2)], np.dot),
    case("dot_tensors", dot, [(2, 2, 3), (2, 3, 2)], np.dot),
    case("dot_scalar", lambda a, b: dot(a, b), [(), (2, 3)], np.dot),
    # stack and split (their gradients: concatenate's and slicing's)
    case("stack_axis0", lambda a, b: stack([a, b]), [(2, 3), (2, 3)], lambda a, b: np.stack([a, b])),
    case("stack_last_axis", lambda a, b, c: stack([a, b, c], axis=-1), [(None, 2), (None, 2), (None, 2)],
         lambda a, b, c: np.stack([a, b, c], axis=-1)),
    case("split_sections", lambda a: stack(split(a, 3, axis=1), axis=0) * 2.0, [(2, 6)],
         lambda a: np.stack(np.split(a, 3, axis=1)) * 2.0),
    case("split_indices_call_time_axis",  # with N = 3, split(a, [3])[1] is empty
         lambda a: split(a, [1, 3])[1] * 2.0 + gc.sum(split(a, [3])[1]) + gc.sum(split(a, [-1])[1]), [(None, 2)],
         lambda a: np.split(a, [1, 3])[1] * 2.0 + np.split(a, [3])[1].sum() + np.split(a, [-1])[1].sum()),
    # integer-array indexing (repeated and negative indices; the gradient accumulates)
    case("index_tensor", lambda x, i: index(x, i), [(3, 2)], lambda x, i: x[i], ints=[IDX]),
    case("index_second_axis", lambda x, i: index(x, (slice(None), i)), [(None, 3)], lambda x, i: x[:, i], ints=[IDX]),
    case("index_then_slice", lambda x, i: index(x, (i, slice(1, 3))), [(3, 4)], lambda x, i: x[i, 1:3], ints=[IDX]),
    case("index_numpy_array", lambda x: index(x, np.array([[0, 2], [2, 2]])), [(3, 2)],
         lambda x: x[np.array([[0, 2], [2, 2]])]),
    case("index_list", lambda x: index(x, (Ellipsis, [1, -1, 1])), [(2, 3)], lambda x: x[..., [1, -1, 1]]),
    # an int beside the array index is an index too: apart from it, the array's axes go first (NumPy's rule)
    case("index_int_apart", lambda x, i: index(x, (1, slice(None), i)), [(2, 2, 3)], lambda x, i: x[1, :, i],
         ints=[IDX]),
    case("index_int_beside", lambda x, i: index(x, (slice(None), 1, i)), [(2, 2, 3)], lambda x, i: x[:, 1, i],
         ints=[IDX]),
    case("index_scalar_tensor", lambda x, i: index(x, i) * x, [(3,)], lambda x, i: x[i] * x, ints=[np.array(-1)]),
    case("index_embedding", lambda w, i: gc.sum(index(w, i), axis=1), [(3, 2)], lambda w, i: w[i].sum(axis=1),
         ints=[np.array([[0, 1], [2, 2]])]),
]
CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "case names must be unique"


def _concrete(shape):
    return tuple(N if s is None else s for s in shape)


def _shape_of(tensor):
    return tuple(None if isinstance(s, Dim) else s for s in tensor.shape)


class Declared:
    """A case for one float dtype: its inputs, value, and in float64 the projected loss and gradients."""

    def __init__(self, c, dtype):
        self.case, self.dtype = c, dtype
        self.floats = [gc.tensor(f"{c.name}_x{k}_{dtype}", s, dtype) for k, s in enumerate(c.shapes)]
        self.ints = [gc.tensor(f"{c.name}_i{k}_{dtype}", v.shape, "int64") for k, v in enumerate(c.ints or [])]
        self.out = c.build(*self.floats, *self.ints)
        self.inputs, self.outputs = self.floats + self.ints, [self.out]
        if dtype == "float64":
            self.r = gc.tensor(f"{c.name}_r", _shape_of(self.out), dtype)
            self.loss = gc.sum(self.out * self.r)
            self.inputs.append(self.r)
            self.outputs += gc.grad(self.loss, self.floats)

    def arrays(self):
        rng = np.random.default_rng(sum(map(ord, self.case.name)))
        floats = [rng.standard_normal(_concrete(s)) for s in self.case.shapes]
        values = [a.astype(self.dtype) for a in floats] + list(self.case.ints or [])
        if self.dtype == "float64":
            values.append(rng.standard_normal(np.shape(self.case.reference(*values))))
        return values


class Built:
    """One case declared for both dtypes and compiled once: its values and float64 gradients. One function
    per case: Numba's compile time grows faster than the code (these cases in 4 functions took 63 s of
    CPU, in one function each 35 s)."""

    def __init__(self, name):
        self.declared = {dtype: Declared(CASES_BY_NAME[name], dtype) for dtype in DTYPES}
        f = gc.compile([t for d in self.declared.values() for t in d.inputs],
                       [t for d in self.declared.values() for t in d.outputs], name=f"contract_{name}")
        self.feeds = {dtype: d.arrays() for dtype, d in self.declared.items()}
        results = iter(f(*[a for dtype in DTYPES for a in self.feeds[dtype]]))
        self.values = {dtype: [next(results) for _ in d.outputs] for dtype, d in self.declared.items()}


@pytest.fixture(scope="module")
def built():
    cases = {}

    def get(name):
        if name not in cases:
            cases[name] = Built(name)
        return cases[name]
    return get


@pytest.mark.parametrize("name", list(CASES_BY_NAME))
def test_values_match_numpy(built, name):
    b = built(name)
    for dtype in DTYPES:
        got, d = b.values[dtype][0], b.declared[dtype]
        arrays = b.feeds[dtype][:len(d.floats) + len(d.ints)]
        want = CASES_BY_NAME[name].reference(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
        assert got.dtype == np.dtype(dtype) and got.shape == np.shape(want), (dtype, got.dtype, got.shape)
        np.testing.assert_allclose(got, want, **TOL[dtype], err_msg=f"{name} {dtype}")


def _interpreted(y, inputs):
    """Scalar tensor y as a float function of the inputs' arrays, through the NumPy interpreter."""
    graph = passes.run_pipeline(gc.lower([y], inputs), [p for p in passes.PIPELINE if p.name == "autodiff"]).graph
    return lambda arrays: float(gc.interpret(graph, *arrays)[0][0])


@pytest.mark.parametrize("name", list(CASES_BY_NAME))
def test_gradients_match_central_differences(built, name):
    b = built(name)
    d, arrays = b.declared["float64"], b.feeds["float64"]
    loss = _interpreted(d.loss, d.inputs)
    for k, grad in enumerate(b.values["float64"][1:]):
        numeric = central_differences(loss, arrays, k)
        assert grad.shape == numeric.shape
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7, err_msg=f"{name}: d/d input {k}")


def _loop_depths(source):
    """(deepest nesting of for loops, the nesting of each matmul_into call) in kernel source."""
    stack, deepest, calls = [], 0, []
    for line in source.splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1] >= indent:
            stack.pop()
        if text.startswith("matmul_into("):
            calls.append(len(stack))
        if text.startswith("for "):
            stack.append(indent)
            deepest = max(deepest, len(stack))
    return deepest, calls


def test_batched_matmul_is_a_loop_of_blas_calls():
    """A product with two broadcast batch axes (one of call-time size) is one BLAS call per batch element."""
    a = gc.tensor("a", (None, 2, 3, 4), "float64")
    b = gc.tensor("b", (1, 2, 4, 5), "float32")
    f = gc.compile([a, b], [a @ gc.cast(b, "float64"), matmul(gc.cast(a, "float32"), b)], name="batched_blas")
    deepest, calls = _loop_depths(f.source())
    assert calls == [2, 2] and deepest == 2, f.source()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((N, 2, 3, 4)), rng.standard_normal((1, 2, 4, 5))
    got64, got32 = f(x, y.astype(np.float32))
    np.testing.assert_allclose(got64, x @ y.astype(np.float32).astype(np.float64), **TOL["float64"])
    np.testing.assert_allclose(got32, x.astype(np.float32) @ y.astype(np.float32), **TOL["float32"])


def test_indices_out_of_range_raise_at_run_time():
    x = gc.tensor("x", (3, 2), "float64")
    i = gc.tensor("i", (None,), "int64")
    picked = index(x, i)
    line = picked.loc
    f = gc.compile([x, i], [picked, gc.grad(gc.sum(picked * picked), x)], name="index_range")
    values = np.arange(6.0).reshape(3, 2)
    got, grad = f(values, np.array([-3, 2, 2]))
    np.testing.assert_array_equal(got, values[[-3, 2, 2]])
    np.testing.assert_array_equal(grad, [[0, 2], [0, 0], [8, 10]] * np.array([[1], [1], [2]]))
    for bad in ([0, 3], [-4]):
        with pytest.raises(gc.RunError, match=f"take: an index is out of range .*at {line}"):
            f(values, np.array(bad))


def _raises(error, fragments, build):
    """build() raises `error` whose message holds every fragment and the line build was written on."""
    with pytest.raises(error) as info:
        build()
    message = str(info.value)
    for fragment in fragments + [f"test_contract.py:{build.__code__.co_firstlineno}"]:
        assert fragment in message, (fragment, message)


def test_errors_name_the_op_the_types_and_the_line():
    a, b = gc.tensor("ea", (2, 2, 3), "float64"), gc.tensor("eb", (2, 4, 2), "float64")
    c, v = gc.tensor("ec", (3, 3, 2), "float64"), gc.tensor("ev", (None, 3), "float64")
    _raises(gc.ShapeError, ["matmul: inner sizes 3 and 4 differ", "f64[2,2,3], f64[2,4,2]"], lambda: a @ b)
    _raises(gc.ShapeError, ["matmul: batch dimensions (2,) and (3,) don't broadcast"], lambda: a @ c)
    _raises(gc.DTypeError, ["matmul: needs two float32 or two float64"],
            lambda: a @ gc.tensor("ei", (2, 3, 2), "int64"))
    _raises(gc.ShapeError, ["einsum", "subscript 'j' has sizes that differ: 3 (operand 0 axis 2), 4 (operand 1 axis 1)",
                            "f64[2,2,3], f64[2,4,2]"], lambda: einsum("bij,bjk->bik", a, b))
    _raises(gc.ShapeError, ["einsum: subscripts 'ij,jk->il'", "'l' names no operand's axis"],
            lambda: einsum("ij,jk->il", v, v.T))
    _raises(gc.ShapeError, ["an ellipsis (...) is not supported"], lambda: einsum("...j,jk", v, v.T))
    _raises(gc.ShapeError, ["'1' is not a subscript"], lambda: einsum("i1,j", v, v))
    _raises(gc.ShapeError, ["they name 1 operand(s), got 2"], lambda: einsum("ij", v, v))
    _raises(gc.ShapeError, ["operand 0 has rank 3, but its subscripts 'ij' name 2 axes"], lambda: einsum("ij->i", a))
    _raises(gc.ShapeError, ["output subscript 'i' is repeated"], lambda: einsum("ij->ii", v))
    _raises(gc.DTypeError, ["einsum: needs float32 or float64 operands"],
            lambda: einsum("i->", gc.tensor("ej", (3,), "int64")))
    _raises(gc.ShapeError, ["tensordot: shape mismatch for the sum: axis 2 of a has size 3, axis 0 of b 2"],
            lambda: tensordot(a, b, axes=1))
    _raises(gc.ShapeError, ["tensordot: axes=4 must be between 0 and the smaller rank (3)"],
            lambda: tensordot(a, b, axes=4))
    _raises(gc.ShapeError, ["dot: shapes (2,2,3) and (2,4,2) not aligned: 3 (axis 2) != 4 (axis 1)"], lambda: dot(a, b))
    _raises(gc.ShapeError, ["stack: all tensors need one shape, got f64[2,2,3] and f64[2,4,2]"], lambda: stack([a, b]))
    _raises(gc.ShapeError, ["split: array split does not result in an equal division: axis 1 of size 2 into 3"],
            lambda: split(a, 3, axis=1))
    _raises(gc.ShapeError, ["split: axis 0 has a call-time size"], lambda: split(v, 2))
    _raises(gc.ShapeError, ["getitem: index 3 is out of bounds for axis 0 with size 3"], lambda: index(c, [0, 3]))
    _raises(gc.DTypeError, ["getitem: array indices must be int32 or int64, not float64"], lambda: index(c, v[0]))
    _raises(gc.DTypeError, ["getitem: boolean masks are not supported"],
            lambda: index(c, np.array([True, False, True])))
    _raises(gc.ShapeError, ["getitem: at most one integer-array index"], lambda: index(c, ([0, 1], [1, 0])))


def test_a_rejected_contraction_unifies_no_sizes():
    """A mismatch found after some call-time sizes were unified leaves them as they were."""
    x, w = gc.tensor("ux", (None, None), "float64"), gc.tensor("uw", (3, 4), "float64")
    z = gc.tensor("uz", (2, 5), "float64")
    with pytest.raises(gc.ShapeError, match=r"subscript 'k' has sizes that differ.*operands f64\[\?,\?\], f64\[3,4\]"):
        einsum("ij,jk,ik->", x, w, z)  # i and j bind x's sizes to 2 and 3 before k fails
    assert all(isinstance(s, Dim) for s in x.shape)
