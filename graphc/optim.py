"""Optimizers: each returns the updates dict for gc.compile(..., updates=...), so one call of the
compiled step runs forward, backward and the whole update. Moments and the step count are gc.shared
values created here (trainable=False); the formulas are PyTorch's (torch.optim), so results can be
compared step by step.

lr (and the other rates) may be a Python number or a rank-0 tensor input, for schedules.
"""
import itertools

import numpy as np

from .errors import GraphcError
from .functions import cast, grad, sqrt
from .loc import user_location
from .shared import Shared, shared
from .tensor import Tensor


def sgd(loss, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """p -= lr * d, d = g + weight_decay * p, through a velocity v = momentum * v + d when momentum > 0
    (nesterov: d + momentum * v)."""
    if nesterov and not momentum:
        raise GraphcError(f"gc.optim.sgd: nesterov needs momentum > 0 (at {user_location()})")
    updates = {}
    for p, g in _gradients(loss, params, "sgd"):
        rate, d = _rate(lr, p), _decayed(g, p, weight_decay)
        if momentum:
            v = _state(p, "velocity")
            v_new = momentum * v + d
            updates[v] = v_new
            d = d + momentum * v_new if nesterov else v_new
        updates[p] = p - rate * d
    return updates


def adam(loss, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Adam (Kingma and Ba) with bias correction; weight_decay adds weight_decay * p to the gradient (L2)."""
    return _adam(loss, params, lr, betas, eps, weight_decay, decoupled=False, name="adam")


def adamw(loss, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """Adam with decoupled weight decay (Loshchilov and Hutter): p -= lr * weight_decay * p, then Adam's step."""
    return _adam(loss, params, lr, betas, eps, weight_decay, decoupled=True, name="adamw")


def rmsprop(loss, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """RMSprop: s = alpha * s + (1 - alpha) g^2, p -= lr * g / (sqrt(s) + eps) (centered: s - mean(g)^2;
    momentum: through a buffer b = momentum * b + g / (sqrt(s) + eps))."""
    updates = {}
    for p, g in _gradients(loss, params, "rmsprop"):
        rate, g = _rate(lr, p), _decayed(g, p, weight_decay)
        s = _state(p, "square_average")
        s_new = alpha * s + (1 - alpha) * g * g
        updates[s] = s_new
        if centered:
            m = _state(p, "gradient_average")
            m_new = alpha * m + (1 - alpha) * g
            updates[m] = m_new
            s_new = s_new - m_new * m_new
        step = g / (sqrt(s_new) + eps)
        if momentum:
            b = _state(p, "momentum_buffer")
            step = updates[b] = momentum * b + step
        updates[p] = p - rate * step
    return updates


def _adam(loss, params, lr, betas, eps, weight_decay, decoupled, name):
    beta1, beta2 = betas
    pairs = _gradients(loss, params, name)
    count = shared(np.zeros((), "float64"), name=f"{name}_step{_serial()}", trainable=False)
    t = count + 1.0
    updates = {count: t}
    for p, g in pairs:
        rate = _rate(lr, p)
        g = g if decoupled else _decayed(g, p, weight_decay)
        m, v = _state(p, "first_moment"), _state(p, "second_moment")
        m_new = beta1 * m + (1 - beta1) * g
        v_new = beta2 * v + (1 - beta2) * g * g
        updates[m], updates[v] = m_new, v_new
        # the bias corrections in float64 (beta ** t for t up to millions), then of p's dtype
        correction1 = cast(1.0 - beta1 ** t, p.dtype)
        root2 = cast(sqrt(1.0 - beta2 ** t), p.dtype)
        base = p - rate * weight_decay * p if decoupled and weight_decay else p
        updates[p] = base - rate * (m_new / correction1) / (sqrt(v_new) / root2 + eps)
    return updates


def _gradients(loss, params, name):
    if not isinstance(loss, Tensor) or loss.ndim != 0:
        raise GraphcError(f"gc.optim.{name}: the loss must be a rank-0 tensor, got {loss!r} (at {user_location()})")
    params = [params] if isinstance(params, Tensor) else list(params)
    if not params:
        raise GraphcError(f"gc.optim.{name}: no parameters to update (at {user_location()})")
    for p in params:
        if not isinstance(p, Shared):
            raise GraphcError(f"gc.optim.{name}: parameters must be gc.shared values (their new values are "
                              f"written in place), got {p!r} (at {user_location()})")
        if not p.dtype.startswith("float"):
            raise GraphcError(f"gc.optim.{name}: parameter {p.name!r} is {p.type}, not a float (at {user_location()})")
    return list(zip(params, grad(loss, params)))


def _rate(value, p):
    """A rate beside parameter p: a Python number as it is, a rank-0 tensor cast to p's dtype."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise GraphcError(f"gc.optim: a rate must be a number or a rank-0 tensor, got {value!r} (at {user_location()})")
        return value if value.dtype == p.dtype else cast(value, p.dtype)
    return float(value)


def _decayed(g, p, weight_decay):
    return g + weight_decay * p if weight_decay else g


def _state(p, what):
    return shared(np.zeros(p.shape, p.dtype), name=f"{p.name}.{what}", trainable=False)


_serials = itertools.count()


def _serial():
    return next(_serials)
