"""Random numbers in a static graph, as JAX has them: every sample is a pure function of a key.

```python
key = gc.scalar("key", "int64")                        # a key is an int64 scalar (any 64 bits)
x = gc.tensor("x", (None, 128))
h = gc.random.dropout(gc.relu(x), 0.5, key)              # training: x * mask / (1 - rate)
noise = gc.random.normal(gc.random.fold_in(key, 1), x.shape)
step = gc.compile([x, key], [h, noise])
for i in range(steps):
    step(X, i)                                           # a fresh key each step: any int, e.g. the step
```

- **Keys.** A key is an int64 scalar tensor (or a Python int, made a constant); an int32 scalar is
  widened. Its 64 bits are the key of Philox-4x32-10 (graphc/ops/random.py). The same key gives the
  same values on every call, run, process and thread count, compiled or interpreted (`gc.interpret`
  gives the kernel's bits exactly); a sample's element i depends only on (key, i), i counting
  elements in C order, so `uniform(k, (2, 3))` is `uniform(k, (6,))` reshaped.
- **Independent streams.** Samples drawn with one key are related (`uniform` and `normal` of one
  key read the same blocks, `bits` and float64 `uniform` the same bits): derive a key per use with
  `split(key, n)` (a tuple of n keys) or `fold_in(key, data)` (a key per value of data, e.g. a layer
  number or a step count), which never reuse a block any sample computes.
- **Shapes** are ints or sizes taken from other tensors (`x.shape`, `(x.shape[0], 10)`): call-time
  sizes never recompile (the tensor they come from must be an input of the compiled function).
- **No gradient** flows through a sample (it depends on the key only). Two samples are merged by CSE
  only when they have the same key, shape and parameters, that is when they are the same values;
  constant folding leaves them to the kernel.
"""
import math
import numbers

import numpy as np

from . import functions as F
from .errors import DTypeError, GraphcError, ShapeError, describe
from .loc import user_location
from .ops import random as random_ops  # registers the random ops
from .tensor import Tensor, apply, checked_dtype, checked_shape, make_constant
from .types import broadcast_shapes, is_float, same_shape, size_text, transaction


def _fail(error_class, op, operands, detail):
    raise error_class(describe(op, [t.type for t in operands if isinstance(t, Tensor)], user_location(), detail))


def _integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _int64_tensor(value, op, what, operands):
    """value as an int64 tensor: an int becomes a constant, an int32 tensor is widened (the op's rule
    refuses any other dtype, naming it)."""
    if isinstance(value, Tensor):
        return F.cast(value, "int64") if value.dtype == "int32" else value
    if not _integer(value):
        _fail(DTypeError, op, operands, f"{what} is an int64 tensor or an int, got {type(value).__name__} {value!r}")
    try:
        return make_constant(int(value), "int64")
    except GraphcError as error:
        _fail(type(error), op, operands, f"{what}: {error}")


def _key(key, op, operands=()):
    return _int64_tensor(key, op, "a key", [key, *operands])


def _shape(shape, op, operands):
    try:
        return checked_shape(shape)
    except ShapeError as error:
        _fail(ShapeError, op, operands, str(error))


def _dtype(dtype, op, operands):
    try:
        dtype = checked_dtype(dtype)
    except DTypeError as error:
        _fail(DTypeError, op, operands, str(error))
    if not is_float(dtype):
        _fail(DTypeError, op, operands, f"samples are float32 or float64, not {dtype}")
    return dtype


def _real(value, op, what, operands):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(GraphcError, op, operands, f"{what} must be a finite real number, got {type(value).__name__} {value!r}")
    return float(value)


