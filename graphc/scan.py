"""gc.scan: a loop with carried state, as jax.lax.scan.

    def step(h, x):
        h = gc.tanh(x @ Wx + h @ Wh + b)
        return h, h                      # (new carry, this step's y)

    h_last, hs = gc.scan(step, h0, xs)   # xs: [T, batch, features]; hs: [T, batch, hidden]

`fn` is called once, on stand-ins of one step's carry and x, and recorded as the step's graph. In
the graph you compile the scan is a node per result, all computed by one loop over T that calls the
step, compiled once: the compile time does not grow with T, which may be a call-time size. It is
differentiable: the backward is a reverse scan, reading the step's values it needs as the forward
loop saved them (memory: T times each such value, and the carries). Tensors fn reads from outside (weights, gc.shared
parameters, inputs) are captured: the same in every step, with gradients summed over the steps.
Structures are one level deep: a tensor, or a tuple or list of tensors.

Choices inside a step: graphc has no gc.cond. Compute both sides and select with
gc.where(condition, a, b): the gradient flows to the chosen side only (e.g. masking padded steps:
`h = gc.where(mask_t > 0, h_new, h)`, with the mask one of the xs). Both sides are evaluated: the
side not chosen gets a zero gradient, which still becomes NaN through an op whose local gradient is
infinite at its value (log or sqrt at 0: 0 * inf); keep such operands in range
(`gc.log(gc.where(ok, x, 1.0))`).
"""
from .errors import DTypeError, GraphcError, ShapeError
from .ir import Graph
from .loc import user_location
from .lower import add_tensor
from .ops import scan as _scan_op  # registers the op
from .tensor import Tensor, apply, as_tensors, constant
from .types import TensorType, transaction, unify


def scan(fn, init, xs, reverse=False):
    """(final carry, ys): carry = init, then for t in 0..T-1 (T-1..0 with reverse=True)
    `carry, y = fn(carry, x_t)`, x_t the t-th slice of xs along its leading axis; ys is each y
    stacked along a new leading axis (ys[t] from step t).

    init: a tensor or a tuple/list of tensors (numbers become constants); each new carry must have
    its dtype and shape. xs: a tensor or a tuple/list of tensors of one length T >= 0 (x_t keeps the
    structure). fn returns (carry, y), y a tensor, a tuple/list of tensors, or None (then ys is None).
    """
    if not callable(fn):
        raise GraphcError(f"gc.scan: fn must be a function (carry, x) -> (carry, y), got {type(fn).__name__} "
                          f"(at {user_location()})")
    where = user_location()
    init_parts, rebuild_carry = _parts(init, "init", where)
    xs_parts, rebuild_x = _parts(xs, "xs", where)
    if not xs_parts:
        raise ShapeError(f"gc.scan: xs is empty; give at least one tensor to scan over (at {where})")
    for k, x in enumerate(xs_parts):
        if x.ndim == 0:
            raise ShapeError(f"gc.scan: xs {k} is a scalar ({x.type}); scan runs over the leading axis (at {where})")
    carries = [_stand_in(f"carry{j}", c.type, where) for j, c in enumerate(init_parts)]
    slices = [_stand_in(f"x{j}", TensorType(x.shape[1:], x.dtype), where) for j, x in enumerate(xs_parts)]
    new_carries, ys = _traced(fn, rebuild_carry(carries), rebuild_x(slices), where)
    new_carries = [_checked_carry(j, new, carry, where) for j, (new, carry) in enumerate(zip(new_carries, carries))]
    y_parts, rebuild_y = ([], None) if ys is None else _parts(ys, "fn's y", where)
    graph, captured = _step_graph(getattr(fn, "__name__", "step"), carries + slices, new_carries + y_parts)
    step = _scan_op.StepFunction(graph, len(carries), len(slices))
    operands = init_parts + xs_parts + captured
    final = [apply("scan", *operands, fn=step, reverse=bool(reverse), output=("carry", j)) for j in range(len(carries))]
    stacked = [apply("scan", *operands, fn=step, reverse=bool(reverse), output=("ys", j)) for j in range(len(y_parts))]
    return rebuild_carry(final), None if ys is None else rebuild_y(stacked)


