"""Graphs as plain JSON data: graph_to_json(graph) -> dict, graph_from_json(dict) -> Graph.

Loading never runs code from the data: it builds only graphc's own value types (Graph, TensorType,
Dim, fused Body and Step, MemoryPlan) and NumPy arrays from base64 bytes of a known dtype, and it
refuses what it does not know: another schema or version, an unknown op, node field or value tag,
an attribute the op's shape rule does not take (the loaded graph is verified: edges match operands,
types re-inferred equal the recorded ones).

Schema (version 1):
  {"schema": "graphc-graph", "version": 1, "name", "inputs", "outputs", "updates", "options", "fired",
   "dims": [{"origin", "formula", "parts", "factor", "parent", "value"}],   # call-time sizes, by index
   "nodes": [{"id", "op", "args", "attrs", "type", "loc", "phase", "origin", ...}], "edges": [[u, v]],
   "memory_plan": {"buffers", "naive", "steps"} or null,
   "schedule": [["kernel" | "inline", [node, ...], why], ...] or null}           # optional
Values: JSON numbers, strings, booleans and null stand for themselves, JSON arrays for tuples; other
values are one-key objects: {"dim": k}, {"type": [dtype, sizes]}, {"body": [steps]},
{"array": base64, "dtype", "shape"}, {"float": "inf" | "-inf" | "nan"},
{"step_function": {"carries", "xs", "graph": {"name", "inputs", "outputs", "nodes", "edges"}}} (a scan's step,
its sizes in the same "dims").
Dims keep their identity (one object per index) and their union-find state, so sizes that were
unified stay unified. A MemoryPlan is written without its graph: on load it names the sizes of the
graph it belongs to (the planner's input differs from it only by the reuse tags).
"""
import base64
import functools
import inspect
import itertools
import math

import numpy as np

from .errors import GraphcError
from .ir import Graph
from .memory_plan import MemoryPlan
from .schedule import Inline, Launch, Schedule
from .ops import OPS
from .ops.fused import Body, Step
from .ops.scan import StepFunction
from .types import DTYPES, Dim, TensorType, transaction

SCHEMA, VERSION = "graphc-graph", 1
NODE_FIELDS = {"op", "args", "attrs", "type", "loc", "phase", "origin"}
OPTIONAL_NODE_FIELDS = {"loop", "reuses", "origin_op"}
SOURCE_ATTRS = {"input": {"name"}, "constant": {"value"}}  # source ops have no shape rule to check attrs with
PHASES = ("forward", "backward")
PLAIN = {type(None), bool, int, float, str}


class SerializeError(GraphcError, ValueError):
    """A graph that can't be written as data, or data that is not a valid graph."""


# ---- writing -----------------------------------------------------------------------------------------

def graph_to_json(graph):
    """The graph as JSON-ready data (raises SerializeError on a value the schema has no form for)."""
    writer = _Writer()
    nodes = [writer.node(node, data) for node, data in graph.g.nodes(data=True)]
    plan = getattr(graph, "memory_plan", None)
    return {"schema": SCHEMA, "version": VERSION, "name": graph.name, "inputs": list(graph.inputs),
            "outputs": list(graph.outputs), "updates": [list(pair) for pair in graph.updates],
            "options": {k: writer.value(v) for k, v in graph.options.items()},
            "fired": dict(getattr(graph, "fired", {})), "nodes": nodes, "edges": [list(e) for e in graph.g.edges],
            "memory_plan": writer.plan(plan) if plan is not None else None, "dims": writer.dims,
            "schedule": _schedule_data(getattr(graph, "schedule", None))}


def _schedule_data(schedule):
    if schedule is None:
        return None
    return [["kernel", list(s.nodes), ""] if isinstance(s, Launch) else ["inline", list(s.nodes), s.why]
            for s in schedule.steps]


def _schedule_from(graph, data):
    """The schedule's steps (optional: graphs written before the schedule pass have none)."""
    if not isinstance(data, list):
        _fail("schedule must be a list")
    steps = []
    for item in data:
        if not (isinstance(item, list) and len(item) == 3 and item[0] in ("kernel", "inline") and isinstance(item[1], list)
                and item[1] and all(_int(n) in graph.g for n in item[1])):
            _fail(f"bad schedule step {str(item)[:60]}")
        nodes = tuple(_int(n) for n in item[1])
        steps.append(Launch(nodes) if item[0] == "kernel" else Inline(nodes, _text(item[2])))
    return Schedule(steps)


