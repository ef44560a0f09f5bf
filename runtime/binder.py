"""The per-call path: a generated Python function that checks what can't be checked by Numba's
dispatcher (sizes), converts scalars and calls the kernel. Everything else was decided at compile time.
A failed check or dispatch falls to `slow_call`, which explains the problem with a graphc error."""
import functools
import keyword
import operator

import numpy as np

from graphc.errors import CallError, GraphcError
from graphc.printer import dim_names
from graphc.types import Dim

MISSING = object()


def parameter_names(graph):
    names = [graph.attrs(n)["name"] for n in graph.inputs]
    ok = all(n.isidentifier() and not keyword.iskeyword(n) and not n.startswith("_") for n in names)
    return names if ok else [f"arg{k}" for k in range(len(names))]


def size_checks(graph, params):
    """Python conditions that are true when some argument's size is wrong. A fixed shape compares as
    one tuple (faster than axis by axis, and it checks the rank too)."""
    conditions, first = [], {}
    for param, node in zip(params, graph.inputs):
        if has_fixed_shape(graph.type(node)):
            conditions.append(f"{param}.shape != {tuple(graph.type(node).shape)}")
            continue
        for axis, size in enumerate(graph.type(node).shape):
            here = f"{param}.shape[{axis}]"
            if isinstance(size, Dim):
                if size in first:
                    conditions.append(f"{here} != {first[size]}")
                else:
                    first[size] = here
            else:
                conditions.append(f"{here} != {size}")
    return conditions


def has_fixed_shape(t):
    return t.ndim > 0 and t.is_static()


# Numba boxes float64, int64 and bool results as Python objects np.array maps back to the same dtype;
# float32 and int32 come back as Python floats and ints, so their wrapping names the dtype.
_NATIVE_BOXES = ("float64", "int64", "bool")


def scalar_argument(graph, node, param):
    """Float inputs go to the dispatcher as they come (it converts Python and NumPy numbers and rejects
    arrays, which the slow path then explains); int inputs pass operator.index, so a float is rejected
    rather than truncated."""
    return param if graph.type(node).dtype.startswith("float") else f"_index({param})"


def result_expression(graph, out, k):
    dtype = graph.type(out).dtype
    if graph.type(out).ndim > 0:
        return f"r[{k}]"
    return f"_array(r[{k}])" if dtype in _NATIVE_BOXES else f"_array(r[{k}], _{dtype})"


def type_checks(graph, kernel, params):
    """Conditions true when an array argument is not exactly what the kernel was compiled for: the
    ahead-of-time kernel unboxes arrays without checking dtype, rank or layout (a non-array still
    fails cleanly, and Numba's dispatcher would check everything itself). `is` on the dtype: an equal
    but not canonical dtype object takes the slow path. The rank of a fixed shape is size_checks' to check."""
    updated = {t for t, _ in graph.updates}
    conditions = []
    for k, (param, node) in enumerate(zip(params, graph.inputs)):
        if k in kernel.scalar_args:
            continue
        t = graph.type(node)
        rank = "" if has_fixed_shape(t) else f" or {param}.ndim != {t.ndim}"
        layout = f"not (_f{k} := {param}.flags).c_contiguous or not _f{k}.writeable" if node in updated else \
            f"not {param}.flags.c_contiguous"
        conditions.append(f"{param}.dtype is not _{t.dtype}{rank} or {layout}")
    return conditions


def binder_source(graph, kernel, params, single, check_types=False):
    args = [scalar_argument(graph, node, param) if k in kernel.scalar_args else param
            for k, (param, node) in enumerate(zip(params, graph.inputs))]
    args += [f"_constants[{j}]" for j in range(len(kernel.arg_nodes) - len(graph.inputs))]
    checks = (type_checks(graph, kernel, params) if check_types else []) + size_checks(graph, params)
    signature = ", ".join([f"{p}=_MISSING" for p in params] + ["*_extra", "**_unknown"])
    results = [result_expression(graph, o, k) for k, o in enumerate(graph.outputs)]
    returned = results[0] if single else f"({', '.join(results)}{',' if results else ''})"
    slow = f"_slow(({', '.join(params)}{',' if params else ''}), _extra, _unknown)"
    lines = [f"def call({signature}):",
             "    try:",
             "        if _extra or _unknown" + "".join(f" or {c}" for c in checks) + ":",
             "            raise _Mismatch",
             f"        r = _kernel({', '.join(args)})",
             "    except Exception:",  # leave the except block first: the graphc error carries no Numba context
             "        pass",
             "    else:",
             f"        return {returned}",
             f"    return {slow}[0]" if single else f"    return {slow}"]
    return "\n".join(lines) + "\n"


