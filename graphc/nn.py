"""Layers: small helpers that create their parameters as gc.shared values and return the symbolic
result, so a model is a few lines and its graph stays plain graphc ops underneath."""
import itertools
import numbers

from . import functions as F
from . import init as initializers
from .errors import DTypeError, GraphcError, ShapeError, describe
from .loc import user_location
from .ops.conv import output_size
from .random import dropout  # noqa: F401  (gc.nn.dropout)
from .shared import shared
from .tensor import Tensor, as_tensors
from .types import Dim, is_float, resolve

ACTIVATIONS = {None: None, "linear": None, "relu": F.relu, "tanh": F.tanh, "sigmoid": F.sigmoid,
               "softplus": F.softplus}
_layers = itertools.count()


def dense(x, units, activation=None, name=None, init="he_normal", bias=True, seed=None):
    """activation(x @ W + b), W of shape (x.shape[-1], units) initialized by gc.init.<init> (seeded),
    b zeros; both gc.shared, named `name`.W and `name`.b (default dense0, dense1, ...).
    activation: None, "relu", "tanh", "sigmoid", "softplus" or a function of a tensor."""
    if x.ndim not in (1, 2):
        raise GraphcError(f"gc.nn.dense: x must be rank 1 or 2, got {x.type} (at {user_location()})")
    if not isinstance(units, int) or units <= 0:
        raise GraphcError(f"gc.nn.dense: units must be a positive int, got {units!r} (at {user_location()})")
    act = activation if callable(activation) else _activation(activation)
    fill = getattr(initializers, init, None) if isinstance(init, str) else None
    if fill is None:
        raise GraphcError(f"gc.nn.dense: init {init!r} is not one of gc.init's initializers (at {user_location()})")
    name = name or f"dense{next(_layers)}"
    fan_in = x.shape[-1]
    if not isinstance(fan_in, int):
        raise GraphcError(f"gc.nn.dense: x's last axis must have a fixed size, got {x.type} (at {user_location()})")
    W = shared(fill((fan_in, units), seed=seed, dtype=x.dtype), name=f"{name}.W")
    y = x @ W
    if bias:
        y = y + shared(initializers.zeros((units,), x.dtype), name=f"{name}.b")
    return act(y) if act else y


def _activation(name):
    if name not in ACTIVATIONS:
        raise GraphcError(f"gc.nn.dense: activation {name!r} is not one of {sorted(k for k in ACTIVATIONS if k)} "
                          f"or a function (at {user_location()})")
    return ACTIVATIONS[name]


def cross_entropy(logits, labels):
    """The mean over rows of -log softmax(logits)[i, labels[i]]: logits (N, C) float, labels (N,) int.
    It compiles to the one stable softmax_cross_entropy gate (passes/fuse)."""
    if logits.ndim != 2 or labels.ndim != 1 or not labels.dtype.startswith("int"):
        raise GraphcError(f"gc.nn.cross_entropy takes logits (N, C) and int labels (N,), got {logits.type} and "
                          f"{labels.type} (at {user_location()})")
    picked = F.take_along_axis(F.log_softmax(logits, axis=1), F.reshape(labels, (-1, 1)), axis=1)
    return -F.mean(picked)


# Convolution and pooling, NCHW, PyTorch's semantics and argument names. conv2d lowers to im2col
# (each group's patches as the rows of a matrix), one BLAS matmul per group with the reshaped weights
# and a transpose to NCHW; autodiff gives the input gradient through matmul's and col2im's rules. The
# bias is added after the transpose, so it and a following activation are one fused loop.
def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, H, W), w (out, C/groups, kh, kw), bias (out,) or None -> (N, out, Ho, Wo), as
    torch.nn.functional.conv2d; stride, padding and dilation are ints or pairs."""
    x, w, bias = _operands("conv2d", x, w, bias, rank=4)
    geometry = {name: _pair("conv2d", value, name, [x, w], 2, low) for name, value, low in
                (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1))}
    return _conv("conv2d", x, w, bias, geometry, groups)


def conv1d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, L), w (out, C/groups, k), bias (out,) or None -> (N, out, Lo), as
    torch.nn.functional.conv1d: conv2d over a height of 1."""
    x, w, bias = _operands("conv1d", x, w, bias, rank=3)
    # the height of 1: stride 1, padding 0, dilation 1
    geometry = {name: (low,) + _pair("conv1d", value, name, [x, w], 1, low) for name, value, low in
                (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1))}
    n, c, length = x.shape
    out, per_group, k = w.shape
    y = _conv("conv1d", F.reshape(x, (n, c, 1, length)), F.reshape(w, (out, per_group, 1, k)), None, geometry, groups,
              shown=(x, w))
    y = F.reshape(y, (n, out, y.shape[3]))
    return y if bias is None else y + F.reshape(bias, (out, 1))


