"""gc.nn.conv2d/conv1d and max/avg pooling: values against direct-loop NumPy references written here
(float32 and float64), gradients for x, w and bias against central differences of those references
(float64, element by element), the ops' NumPy references against the kernels, max pooling's routing
at ties, the lowering (im2col, BLAS matmul, a
transpose, bias and relu in one fused loop), a small CNN trained with gc.optim.sgd, and shape errors.
Cases share a few compiled functions (module-scoped fixtures); shapes are tiny.
"""
import inspect
from dataclasses import dataclass

import numpy as np
import pytest

import graphc as gc
from graphc.data import load_digits
from graphc.errors import DTypeError, ShapeError

from numeric_gradient import central_differences
from test_ops import _expanded

N = 2  # the call-time batch
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6)}


def pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def reference_conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """PyTorch's conv2d by its definition: every output element summed over its group's channels and taps."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, width = x.shape
    out, per_group, kh, kw = w.shape
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, out, ho, wo), np.float64)
    for b in range(n):
        for o in range(out):
            first = (o // (out // groups)) * per_group
            for oh in range(ho):
                for ow in range(wo):
                    total = 0.0 if bias is None else float(bias[o])
                    for ci in range(per_group):
                        for i in range(kh):
                            for j in range(kw):
                                row, col = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                                if 0 <= row < h and 0 <= col < width:
                                    total += float(x[b, first + ci, row, col]) * float(w[o, ci, i, j])
                    y[b, o, oh, ow] = total
    return y


def reference_conv1d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return reference_conv2d(x[:, :, None], w[:, :, None], bias, (1, stride), (0, padding), (1, dilation), groups)[:, :, 0]


def reference_pool(kind, x, kernel_size, stride=None, padding=0):
    """max (padding -inf) or avg (padding counted as zeros, count_include_pad=True) of each window."""
    (kh, kw) = pair(kernel_size)
    (sh, sw), (ph, pw) = pair(stride or kernel_size), pair(padding)
    n, c, h, width = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c, ho, wo))
    for b, ch, oh, ow in np.ndindex(y.shape):
        values = [x[b, ch, oh * sh - ph + i, ow * sw - pw + j] if 0 <= oh * sh - ph + i < h and 0 <= ow * sw - pw + j < width
                  else (-np.inf if kind == "max" else 0.0) for i in range(kh) for j in range(kw)]
        y[b, ch, oh, ow] = max(values) if kind == "max" else sum(values) / (kh * kw)
    return y


# (name, x shape, w shape, bias?, keyword arguments, dtypes); None in x's shape: the call-time batch.
# Every compiled im2col costs its Numba compile, so each case covers several settings at once.
CONV2D = [
    ("plain", (None, 2, 5, 6), (3, 2, 3, 3), True, {}, ("float64",)),
    ("strided_groups", (None, 4, 5, 7), (6, 2, 3, 2), True, dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
     ("float32", "float64")),
]
CONV1D = [  # a fixed batch; a depthwise convolution (a group per channel)
    ("conv1d", (2, 3, 7), (6, 1, 3), True, dict(stride=2, padding=1, dilation=2, groups=3), ("float64",)),
]
CONVS = [("conv2d",) + case for case in CONV2D] + [("conv1d",) + case for case in CONV1D]
GRADIENT_CASES = ["plain", "strided_groups", "conv1d"]
REFERENCE = {"conv2d": reference_conv2d, "conv1d": reference_conv1d}


@dataclass
class Compiled:
    """A fixture's function, the tensors it was compiled from, and what its cases were."""
    f: object
    inputs: list
    outputs: list
    cases: list


def declare_conv(kind, name, x_shape, w_shape, bias, kwargs, dtype):
    x = gc.tensor(f"x_{name}_{dtype}", x_shape, dtype)
    w = gc.tensor(f"w_{name}_{dtype}", w_shape, dtype)
    b = gc.tensor(f"b_{name}_{dtype}", (w_shape[0],), dtype) if bias else None
    y = getattr(gc.nn, kind)(x, w, b, **kwargs)
    return [t for t in (x, w, b) if t is not None], y