class _Mismatch(Exception):
    pass


def make_binder(graph, kernel, dispatcher, constants, wrap_single, check_types=False):
    """The per-call function and its source. check_types: the kernel does not check argument types."""
    params = parameter_names(graph)
    source = binder_source(graph, kernel, params, wrap_single, check_types)
    slow = SlowPath(graph, kernel, dispatcher, constants, params)
    namespace = {"_MISSING": MISSING, "_Mismatch": _Mismatch, "_kernel": dispatcher, "_constants": constants,
                 "_array": np.array, "_index": operator.index, "_slow": slow,
                 **{f"_{name}": np.dtype(name) for name in ("float32", "float64", "int32", "int64", "bool")}}
    exec(compile(source, f"<graphc binder {graph.name}>", "exec"), namespace)
    return namespace["call"], source


class SlowPath:
    """Validates every argument with a message naming the input, its declared type and what came."""

    def __init__(self, graph, kernel, dispatcher, constants, params):
        self.graph, self.kernel, self.dispatcher, self.constants, self.params = graph, kernel, dispatcher, constants, params
        self.updated = {t for t, _ in graph.updates}

    @functools.cached_property
    def names(self):
        """Size names for messages, worked out when a message needs them (never on a warm start)."""
        return dim_names(self.graph)

    def __call__(self, values, extra, unknown):
        if extra:
            raise CallError(f"{self.graph.name} takes {len(self.params)} arguments ({', '.join(self.params)}), "
                            f"got {len(self.params) + len(extra)}")
        if unknown:
            raise CallError(f"{self.graph.name} has no input named {', '.join(sorted(unknown))}; "
                            f"its inputs are {', '.join(self.params)}")
        sizes, args = {}, []
        for k, (param, node, value) in enumerate(zip(self.params, self.graph.inputs, values)):
            args.append(self._check(k, param, node, value, sizes))
        args += list(self.constants)
        try:
            out = self.dispatcher(*args)
        except Exception as error:
            raise GraphcError(f"{self.graph.name}: the compiled kernel failed: {error}") from error
        return tuple(np.asarray(out[k], self.graph.type(o).dtype) if self.graph.type(o).ndim == 0 else out[k]
                     for k, o in enumerate(self.graph.outputs))

    def _check(self, k, param, node, value, sizes):
        t = self.graph.type(node)
        want = t.text(self.names)
        where = self.graph[node]["loc"]
        declared = f"input {param!r} (declared {want}" + (f" at {where})" if where else ")")
        if value is MISSING:
            raise CallError(f"missing argument: {declared}")
        if k in self.kernel.scalar_args:
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value[()]
            if not isinstance(value, (int, float, bool, np.number, np.bool_)):
                raise CallError(f"{declared} expects a scalar, got {_describe(value)}")
            if isinstance(value, (float, np.floating)) and not t.dtype.startswith("float"):
                raise CallError(f"{declared} expects {t.dtype}, got a float")
            return float(value) if t.dtype.startswith("float") else int(value)
        if not isinstance(value, np.ndarray):
            raise CallError(f"{declared} expects a numpy array, got {_describe(value)}")
        if value.dtype != np.dtype(t.dtype):
            raise CallError(f"{declared}: got {value.dtype} where {t.dtype} is declared (shape {value.shape})")
        if value.ndim != t.ndim:
            raise CallError(f"{declared}: got rank {value.ndim} {value.dtype}{list(value.shape)}, expected rank {t.ndim}")
        for axis, (size, n) in enumerate(zip(t.shape, value.shape)):
            if isinstance(size, Dim):
                if sizes.setdefault(size, (n, param, axis))[0] != n:
                    m, other, other_axis = sizes[size]
                    raise CallError(f"{declared}: size {self.names.get(size, '?')} is {n} on axis {axis} here but "
                                    f"{m} on axis {other_axis} of {other!r}")
            elif size != n:
                raise CallError(f"{declared}: got shape {value.shape}, axis {axis} must be {size}")
        if not value.flags.c_contiguous:
            if node in self.updated:
                raise CallError(f"{declared} is updated in place, so it must be C-contiguous")
            value = np.ascontiguousarray(value)
        if node in self.updated and not value.flags.writeable:
            raise CallError(f"{declared} is updated in place, but the array is read-only")
        return value


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}"
    return type(value).__name__
