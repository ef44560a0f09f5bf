"""gc.check_grad: the lecture's advice, analytic gradients checked against numerical ones."""
from dataclasses import dataclass

import numpy as np

from .errors import CallError, GraphcError
from .interpret import interpret
from .loc import user_location
from .lower import lower
from .tensor import Tensor
from .types import is_float

ELEMENTWISE_LIMIT = 64  # inputs up to this many elements are checked element by element


@dataclass
class InputCheck:
    name: str
    worst_error: float
    where: object      # the index of the worst element, or "projection k"
    tolerance: float

    @property
    def ok(self):
        return bool(self.worst_error <= self.tolerance)


class GradCheckReport:
    def __init__(self, checks):
        self.checks = checks

    def __bool__(self):
        return all(c.ok for c in self.checks)

    def __getitem__(self, name):
        return next(c for c in self.checks if c.name == name)

    def __str__(self):
        lines = [f"{'input':<12}{'worst rel. error':>18}  {'at':<16}result"]
        for c in self.checks:
            lines.append(f"{c.name:<12}{c.worst_error:>18.2e}  {str(c.where):<16}{'pass' if c.ok else 'FAIL'}")
        return "\n".join(lines)

    __repr__ = __str__


def check_grad(y, wrt, feeds, eps=1e-6, tolerance=None, projections=3, seed=0):
    """Compare compiled analytic gradients of scalar `y` with central differences in float64.

    feeds: {input tensor: array} for every input y depends on (gc.shared values are checked at their
    current values, not fed). Small inputs are checked element by
    element; larger ones along `projections` random directions. Truthy when every input passes.
    """
    from .compiler import compile
    from .functions import grad

    from .shared import Shared, reachable_shared

    wrt = list(wrt)
    if not isinstance(feeds, dict):
        raise GraphcError(f"check_grad: feeds must be a dict {{input: array}}, got {type(feeds).__name__} "
                          f"(at {user_location()})")
    fed_shared = [t for t in feeds if isinstance(t, Shared)]
    if fed_shared:
        raise GraphcError(f"check_grad: {fed_shared[0].name!r} is a gc.shared value, checked at its own value "
                          f"(set_value it instead of feeding it) (at {user_location()})")
    inputs = list(feeds)
    arrays = [_feed_array(t, feeds[t]) for t in inputs]
    grads = compile(inputs, [y] + grad(y, wrt), name="check_grad")(*arrays)[1:]
    shared = reachable_shared([y])  # differentiated numerically like inputs, from their current values
    inputs, arrays = inputs + shared, arrays + [s.get_value() for s in shared]
    loss64 = _float64_loss(y, inputs)
    rng = np.random.default_rng(seed)
    checks = []
    for target, analytic in zip(wrt, grads):
        k = next((i for i, t in enumerate(inputs) if t is target), None)
        if k is None:
            raise GraphcError(f"check_grad: {target!r} has no value in feeds")
        tol = tolerance or (1e-6 if target.dtype == "float64" else 2e-2)
        checks.append(_check_one(target.name, k, np.asarray(analytic, np.float64), arrays, loss64, eps, tol, projections, rng))
    return GradCheckReport(checks)


def _feed_array(target, value):
    """A feed as an array of its input's dtype; a CallError naming the input otherwise."""
    if not isinstance(target, Tensor):
        raise GraphcError(f"check_grad: feeds' keys must be graphc inputs, got {type(target).__name__} {target!r} "
                          f"(at {user_location()})")
    try:
        return np.asarray(value, dtype=target.dtype)
    except (TypeError, ValueError, OverflowError) as error:
        raise CallError(f"check_grad: the feed of {target.name!r} ({target.type}) is not an array of numbers: {error} "
                        f"(at {user_location()})") from None


def _float64_loss(y, inputs):
    graph = lower([y], inputs)

    def loss(arrays):
        promoted = [a.astype(np.float64) if is_float(a.dtype.name) else a for a in arrays]
        return float(interpret(graph, *promoted, promote=True)[0][0])
    return loss


def _check_one(name, k, analytic, arrays, loss, eps, tol, projections, rng):
    base = [a.astype(np.float64) if is_float(a.dtype.name) else a for a in arrays]
    x = base[k]

    def at(direction, h):
        moved = list(base)
        moved[k] = x + h * direction
        return loss(moved)

    def error(a, n):
        return abs(a - n) / max(abs(a), abs(n), 1e-8)

    worst, where = 0.0, None
    if x.size <= ELEMENTWISE_LIMIT:
        for index in np.ndindex(x.shape):
            direction = np.zeros_like(x)
            direction[index] = 1.0
            numeric = (at(direction, eps) - at(direction, -eps)) / (2 * eps)
            e = error(analytic[index], numeric)
            if e >= worst:
                worst, where = e, index
    else:
        for p in range(projections):
            direction = rng.standard_normal(x.shape)
            direction /= np.linalg.norm(direction)
            numeric = (at(direction, eps) - at(direction, -eps)) / (2 * eps)
            e = error(float(np.sum(analytic * direction)), numeric)
            if e >= worst:
                worst, where = e, f"projection {p}"
    return InputCheck(name, worst, where, tol)
