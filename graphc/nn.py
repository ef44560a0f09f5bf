"""Layers: small helpers that create their parameters as gc.shared values and return the symbolic
result, so a model is a few lines and its graph stays plain graphc ops underneath."""
import itertools

from . import functions as F
from . import init as initializers
from .errors import GraphcError
from .loc import user_location
from .shared import shared

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