def conv_arrays(name, x_shape, w_shape, bias, dtype):
    rng = np.random.default_rng(sum(map(ord, name)))
    shapes = [tuple(N if s is None else s for s in x_shape), w_shape] + ([(w_shape[0],)] if bias else [])
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.fixture(scope="module")
def convolutions():
    """Per case, a function computing its output in its dtypes, and for gradient cases the loss
    sum(y * R)'s gradients (one function per case: Numba's compile time grows faster than the code)."""
    return [compile_case(case) for case in CONVS]


def compile_case(case):
    kind, name, x_shape, w_shape, bias, kwargs, dtypes = case
    inputs, outputs, cases = [], [], []
    for dtype in dtypes:
        tensors, y = declare_conv(kind, name, x_shape, w_shape, bias, kwargs, dtype)
        inputs += tensors
        outputs.append(y)
        cases.append((kind, name, dtype, x_shape, w_shape, bias, kwargs, len(tensors)))
        if dtype == "float64" and name in GRADIENT_CASES:
            r = gc.tensor(f"r_{name}", (x_shape[0],) + y.shape[1:], dtype)
            inputs.append(r)
            outputs += gc.grad(gc.sum(y * r), tensors)
    return Compiled(gc.compile(inputs, outputs, name=f"conv_{name}"), inputs, outputs, cases)


def run_convolutions(convolutions):
    """{(name, dtype): (arrays, y)} and {name: (arrays, R, gradients)} from one call of each case's function."""
    values, grads = {}, {}
    for compiled in convolutions:
        run_case(compiled, values, grads)
    return values, grads


def run_case(compiled, values, grads):
    args, plan = case_arguments(compiled.cases)
    results = list(compiled.f(*args))
    for entry in plan:
        kind, name, dtype, arrays, count = entry[:5]
        values[name, dtype] = (arrays, results.pop(0))
        if len(entry) > 5:
            grads[name] = (arrays, entry[5], [results.pop(0) for _ in range(count)])


def case_arguments(cases):
    """The arrays a case's function takes, and per dtype (kind, name, dtype, arrays, count[, R])."""
    args, plan = [], []
    for kind, name, dtype, x_shape, w_shape, bias, kwargs, count in cases:
        arrays = conv_arrays(name, x_shape, w_shape, bias, dtype)
        args += arrays
        plan.append((kind, name, dtype, arrays, count))
        if dtype == "float64" and name in GRADIENT_CASES:
            shape = REFERENCE[kind](*arrays, **kwargs).shape
            r = np.random.default_rng(1).standard_normal(shape)
            args.append(r)
            plan[-1] += (r,)
    return args, plan


@pytest.mark.parametrize("kind, name, x_shape, w_shape, bias, kwargs, dtypes", CONVS, ids=[c[1] for c in CONVS])
def test_convolution_matches_direct_loops(convolutions, kind, name, x_shape, w_shape, bias, kwargs, dtypes):
    values, _ = run_convolutions(convolutions)
    for dtype in dtypes:
        arrays, y = values[name, dtype]
        expected = REFERENCE[kind](*arrays, **kwargs)
        assert y.dtype == np.dtype(dtype) and y.shape == expected.shape
        np.testing.assert_allclose(y, expected, **TOL[dtype], err_msg=f"{name} {dtype}")


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_convolution_gradients_match_central_differences(convolutions, name):
    kind, _, _, _, _, kwargs, _ = next(c for c in CONVS if c[1] == name)
    _, grads = run_convolutions(convolutions)
    arrays, r, analytic = grads[name]
    loss = lambda values: float(np.sum(REFERENCE[kind](*values, **kwargs) * r))  # noqa: E731
    for k, (what, grad) in enumerate(zip(["x", "w", "bias"], analytic)):
        numeric = central_differences(loss, arrays, k)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8, err_msg=f"{name}: d/d{what}")


