"""Initial values for parameters, as NumPy arrays to pass to gc.shared: seeded, so a run repeats.

fan_in and fan_out: a dense weight (in, out) has fan_in = in, fan_out = out; a convolution weight
(out, in, kh, kw) has fan_in = in * kh * kw, fan_out = out * kh * kw.
"""
import math

import numpy as np


def zeros(shape, dtype="float32"):
    return np.zeros(shape, dtype)


def ones(shape, dtype="float32"):
    return np.ones(shape, dtype)


def he_normal(shape, seed=None, dtype="float32"):
    """Normal with std sqrt(2 / fan_in) (He et al. 2015): for relu layers."""
    return _rng(seed).normal(0.0, math.sqrt(2.0 / _fans(shape)[0]), shape).astype(dtype)


def he_uniform(shape, seed=None, dtype="float32"):
    limit = math.sqrt(6.0 / _fans(shape)[0])
    return _rng(seed).uniform(-limit, limit, shape).astype(dtype)


def glorot_normal(shape, seed=None, dtype="float32"):
    fan_in, fan_out = _fans(shape)
    return _rng(seed).normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape).astype(dtype)


def glorot_uniform(shape, seed=None, dtype="float32"):
    """Uniform in +-sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio 2010): for tanh and sigmoid layers."""
    fan_in, fan_out = _fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return _rng(seed).uniform(-limit, limit, shape).astype(dtype)


def _fans(shape):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    field = math.prod(shape[2:])
    return shape[1] * field, shape[0] * field


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