def _parts(value, what, where):
    """(the tensors of a tensor or a tuple/list of them, a function rebuilding that structure)."""
    if isinstance(value, (tuple, list)):
        kind = type(value)
        return [_tensor(v, f"{what}[{k}]", where) for k, v in enumerate(value)], lambda parts: kind(parts)
    return [_tensor(value, what, where)], lambda parts: parts[0]


def _tensor(value, what, where):
    if isinstance(value, Tensor):
        return value
    try:
        return constant(value)
    except GraphcError as error:
        raise type(error)(f"gc.scan: {what} must be a tensor or a number: {error}") from None


def _stand_in(name, t, where):
    return Tensor("input", (), {"name": name}, TensorType(t.shape, t.dtype), where)


def _traced(fn, carry, x, where):
    """fn's (new carries as a list, y) for the stand-ins."""
    result = fn(carry, x)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise GraphcError(f"gc.scan: fn must return (carry, y), got {type(result).__name__} (scan at {where})")
    new, y = result
    expected = carry if isinstance(carry, (tuple, list)) else [carry]
    parts = list(new) if isinstance(new, (tuple, list)) else [new]
    if isinstance(carry, (tuple, list)) != isinstance(new, (tuple, list)) or len(parts) != len(expected):
        raise GraphcError(f"gc.scan: fn's new carry must have init's structure ({_structure(carry)}), got "
                          f"{_structure(new)} (scan at {where})")
    return parts, y


def _structure(value):
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return "one tensor" if isinstance(value, Tensor) else type(value).__name__


def _checked_carry(j, new, carry, where):
    """The new carry j as a tensor of the carry's type (a number takes its dtype)."""
    try:
        new = as_tensors([new, carry])[0]
    except GraphcError as error:
        raise type(error)(f"gc.scan: fn's new carry {j}: {error} (scan at {where})") from None
    if new.dtype != carry.dtype:
        raise DTypeError(f"gc.scan: carry {j} is {carry.type} and fn returns {new.type} for it (made at {new.loc}); "
                         f"the carry keeps its dtype: cast it with gc.cast (scan at {where})")
    try:
        with transaction():
            if new.ndim != carry.ndim or any(unify(a, b) is None for a, b in zip(new.shape, carry.shape)):
                raise ShapeError("")
    except ShapeError:
        raise ShapeError(f"gc.scan: carry {j} is {carry.type} and fn returns {new.type} for it (made at {new.loc}); "
                         f"the carry keeps its shape (scan at {where})") from None
    return new


def _step_graph(name, stand_ins, outputs):
    """(the step's graph: stand-ins, then captured tensors, as inputs; the captured tensors): a captured
    tensor is one the step reads that does not depend on a stand-in (scalar constants stay in the step)."""
    inner = _depending(stand_ins, outputs)
    captured, seen, stack = {}, set(), list(reversed(outputs))
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if id(t) in inner:
            stack.extend(reversed(t.inputs))
        elif not (t.op == "constant" and t.ndim == 0):
            captured.setdefault(id(t), t)
    graph, memo = Graph(name), {}
    graph.inputs = [add_tensor(graph, t, memo) for t in stand_ins]
    for k, t in enumerate(captured.values()):
        memo[id(t)] = graph.add("input", (), {"name": f"captured{k}"}, TensorType(t.shape, t.dtype), t.loc)
        graph.inputs.append(memo[id(t)])
    graph.outputs = [add_tensor(graph, t, memo) for t in outputs]
    return graph, list(captured.values())


def _depending(stand_ins, outputs):
    """ids of the tensors reachable from `outputs` that depend on a stand-in (an iterative walk)."""
    depends = {id(t): True for t in stand_ins}
    stack = list(outputs)
    while stack:
        t = stack[-1]
        if id(t) in depends:
            stack.pop()
            continue
        pending = [i for i in t.inputs if id(i) not in depends]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        depends[id(t)] = any(depends[id(i)] for i in t.inputs)
    return {k for k, v in depends.items() if v}
