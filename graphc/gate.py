"""gc.gate: the lecture's grouping of nodes into one gate whose local gradient is easy.

    @gc.gate
    def my_sigmoid(x):
        return 1 / (1 + gc.exp(-x))

    @my_sigmoid.defvjp
    def _(g, out, x):           # upstream gradient, the gate's value, its operands
        return (g * out * (1 - out),)

my_sigmoid(z) is one node, gate[my_sigmoid], in the graph; its backward is the rule (reusing the
gate's value, as the sigmoid gate does), not the autodiff of its body; after autodiff the body is
inlined and fuses like built-in ops. Without a rule the gate differentiates its body. The body and
the rule are traced once per call on stand-ins of the operands' types and kept as data (fused.Body),
so graphs with gates are cached, saved and loaded like any other.
"""
import functools

from .errors import GradientError, GraphcError
from .lower import lower
from .loc import user_location
from .ops.fused import Body, Step
from .ops.registry import OPS
from .tensor import Tensor, apply, as_tensors
from .types import is_float


def gate(fn=None, *, name=None, grad=None):
    """Decorate a function of tensors (written with graphc ops) as a gate; grad: its gradient rule
    (g, out, *inputs) -> one gradient (or None) per input, also settable with @gate.defvjp."""
    if fn is None:
        return lambda f: Gate(f, name, grad)
    return Gate(fn, name, grad)


class Gate:
    def __init__(self, fn, name=None, rule=None):
        if not callable(fn):
            raise GraphcError(f"gc.gate decorates a function, got {type(fn).__name__} (at {user_location()})")
        self.fn, self.name, self.rule = fn, name or fn.__name__, rule
        functools.update_wrapper(self, fn)

    def defvjp(self, rule):
        """Set the gradient rule (g, out, *inputs) -> gradients; returns the rule (a decorator)."""
        self.rule = rule
        return rule

    def __call__(self, *operands):
        operands = as_tensors(operands)
        stand_ins = [_stand_in(f"i{k}", t) for k, t in enumerate(operands)]
        value = self._traced(self.fn, stand_ins, "its body")
        if not isinstance(value, Tensor):
            raise GraphcError(f"gate {self.name}: its body must return one graphc tensor, got {type(value).__name__} "
                              f"(at {user_location()})")
        body = _body(self.name, [value], stand_ins, "its body")
        g, out = _stand_in("g", value), _stand_in("out", value)
        rule_inputs = [g, out, *stand_ins]
        grads = self._rule_bodies(value, g, out, stand_ins, rule_inputs)
        return apply("gate", *operands, name=self.name, body=body, grads=grads)

    def _rule_bodies(self, value, g, out, stand_ins, rule_inputs):
        from .functions import grad, sum
        if self.rule is None:  # the autodiff of the body: sum(value * g)'s gradient for each float operand
            wanted = [t for t in stand_ins if is_float(t.dtype)]
            gradients = dict(zip(map(id, wanted), grad(sum(value * g), wanted))) if wanted else {}
            return tuple(_differentiated(self.name, gradients[id(t)], rule_inputs) if id(t) in gradients else None
                         for t in stand_ins)
        results = self._traced(self.rule, [g, out, *stand_ins], "its gradient rule")
        results = (results,) if isinstance(results, Tensor) or results is None else tuple(results)
        if len(results) != len(stand_ins):
            raise GradientError(f"gate {self.name}: its gradient rule returned {len(results)} gradients for "
                                f"{len(stand_ins)} inputs (at {user_location()})")
        return tuple(None if r is None else _body(self.name, [r], rule_inputs, "its gradient rule") for r in results)

    def _traced(self, fn, stand_ins, what):
        try:
            return fn(*stand_ins)
        except GraphcError as error:
            raise type(error)(f"gate {self.name}, {what}: {error}") from None

    def __repr__(self):
        return f"<graphc.gate {self.name}>"


def _stand_in(name, like):
    return Tensor("input", (), {"name": f"_gate_{name}"}, like.type, like.loc)


def _differentiated(name, gradient, rule_inputs):
    """The body of gc.grad's result with its grad node expanded by the autodiff pass."""
    from graphc.passes import autodiff, dce
    graph = dce(autodiff(lower([gradient], rule_inputs)))
    return _body_of(name, graph, "its body's gradient")


def _body(name, values, stand_ins, what):
    try:
        graph = lower(values, stand_ins)
    except GraphcError as error:
        raise GraphcError(f"gate {name}: {what} uses a tensor that is not one of the gate's inputs; pass it "
                          f"as an input ({error})") from None
    return _body_of(name, graph, what)


def _body_of(name, graph, what):
    """graph's output as Steps over its inputs ("in", k) and scalar constants."""
    where = {node: ("in", k) for k, node in enumerate(graph.inputs)}
    steps = []
    for node in graph.order():
        data = graph[node]
        if node in where:
            continue
        if data["op"] == "constant":
            value = data["attrs"]["value"]
            if getattr(value, "ndim", 0) != 0:
                raise GraphcError(f"gate {name}: {what} uses an array constant (at {data['loc']}); pass it as an input")
            where[node] = ("const", value.item() if hasattr(value, "item") else value, data["type"].dtype)
            continue
        if data["op"] in ("grad", "gate") or data["op"] not in OPS:
            raise GraphcError(f"gate {name}: {what} may not use {data['op']} (at {data['loc']})")
        steps.append(Step(data["op"], tuple(where[a] for a in data["args"]), tuple(sorted(data["attrs"].items())),
                          data["type"], data["loc"]))
        where[node] = ("step", len(steps) - 1)
    output = graph.outputs[0]
    if where[output][0] != "step":
        raise GraphcError(f"gate {name}: {what} must compute something from its inputs, not return one unchanged")
    if where[output][1] != len(steps) - 1:  # the value is an earlier step: make it the last
        steps.append(steps[where[output][1]])
    return Body(tuple(steps))