class _Writer:
    def __init__(self):
        self.dims, self._index = [], {}

    def node(self, node, data):
        unknown = set(data) - NODE_FIELDS - OPTIONAL_NODE_FIELDS
        if unknown:
            raise SerializeError(f"node %{node} ({data['op']}) has fields the schema lacks: {sorted(unknown)}")
        fields = {"id": node, "op": data["op"], "args": list(data["args"]), "type": self.type(data["type"]),
                  "attrs": {k: self.value(v) for k, v in data["attrs"].items()},
                  "loc": data["loc"], "phase": data["phase"], "origin": data["origin"]}
        fields.update({k: data[k] for k in OPTIONAL_NODE_FIELDS if k in data})
        return fields

    def plan(self, plan):
        return {"buffers": [[self.type(t), [self.value(p) for p in span]] for t, span in plan.buffers],
                "naive": [self.type(t) for t in plan.naive], "steps": plan.steps}

    def type(self, t):
        return [t.dtype, [self.size(s) for s in t._shape]]

    def size(self, size):
        return {"dim": self.dim(size)} if isinstance(size, Dim) else size

    def dim(self, dim):
        if id(dim) not in self._index:
            self._index[id(dim)] = None  # a placeholder: parts and parents are written first
            record = {"origin": dim.origin, "formula": dim.formula, "parts": [self.dim(p) for p in dim.parts],
                      "factor": dim.factor, "parent": None if dim._parent is None else self.dim(dim._parent),
                      "value": dim._value, "id": dim.id}
            self._index[id(dim)] = len(self.dims)
            self.dims.append(record)
        elif self._index[id(dim)] is None:
            raise SerializeError(f"size {dim} refers to itself")
        return self._index[id(dim)]

    def value(self, value):
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, tuple):
            return [self.value(v) for v in value]
        if isinstance(value, Dim):
            return {"dim": self.dim(value)}
        if isinstance(value, TensorType):
            return {"type": self.type(value)}
        if isinstance(value, Body):
            return {"body": [self.step(s) for s in value.steps]}
        if isinstance(value, StepFunction):
            graph = value.graph
            return {"step_function": {"carries": value.carries, "xs": value.xs, "graph": {
                "name": graph.name, "inputs": list(graph.inputs), "outputs": list(graph.outputs),
                "nodes": [self.node(n, d) for n, d in graph.g.nodes(data=True)], "edges": [list(e) for e in graph.g.edges]}}}
        if isinstance(value, np.ndarray) and value.dtype.name in DTYPES:
            data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
            return {"array": data, "dtype": value.dtype.name, "shape": list(value.shape)}
        raise SerializeError(f"no data form for a value of type {type(value).__name__}: {value!r:.80}")

    def step(self, step):
        return {"op": step.op, "args": self.value(step.args), "attrs": self.value(step.attrs), "type": self.type(step.type),
                "where": step.where}


# ---- reading -----------------------------------------------------------------------------------------

def graph_from_json(data):
    """The Graph `data` describes; SerializeError when it is not a valid graph of this schema."""
    try:
        return _read(data)
    except SerializeError:
        raise
    except (GraphcError, KeyError, TypeError, ValueError, AttributeError, IndexError, AssertionError, RecursionError) as error:
        raise SerializeError(f"not a valid graph: {type(error).__name__}: {error}") from None


def _read(data):
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        _fail("not a graphc graph")
    if data.get("version") != VERSION:
        _fail(f"graph schema version {data.get('version')!r}, this graphc reads {VERSION}")
    reader = _Reader(data["dims"])
    graph = Graph(_text(data["name"]))
    for fields in data["nodes"]:
        reader.node(graph, fields)
    _edges(graph, data["edges"])
    graph.inputs = [_int(n) for n in data["inputs"]]
    graph.outputs = [_int(n) for n in data["outputs"]]
    graph.updates = [(_int(i), _int(v)) for i, v in data["updates"]]
    graph.options = {_text(k): reader.value(v) for k, v in data["options"].items()}
    graph.fired = {_text(k): _int(v) for k, v in data["fired"].items()}
    graph._ids = itertools.count(max(graph.g.nodes, default=-1) + 1)
    if data["memory_plan"] is not None:
        graph.memory_plan = reader.plan(graph, data["memory_plan"])
    if data.get("schedule") is not None:
        graph.schedule = _schedule_from(graph, data["schedule"])
    _check(graph)
    return graph