# pooling: (name, x shape, kernel_size, stride, padding, dtypes)
POOLS = [
    ("k2", (None, 2, 4, 5), 2, None, 0, ("float32", "float64")),
    ("overlapping_padded", (1, 2, 5, 6), (3, 2), (2, 1), 1, ("float64",)),
]
KINDS = ("max", "avg")


@pytest.fixture(scope="module")
def pools():
    """Each pool's value (both dtypes) and its float64 gradient of sum(y * R), and the tie cases, in one function."""
    inputs, outputs = [], []
    for name, shape, kernel, stride, padding, dtypes in POOLS:
        for kind in KINDS:
            for dtype in dtypes:
                x = gc.tensor(f"{kind}_{name}_{dtype}", shape, dtype)
                y = getattr(gc.nn, f"{kind}_pool2d")(x, kernel, stride, padding)
                inputs.append(x)
                outputs.append(y)
                if dtype == "float64":
                    r = gc.tensor(f"r_{kind}_{name}", (shape[0],) + y.shape[1:], dtype)
                    inputs.append(r)
                    outputs.append(gc.grad(gc.sum(y * r), x))
    tie = gc.tensor("tie", (1, 1, 3, 4), "float64")
    inputs.append(tie)
    outputs += [gc.grad(gc.sum(gc.nn.max_pool2d(tie, 2, stride=1)), tie),
                gc.grad(gc.sum(gc.nn.max_pool2d(-tie, 3, stride=2, padding=1)), tie)]
    small = gc.tensor("small", (1, 1, 2, 2), "float64")
    inputs.append(small)
    outputs += [gc.nn.max_pool2d(small, 3, stride=1, padding=1), gc.nn.avg_pool2d(small, 3, stride=1, padding=1)]
    return Compiled(gc.compile(inputs, outputs, name="pools"), inputs, outputs, POOLS)


def pool_arrays(name, shape, dtype):
    """Distinct values (no ties: max is differentiable there, central differences see it)."""
    shape = tuple(N if s is None else s for s in shape)
    rng = np.random.default_rng(sum(map(ord, name)))
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + 0.01 * rng.standard_normal(shape)).astype(dtype)


def run_pools(pools):
    """{(name, kind, dtype): (x, y)}, {(name, kind): (x, R, gradient)}, and the extra outputs (ties, padding)."""
    args, plan = pool_arguments()
    results = list(pools.f(*args))
    values, grads = {}, {}
    for entry in plan:
        values[entry[:3]] = (entry[3], results.pop(0))
        if len(entry) > 4:
            grads[entry[:2]] = (entry[3], entry[4], results.pop(0))
    return values, grads, results


def pool_arguments():
    """The arrays the pools function takes, and per pool (name, kind, dtype, x[, R])."""
    args, plan = [], []
    for name, shape, kernel, stride, padding, dtypes in POOLS:
        for kind in KINDS:
            for dtype in dtypes:
                x = pool_arrays(name, shape, dtype)
                args.append(x)
                plan.append((name, kind, dtype, x))
                if dtype == "float64":
                    r = np.random.default_rng(2).standard_normal(reference_pool(kind, x, kernel, stride, padding).shape)
                    args.append(r)
                    plan[-1] += (r,)
    return args + [TIE, -np.arange(1.0, 5.0).reshape(1, 1, 2, 2)], plan


TIE = np.array([[[[1.0, 3.0, 3.0, 0.0],
                  [3.0, 2.0, -1.0, 3.0],
                  [5.0, 5.0, 5.0, 4.0]]]])


