"""Saved graphs: a declaration (inputs, outputs, updates, gc.shared values, and for a compiled function
its compile settings) as versioned JSON, and back; pickling of compiled functions goes through it.

Schema (version 1):
  {"schema": "graphc-function", "version": 1,
   "graph": <the lowered graph, graphc/serialize.py's schema>,
   "calls": n,                                   # graph inputs [0, n) are the call's, the rest shared
   "shared": [{"name", "value": {"array", "dtype", "shape"}, "trainable"}],
   "single": bool, "compile": {"disable", "options", "check_finite", "cast", "verify"} or null}
Loading checks everything before anything runs (serialize.graph_from_json verifies the graph against
the op registry) and builds only graphc tensors and NumPy arrays: nothing in the file is evaluated or
unpickled.
"""
import json
import os
from dataclasses import dataclass, field

from .errors import GraphcError
from .serialize import SerializeError, graph_from_json, graph_to_json
from .tensor import Tensor

SCHEMA, VERSION = "graphc-function", 1
MAX_FILE_BYTES = 1 << 31  # a saved graph larger than this is refused before it is parsed
COMPILE_FIELDS = {"disable", "options", "check_finite", "cast", "verify"}


@dataclass
class Declaration:
    """What gc.from_json returns: pass it to gc.compile (declaration.compile() does)."""
    inputs: list
    outputs: list
    updates: dict
    name: str
    single: bool = False
    shared: list = field(default_factory=list)
    settings: dict = None

    def compile(self, **settings):
        from .compiler import compile
        chosen = dict(self.settings or {}, **settings)
        return compile(self.inputs, self.outputs[0] if self.single else self.outputs, self.updates,
                       name=self.name, **chosen)


def to_json(outputs, inputs=(), updates=None, name="graph"):
    """The declaration of `outputs` as a function of `inputs` (and the gc.shared values it uses) as JSON text."""
    from .compiler import declare
    graph, shared, single = declare(inputs, outputs, updates, name)
    return _text(graph, shared, single, None)


def function_json(compiled):
    """A compiled function's declaration, current shared values and compile settings, as JSON text."""
    graph, shared, settings = compiled._declaration
    return _text(graph, shared, settings["single"], {k: settings[k] for k in COMPILE_FIELDS})


def _text(graph, shared, single, settings):
    from .serialize import _Writer
    writer = _Writer()
    data = {"schema": SCHEMA, "version": VERSION, "graph": graph_to_json(graph),
            "calls": len(graph.inputs) - len(shared),
            "shared": [{"name": s.name, "value": writer.value(s.get_value(copy=False)), "trainable": s.trainable}
                       for s in shared],
            "single": single, "compile": settings}
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def from_json(text):
    """The Declaration a to_json / f.save text holds; SerializeError naming the problem otherwise."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise SerializeError(f"gc.from_json takes JSON text, got {type(text).__name__}")
    if len(text) > MAX_FILE_BYTES:
        raise SerializeError(f"a saved graph of {len(text)} bytes is larger than the {MAX_FILE_BYTES} graphc reads")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise SerializeError(f"not JSON: {error}") from None
    try:
        return _declaration(data)
    except SerializeError:
        raise
    except (GraphcError, KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise SerializeError(f"not a valid saved graph: {type(error).__name__}: {error}") from None


def _declaration(data):
    from .serialize import _Reader
    from .shared import shared as make_shared
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SerializeError("not a graphc saved graph (schema 'graphc-function')")
    if data.get("version") != VERSION:
        raise SerializeError(f"saved graph version {data.get('version')!r}, this graphc reads {VERSION}")
    unknown = set(data) - {"schema", "version", "graph", "calls", "shared", "single", "compile"}
    if unknown:
        raise SerializeError(f"unknown fields {sorted(unknown)}")
    graph = graph_from_json(data["graph"])
    calls, saved = data["calls"], data["shared"]
    if type(calls) is not int or not isinstance(saved, list) or calls + len(saved) != len(graph.inputs) or calls < 0:
        raise SerializeError("the saved graph's inputs do not match its call inputs and shared values")
    settings = data["compile"]
    if settings is not None and (not isinstance(settings, dict) or set(settings) != COMPILE_FIELDS):
        raise SerializeError(f"compile settings must have the fields {sorted(COMPILE_FIELDS)}")
    if type(data["single"]) is not bool or (data["single"] and len(graph.outputs) != 1):
        raise SerializeError("'single' must be a boolean, true only for one output")
    tensors = {}
    for k, node in enumerate(graph.inputs[calls:]):
        record = saved[k]
        if not isinstance(record, dict) or set(record) != {"name", "value", "trainable"}:
            raise SerializeError("a shared value needs name, value and trainable")
        value = _Reader([]).value(record["value"])
        t = graph.type(node)
        if record["name"] != graph.attrs(node)["name"] or value.shape != tuple(t.shape) or value.dtype.name != t.dtype:
            raise SerializeError(f"shared value {record['name']!r} does not match its input {t}")
        tensors[node] = make_shared(value, name=record["name"], trainable=bool(record["trainable"]))
    for node in graph.order():
        if node not in tensors:
            data_ = graph[node]
            tensors[node] = Tensor(data_["op"], [tensors[a] for a in data_["args"]], data_["attrs"], data_["type"],
                                   data_["loc"])
    return Declaration(inputs=[tensors[n] for n in graph.inputs[:calls]], outputs=[tensors[n] for n in graph.outputs],
                       updates={tensors[t]: tensors[v] for t, v in graph.updates}, name=graph.name,
                       single=data["single"], shared=[tensors[n] for n in graph.inputs[calls:]], settings=settings)


def save(compiled, path):
    text = function_json(compiled)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def load(path):
    """The compiled function f.save(path) wrote (its kernel from the cache, or compiled); a to_json file
    compiles with the default settings."""
    with open(path, "rb") as f:
        text = f.read(MAX_FILE_BYTES + 1)
    return loads(text)


def loads(text):
    return from_json(text).compile()