class _Reader:
    def __init__(self, records):
        # new Dims in the order of the old ids: the order sizes are sorted by (reshape's factors) is kept
        order = sorted(range(len(records)), key=lambda k: _int(records[k]["id"]))
        self.dims = [None] * len(records)
        for k in order:
            record = records[k]
            self.dims[k] = Dim(_text(record["origin"]), formula=_optional_text(record["formula"]),
                               factor=_int(record["factor"]))
        for dim, record in zip(self.dims, records):
            dim.parts = tuple(self.dim(p) for p in record["parts"])
            dim._parent = None if record["parent"] is None else self.dim(record["parent"])
            dim._value = None if record["value"] is None else _int(record["value"])
        _acyclic({k: list(r["parts"]) + ([r["parent"]] if r["parent"] is not None else []) for k, r in enumerate(records)},
                 "sizes")

    def dim(self, k):
        if type(k) is not int or not 0 <= k < len(self.dims):
            _fail(f"no size #{k!r}")
        return self.dims[k]

    def node(self, graph, fields):
        extra = set(fields) - NODE_FIELDS - OPTIONAL_NODE_FIELDS - {"id"}
        if extra:
            _fail(f"unknown node fields {sorted(extra)}")
        node, op = _int(fields["id"]), _text(fields["op"])
        if op not in OPS:
            _fail(f"unknown op {op!r}")
        if node in graph.g:
            _fail(f"node %{node} twice")
        if fields["phase"] not in PHASES:
            _fail(f"unknown phase {fields['phase']!r}")
        attrs = {_text(k): self.value(v) for k, v in fields["attrs"].items()}
        if op in SOURCE_ATTRS and set(attrs) != SOURCE_ATTRS[op]:
            _fail(f"{op} node %{node} has attributes {sorted(attrs)}")
        graph.g.add_node(node, op=op, args=tuple(_int(a) for a in fields["args"]), attrs=attrs,
                         type=self.type(fields["type"]), loc=_optional_text(fields["loc"]), phase=fields["phase"],
                         origin=None if fields["origin"] is None else _int(fields["origin"]))
        for name in OPTIONAL_NODE_FIELDS & set(fields):
            graph.g.nodes[node][name] = _text(fields[name]) if name == "origin_op" else _int(fields[name])

    def plan(self, graph, data):
        buffers = [(self.type(t), [self.position(a), self.position(b)]) for t, (a, b) in data["buffers"]]
        return MemoryPlan(graph, buffers, [self.type(t) for t in data["naive"]], _int(data["steps"]))

    def position(self, data):
        """A buffer's first or last step: an int, or infinity (alive to the end: a returned value)."""
        value = self.value(data)
        if value != math.inf and type(value) is not int:
            _fail(f"bad position {value!r}")
        return value

    def type(self, data):
        dtype, sizes = data
        if dtype not in DTYPES:
            _fail(f"unknown dtype {dtype!r}")
        if any(type(s) is int and s < 0 for s in sizes):
            _fail(f"a negative size in {sizes}")
        return TensorType(tuple([s if type(s) is int else self.dim(s["dim"]) for s in sizes]), dtype)

    def value(self, value):
        kind = type(value)
        if kind in PLAIN:
            return value
        if kind is list:  # the common case inlined: a warm start reads thousands of small tuples
            return tuple([v if type(v) in PLAIN else self.value(v) for v in value])
        if kind is not dict or len(value) not in (1, 3):
            _fail(f"unknown value {value!r:.80}")
        if "dim" in value:
            return self.dim(value["dim"])
        if "type" in value:
            return self.type(value["type"])
        if "body" in value:
            return Body(tuple(self.step(s) for s in value["body"]))
        if "step_function" in value:
            return self.step_function(value["step_function"])
        if "float" in value:
            if value["float"] not in ("inf", "-inf", "nan"):
                _fail(f"unknown float {value['float']!r}")
            return float(value["float"])
        if "array" in value:
            return _array(value)
        raise SerializeError(f"unknown value {value!r:.80}")

    def step_function(self, data):
        if set(data) != {"carries", "xs", "graph"} or set(data["graph"]) != {"name", "inputs", "outputs", "nodes", "edges"}:
            _fail("a scan step needs carries, xs and a graph of name, inputs, outputs, nodes, edges")
        fields, graph = data["graph"], Graph(_text(data["graph"]["name"]))
        for node in fields["nodes"]:
            self.node(graph, node)
        _edges(graph, fields["edges"])
        graph.inputs, graph.outputs = [_int(n) for n in fields["inputs"]], [_int(n) for n in fields["outputs"]]
        graph._ids = itertools.count(max(graph.g.nodes, default=-1) + 1)
        carries, xs = _int(data["carries"]), _int(data["xs"])
        if not (0 <= carries <= len(graph.outputs) and xs >= 1 and carries + xs <= len(graph.inputs)
                and all(graph.op(n) == "input" for n in graph.inputs if n in graph.g)):
            _fail("a scan step's carries, xs, inputs and outputs disagree")
        _check(graph)
        return StepFunction(graph, carries, xs)

    def step(self, data):
        if set(data) - {"where"} != {"op", "args", "attrs", "type"}:
            _fail("a fused step needs op, args, attrs, type (and where)")
        if data["op"] not in OPS:
            _fail(f"unknown op {data['op']!r} in a fused body")
        return Step(data["op"], self.value(data["args"]), self.value(data["attrs"]), self.type(data["type"]),
                    _optional_text(data.get("where")))