def _text(shape):
    return "(" + ", ".join(size_text(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def bits(key, shape=()):
    """64 random bits per element, as an int64 tensor of `shape`."""
    key = _key(key, "random.bits")
    return apply("random_bits", key, shape=_shape(shape, "random.bits", [key]), stream=random_ops.SAMPLES)


def uniform(key, shape=(), dtype="float32", low=0.0, high=1.0):
    """Uniform samples in [low, high): 24 random bits per float32 element, 53 per float64 one. low and
    high are numbers (rounded to dtype), low < high."""
    key = _key(key, "random.uniform")
    shape, dtype = _shape(shape, "random.uniform", [key]), _dtype(dtype, "random.uniform", [key])
    low, high = (_real(v, "random.uniform", name, [key]) for v, name in ((low, "low"), (high, "high")))
    _, span, _ = random_ops.uniform_constants(dtype, low, high)
    if not (span > 0 and math.isfinite(span)):
        _fail(GraphcError, "random.uniform", [key],
              f"needs low < high (as {dtype}) with a finite high - low, got low={low!r}, high={high!r}")
    return apply("random_uniform", key, shape=shape, dtype=dtype, low=low, high=high)


def normal(key, shape=(), dtype="float32"):
    """Standard normal samples (Box-Muller from 106 random bits per element; |value| < 8.6)."""
    key = _key(key, "random.normal")
    return apply("random_normal", key, shape=_shape(shape, "random.normal", [key]),
                 dtype=_dtype(dtype, "random.normal", [key]))


def bernoulli(key, p=0.5, shape=None):
    """A bool tensor, True with probability p: uniform(key, shape) < p. p is a number in [0, 1] (compared
    with a float64 sample) or a float tensor broadcasting to shape (compared with a sample of its dtype);
    shape defaults to p's."""
    key = _key(key, "random.bernoulli", [p])
    if isinstance(p, Tensor):
        if not is_float(p.dtype):
            _fail(DTypeError, "random.bernoulli", [key, p], f"p must be a float tensor, not {p.dtype}")
        shape = p.shape if shape is None else _shape(shape, "random.bernoulli", [key, p])
        with transaction():  # a refused p leaves its call-time sizes as they were
            joint = broadcast_shapes(p.shape, shape)
            if joint is None or not same_shape(joint, shape):
                _fail(ShapeError, "random.bernoulli", [key, p], f"p must broadcast to the shape {_text(shape)}")
        return uniform(key, shape, p.dtype) < p
    p = _real(p, "random.bernoulli", "p", [key])
    if not 0.0 <= p <= 1.0:
        _fail(GraphcError, "random.bernoulli", [key], f"p must lie in [0, 1], got {p!r}")
    return uniform(key, () if shape is None else shape, "float64") < p


def split(key, num=2):
    """`num` new keys (a tuple of int64 scalars), independent of each other, of `key` and of its samples."""
    key = _key(key, "random.split")
    if not _integer(num) or num < 1:
        _fail(ShapeError, "random.split", [key], f"num must be a positive int, got {type(num).__name__} {num!r}")
    keys = apply("random_bits", key, shape=(int(num),), stream=random_ops.SPLIT)
    return tuple(keys[j] for j in range(int(num)))


def fold_in(key, data):
    """A new key for each value of `data` (an int or an int tensor, e.g. a step count), of data's shape:
    different data give independent keys."""
    key = _key(key, "random.fold_in", [data])
    return apply("random_fold_in", key, _int64_tensor(data, "random.fold_in", "data", [key, data]))


def dropout(x, rate, key, training=True):
    """Inverted dropout: x * mask / (1 - rate), mask = bernoulli(key, 1 - rate, x.shape), while
    training; x itself when not training or at rate 0. rate is a number in [0, 1) or a float scalar
    tensor (< 1) for schedules. The gradient goes through the same mask (the backward reads the
    forward's mask, never draws again): g * mask / (1 - rate). Dropped elements are 0 even where x is
    infinite or NaN."""
    if not isinstance(x, Tensor) or not is_float(x.dtype):
        _fail(DTypeError, "random.dropout", [x], f"x must be a float tensor, got {getattr(x, 'type', type(x).__name__)}")
    if training is not True and training is not False:
        _fail(GraphcError, "random.dropout", [x], f"training must be True or False, got {training!r}")
    key = _key(key, "random.dropout", [x])
    if isinstance(rate, Tensor):
        if not is_float(rate.dtype):
            _fail(DTypeError, "random.dropout", [x, rate], f"rate must be a float tensor, not {rate.dtype}")
        keep = 1 - rate
    else:
        rate = _real(rate, "random.dropout", "rate", [x])
        if not 0.0 <= rate < 1.0:
            _fail(GraphcError, "random.dropout", [x], f"rate must lie in [0, 1), got {rate!r}")
        keep = 1.0 - rate
    if not training or (not isinstance(rate, Tensor) and rate == 0.0):
        return x
    mask = bernoulli(key, keep, x.shape)
    return F.where(mask, x / keep, 0)


__all__ = ["bernoulli", "bits", "dropout", "fold_in", "normal", "split", "uniform"]