@pytest.mark.parametrize("name, shape, kernel, stride, padding, dtypes", POOLS, ids=[p[0] for p in POOLS])
def test_pooling_values_and_gradients(pools, name, shape, kernel, stride, padding, dtypes):
    values, grads, _ = run_pools(pools)
    for kind in KINDS:
        for dtype in dtypes:
            x, y = values[name, kind, dtype]
            expected = reference_pool(kind, x.astype(np.float64), kernel, stride, padding)
            assert y.dtype == np.dtype(dtype) and y.shape == expected.shape
            np.testing.assert_allclose(y, expected, **TOL[dtype], err_msg=f"{kind} {name} {dtype}")
        x, r, grad = grads[name, kind]
        loss = lambda values: float(np.sum(reference_pool(kind, values[0], kernel, stride, padding) * r))  # noqa: E731
        np.testing.assert_allclose(grad, central_differences(loss, [x], 0), rtol=1e-6, atol=1e-8,
                                   err_msg=f"{kind} {name}: d/dx")


def test_max_pool_routes_the_gradient_to_the_first_maximum(pools):
    """Ties: each window's gradient goes to its first maximum in row-major order (as PyTorch), and an
    element that is the maximum of several overlapping windows collects each window's gradient."""
    _, _, (overlapping, padded, _, _) = run_pools(pools)
    # 2x2 windows, stride 1: [[1, 3], [3, 2]] has three 3s, the first, (0, 1), wins; it wins [[3, 3], [2, -1]]
    # too; (0, 2) the third window, [[3, 0], [-1, 3]]; (2, k) each window of the last two rows
    np.testing.assert_array_equal(overlapping[0, 0], [[0, 2, 1, 0], [0, 0, 0, 0], [1, 1, 1, 0]])
    # max of -TIE, 3x3 windows, stride 2, padding 1: (0, 0) is the maximum of a window of negatives and
    # -inf padding, (1, 2) of two windows; the gradient of -TIE is -1 per win
    np.testing.assert_array_equal(padded[0, 0], [[-1, 0, 0, 0], [0, -1, -2, 0], [0, 0, 0, 0]])


def test_pooling_padding_semantics(pools):
    """max pads with -inf (a window of negatives and padding doesn't give 0); avg counts the padding as zeros."""
    top, mean = run_pools(pools)[2][2:]  # of -[[1, 2], [3, 4]], 3x3 windows, padding 1: each covers every element
    np.testing.assert_array_equal(top, np.full((1, 1, 2, 2), -1.0))
    np.testing.assert_allclose(mean, np.full((1, 1, 2, 2), -10.0 / 9), rtol=1e-15)


def test_numpy_references_match_the_kernels(convolutions, pools):
    """The ops' NumPy references (the interpreter's) give the compiled values and gradients."""
    runs = [(c, case_arguments(c.cases)[0]) for c in convolutions] + [(pools, pool_arguments()[0])]
    for compiled, args in runs:
        wanted = gc.interpret(_expanded(compiled.outputs, compiled.inputs), *args)[0]
        for got, want in zip(compiled.f(*args), wanted):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, **TOL[str(got.dtype)])


def test_lowering_is_im2col_blas_and_one_fused_bias_relu_loop():
    x = gc.tensor("x", (None, 2, 5, 5))
    w, b = gc.tensor("w", (3, 2, 3, 3)), gc.tensor("b", (3,))
    y = gc.relu(gc.nn.conv2d(x, w, b, padding=1))
    f = gc.compile([x, w, b], [y])
    graph = f.graph
    ops = {graph.nodes[n]["op"] for n in graph.nodes}
    assert ops == {"input", "reshape", "transpose", "im2col", "matmul", "fused"}, ops
    (loop,) = [n for n in graph.nodes if graph.nodes[n]["op"] == "fused"]
    assert [s.op for s in graph.nodes[loop]["attrs"]["body"].steps] == ["add", "relu"]
    X, W, B = (np.random.default_rng(3).standard_normal(s).astype(np.float32) for s in ((N, 2, 5, 5), (3, 2, 3, 3), (3,)))
    np.testing.assert_allclose(f(X, W, B)[0], np.maximum(reference_conv2d(X, W, B, padding=1), 0), **TOL["float32"])