def _edges(graph, edges):
    for u, v in edges:
        if u not in graph.g or v not in graph.g:
            _fail(f"edge {u} -> {v} between missing nodes")
        graph.g.add_edge(u, v)


def _array(value):
    if set(value) != {"array", "dtype", "shape"} or value["dtype"] not in DTYPES:
        _fail("an array needs data, dtype, shape")
    shape = tuple(_int(s) for s in value["shape"])
    raw = base64.b64decode(value["array"].encode("ascii"), validate=True)
    if len(raw) != np.dtype(value["dtype"]).itemsize * math.prod(shape):
        _fail("array data does not fit its shape")
    array = np.frombuffer(raw, dtype=value["dtype"]).reshape(shape).copy()
    array.setflags(write=False)  # as gc.constant makes them
    return array


def _check(graph):
    """The graph is well formed: acyclic, edges match operands, outputs and updates name nodes, and each
    op's shape rule accepts its operands and attributes (an attribute the rule does not take is refused)
    and gives the recorded dtype and rank (sizes may be fresh call-time sizes, so only fixed ones compare)."""
    _acyclic({node: list(graph.g.successors(node)) for node in graph.g}, "the graph's nodes")
    for node in graph.inputs + graph.outputs + [n for pair in graph.updates for n in pair]:
        if node not in graph.g:
            _fail(f"the graph refers to missing node %{node}")
    for node in graph.g.nodes:
        if set(graph.g.predecessors(node)) != set(graph.args(node)):
            _fail(f"node %{node}'s edges disagree with its operands")
        opdef = OPS[graph.op(node)]
        _check_attrs(graph.op(node), graph.attrs(node), f"node %{node}")
        for step in getattr(graph.attrs(node).get("body"), "steps", ()):
            _check_attrs(step.op, dict(step.attrs), f"a step of node %{node}")
        if opdef.kind != "source":
            with transaction():
                inferred = opdef.infer([graph.type(a) for a in graph.args(node)], **graph.attrs(node))
            if not _agrees(inferred, graph.type(node)):
                _fail(f"node %{node} ({graph.op(node)}) is typed {graph.type(node)}, its rule gives {inferred}")


def _check_attrs(op, attrs, where):
    """An op whose shape rule names no attribute (it takes **attrs and ignores them: elementwise ops) has none."""
    if attrs and op not in SOURCE_ATTRS and _takes_no_named_attrs(op):
        _fail(f"{where} ({op}) has attributes {sorted(attrs)}, which {op} does not take")


@functools.lru_cache(maxsize=None)
def _takes_no_named_attrs(op):
    parameters = list(inspect.signature(OPS[op].infer).parameters.values())[1:]
    return all(p.kind == p.VAR_KEYWORD for p in parameters)


def _agrees(inferred, recorded):
    return (inferred.dtype == recorded.dtype and inferred.ndim == recorded.ndim
            and all(a == b for a, b in zip(inferred.shape, recorded.shape) if not isinstance(a, Dim) and not isinstance(b, Dim)))


def _acyclic(links, what):
    """No cycle through `links` ({item: items it leads to}), by Kahn's algorithm (networkx's first call
    costs a warm start ~2 ms)."""
    incoming = dict.fromkeys(links, 0)
    for targets in links.values():
        for target in targets:
            incoming[target] += 1
    ready, seen = [n for n, count in incoming.items() if count == 0], 0
    while ready:
        seen += 1
        for target in links[ready.pop()]:
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    if seen != len(links):
        _fail(f"{what} form a cycle")


def _fail(message):
    raise SerializeError(message)


def _int(value):
    if type(value) is not int:
        _fail(f"expected an integer, got {value!r:.40}")
    return value


def _text(value):
    if type(value) is not str:
        _fail(f"expected a string, got {value!r:.40}")
    return value


def _optional_text(value):
    return None if value is None else _text(value)