def _conv(op, x, w, bias, geometry, groups, shown=None):
    """conv2d of rank-4 x and w, its errors naming `op` and the `shown` operands (the caller's)."""
    shown = shown or (x, w)
    n, c, h, width = x.shape
    out, per_group, kh, kw = w.shape
    if not _is_int(groups) or groups < 1 or c % groups or out % groups:
        _fail(ShapeError, op, shown, f"groups must be a positive int dividing the channels ({c}) and the "
                                     f"output channels ({out}), got {groups!r}")
    if per_group * groups != c:
        _fail(ShapeError, op, shown, f"x has {c} channels, but w takes {per_group} per group x {groups} "
                                     f"group{'s' if groups > 1 else ''} = {per_group * groups}")
    if bias is not None and (bias.ndim != 1 or resolve(bias.shape[0]) != out):
        _fail(ShapeError, op, shown + (bias,), f"bias must have shape ({out},), one value per output channel")
    sizes = []
    for axis, size, k, s, p, d in zip("HW", (h, width), (kh, kw), geometry["stride"], geometry["padding"],
                                      geometry["dilation"]):
        sizes.append(output_size(size, k, s, p, d))
        if sizes[-1] is None:
            _fail(ShapeError, op, shown, f"the kernel ({d * (k - 1) + 1} wide with dilation {d}) is larger than the "
                                         f"padded input ({size + 2 * p})" + ("" if op == "conv1d" else f" along {axis}"))
    ho, wo = sizes
    patches = F.apply("im2col", x, kernel=(kh, kw), groups=groups, **geometry)  # (groups, N*Ho*Wo, C/groups*kh*kw)
    if groups == 1:
        y = F.reshape(patches, (-1, per_group * kh * kw)) @ F.reshape(w, (out, -1)).T
    else:  # one product per group, its patches and weights views of the whole arrays
        weights = F.reshape(w, (groups, out // groups, -1))
        y = F.concatenate([patches[g] @ weights[g].T for g in range(groups)], axis=1)
    y = F.transpose(F.reshape(y, (n, ho, wo, out)), (0, 3, 1, 2))
    return y if bias is None else y + F.reshape(bias, (out, 1, 1))


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """The maximum of each kernel_size window of x (N, C, H, W), as torch.nn.functional.max_pool2d:
    stride defaults to kernel_size, padding (at most half the kernel) is -inf. The gradient goes to
    each window's first maximum in row-major order (ties: the first; a NaN: the first NaN), summed
    where windows overlap."""
    return _pool("max_pool2d", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """The mean of each kernel_size window of x (N, C, H, W), as torch.nn.functional.avg_pool2d with
    count_include_pad=True: padding (at most half the kernel) counts as zeros, every window divides by
    kh * kw. The gradient spreads evenly over the window."""
    return _pool("avg_pool2d", x, kernel_size, stride, padding)


def _pool(op, x, kernel_size, stride, padding):
    (x,) = _tensors(op, [x])
    if not is_float(x.dtype) or x.ndim != 4:
        _fail(ShapeError if is_float(x.dtype) else DTypeError, op, [x], "takes a float (N, C, H, W) tensor")
    kernel = _pair(op, kernel_size, "kernel_size", [x], 2, 1)
    stride = kernel if stride is None else _pair(op, stride, "stride", [x], 2, 1)
    return F.apply(op, x, kernel=kernel, stride=stride, padding=_pair(op, padding, "padding", [x], 2, 0))


def _operands(op, x, w, bias, rank):
    x, w = _tensors(op, [x, w])
    bias = None if bias is None else _tensors(op, [bias, x])[0]
    shown = [x, w] + ([bias] if bias is not None else [])
    if not all(is_float(t.dtype) for t in shown) or len({t.dtype for t in shown}) > 1:
        _fail(DTypeError, op, shown, "x, w and bias must be float32 or float64, all one dtype")
    if x.ndim != rank or w.ndim != rank:
        axes = "(N, C, H, W) and w (out, C/groups, kh, kw)" if rank == 4 else "(N, C, L) and w (out, C/groups, k)"
        _fail(ShapeError, op, shown, f"takes x {axes}")
    if any(isinstance(resolve(s), Dim) for s in x.shape[1:] + w.shape):
        _fail(ShapeError, op, shown, "only the batch (x's first axis) may be a call-time size")
    return x, w, bias


def _pair(op, value, name, operands, length, low):
    """An int or a tuple of `length` ints, each at least `low`, as a tuple."""
    values = (value,) * length if _is_int(value) else tuple(value) if isinstance(value, (tuple, list)) else None
    if values is None or len(values) != length or not all(_is_int(v) and v >= low for v in values):
        what = "an int" + (" or a pair of ints" if length == 2 else " or a 1-tuple")
        _fail(ShapeError, op, operands, f"{name} must be {what}, each at least {low}, got {value!r}")
    return tuple(int(v) for v in values)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _tensors(op, values):
    try:
        return as_tensors(values)
    except GraphcError as error:
        _fail(type(error), op, values, str(error))


def _fail(error_class, op, operands, detail):
    raise error_class(describe(op, [t.type for t in operands if isinstance(t, Tensor)], user_location(), detail))