def test_small_cnn_trains_with_sgd():
    """conv -> relu -> max pool -> dense -> cross entropy on digits: the loss falls over a few sgd steps."""
    x, labels = gc.tensor("images", (None, 1, 8, 8)), gc.tensor("labels", (None,), "int64")
    w = gc.shared(gc.init.he_normal((4, 1, 3, 3), seed=0), name="conv.w")
    b = gc.shared(gc.init.zeros((4,)), name="conv.b")
    h = gc.nn.max_pool2d(gc.relu(gc.nn.conv2d(x, w, b, padding=1)), 2)
    scores = gc.nn.dense(gc.reshape(h, (x.shape[0], -1)), 10, seed=1, name="cnn_dense")
    loss = gc.nn.cross_entropy(scores, labels)
    params = gc.parameters(loss)
    assert {id(p) for p in params} >= {id(w), id(b)} and len(params) == 4
    step = gc.compile([x, labels], loss, updates=gc.optim.sgd(loss, params, lr=0.5))
    assert "fused{relu(i0+i1)}" in step.dump()  # bias and relu: one loop in the training step too
    images, digits = load_digits()
    images, digits = images[:64].reshape(-1, 1, 8, 8), digits[:64]
    losses = [float(step(images, digits)) for _ in range(30)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0], losses
    assert not np.array_equal(w.get_value(), gc.init.he_normal((4, 1, 3, 3), seed=0))


def expect_error(error_class, build, line, *fragments):
    with pytest.raises(error_class) as info:
        build()
    message = str(info.value)
    for fragment in fragments + (f"test_conv.py:{line}",):
        assert fragment in message, (fragment, message)


def test_shape_errors_name_the_op_the_types_and_the_line():
    x, w = gc.tensor("x", (None, 3, 4, 4)), gc.tensor("w", (2, 2, 3, 3))
    here = inspect.currentframe().f_lineno
    expect_error(ShapeError, lambda: gc.nn.conv2d(x, w), here + 1,
                 "conv2d", "f32[?,3,4,4]", "f32[2,2,3,3]", "x has 3 channels", "2 per group")
    big = gc.tensor("big", (4, 3, 5, 5))
    expect_error(ShapeError, lambda: gc.nn.conv2d(x, big, padding=(0, 1)), here + 4,
                 "conv2d", "f32[4,3,5,5]", "larger than the padded input (4) along H")
    expect_error(ShapeError, lambda: gc.nn.conv2d(x, gc.tensor("w3", (4, 1, 3, 3)), groups=2), here + 6,
                 "conv2d", "groups must be a positive int dividing the channels (3)")
    signal, long_kernel = gc.tensor("signal", (None, 2, 3)), gc.tensor("long_kernel", (1, 2, 5))
    expect_error(ShapeError, lambda: gc.nn.conv1d(signal, long_kernel), here + 9,
                 "conv1d", "f32[?,2,3]", "f32[1,2,5]", "larger than the padded input (3)")
    expect_error(ShapeError, lambda: gc.nn.max_pool2d(x, 7, padding=1), here + 11,
                 "max_pool2d", "f32[?,3,4,4]", "larger than the padded input (6 = 4 + 2*1) along H")
    expect_error(ShapeError, lambda: gc.nn.avg_pool2d(x, 2, padding=2), here + 13,
                 "avg_pool2d", "at most half the kernel")
    expect_error(ShapeError, lambda: gc.nn.conv2d(x, gc.tensor("w4", (2, 3, 3, 3)), stride=(1, 0)), here + 15,
                 "conv2d", "stride must be an int or a pair of ints, each at least 1")
    expect_error(DTypeError, lambda: gc.nn.conv2d(x, gc.tensor("w64", (2, 3, 3, 3), "float64")), here + 17,
                 "conv2d", "f64[2,3,3,3]", "all one dtype")
