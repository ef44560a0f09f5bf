"""The per-call path: a generated Python function that checks every argument itself (dtype with its
byte order, rank, sizes, C layout, alignment, writability of update targets, scalar types), on every
path, so the ahead-of-time module (which unboxes without checking) and Numba's dispatcher accept and
refuse exactly the same inputs. Arguments it can't pass as they are go to `SlowPath`, which converts
what is safe to convert (a copy of a non-contiguous, unaligned, read-only or byte-swapped input that
is not updated) and explains the rest with a graphc error. The kernel runs at most once per call:
a kernel that raises (an index out of range) has written nothing the caller can see, and the error
says so.
"""
import functools
import keyword
import unicodedata

import numpy as np

from graphc.errors import CallError, RunError
from graphc.printer import dim_names
from graphc.types import Dim

MISSING = object()
# Scalar types passed to the kernel as they come; any other value goes through SlowPath.scalar.
FAST_SCALARS = {"float": (float, np.float64, np.float32), "int": (int, np.int64, np.int32), "bool": (bool, np.bool_)}
# What SlowPath.scalar converts: a float input takes any real number, an int input no float.
CONVERTIBLE_SCALARS = {"float": (bool, int, float, np.bool_, np.integer, np.floating),
                       "int": (bool, int, np.bool_, np.integer), "bool": (bool, np.bool_)}
# gc.compile(cast=...): "no" refuses an array of another dtype; "safe" converts what NumPy casts without
# loss (int32 to float64); "same_kind" also narrows within a kind (float64 data into a float32 input).
CASTS = ("no", "safe", "same_kind")
INT_RANGES = {"int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1)}


def parameter_names(graph, shared=0):
    """The inputs' names as the call's parameters, when every one can be (else arg0, arg1, ...), then
    _s0, _s1, ... for the last `shared` inputs, which the binder passes itself (gc.shared values).
    Python reads identifiers NFKC-normalized: a name it would change could collide with another."""
    names = [graph.attrs(n)["name"] for n in graph.inputs[:len(graph.inputs) - shared]]
    ok = all(_plain_identifier(n) and not n.startswith("_") for n in names) and len(set(names)) == len(names)
    return (names if ok else [f"arg{k}" for k in range(len(names))]) + [f"_s{j}" for j in range(shared)]


def function_name(graph):
    return graph.name if _plain_identifier(graph.name) else "call"


def _plain_identifier(name):
    """A name Python keeps as it is in source: an identifier, not a keyword, NFKC-stable."""
    return (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)
            and unicodedata.normalize("NFKC", name) == name)


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


def scalar_kind(dtype):
    return "float" if dtype.startswith("float") else "int" if dtype.startswith("int") else "bool"


def scalar_conversion(graph, node, param, k):
    """A line passing a scalar of a fast type as it is, and sending any other value (a 0-d array, a
    string, an int out of range) to SlowPath.scalar, which converts it or raises."""
    dtype = graph.type(node).dtype
    kind = scalar_kind(dtype)
    test = f"_type({param}) not in _{kind}_scalars"
    if kind == "int":
        lo, hi = INT_RANGES[dtype]
        test += f" or not {lo} <= {param} <= {hi}"
    return f"    if {test}: {param} = _scalar({k}, {param})"


def result_expression(graph, out, k):
    dtype = graph.type(out).dtype
    if graph.type(out).ndim > 0:
        return f"_r[{k}]"
    return f"_array(_r[{k}])" if dtype in _NATIVE_BOXES else f"_array(_r[{k}], _{dtype})"


def type_checks(graph, kernel, params):
    """Conditions true when an array argument is not exactly what the kernel was compiled for (the
    rank of a fixed shape is size_checks' to check). `is` on the dtype: a byte-swapped or otherwise
    not canonical dtype object fails it. Read-only arrays too: the kernel's signature takes mutable
    ones (the slow path copies an input that is not updated)."""
    conditions = []
    for k, (param, node) in enumerate(zip(params, graph.inputs)):
        if k in kernel.scalar_args:
            continue
        t = graph.type(node)
        rank = "" if has_fixed_shape(t) else f" or {param}.ndim != {t.ndim}"
        flags = f"not (_f{k} := {param}.flags).c_contiguous or not _f{k}.aligned or not _f{k}.writeable"
        conditions.append(f"_type({param}) is not _ndarray or {param}.dtype is not _{t.dtype}{rank} or {flags}")
    return conditions


def binder_source(graph, kernel, params, single, shared=0):
    """Every generated name but the parameters starts with an underscore, so no input name shadows one.
    The last `shared` inputs are gc.shared arrays bound as _s0, _s1, ...: always of their declared type,
    so they are not checked (a rank-0 one the kernel takes as a number is read on every call)."""
    calls = len(params) - shared
    args = [f"{p}[()]" if k >= calls and k in kernel.scalar_args else p for k, p in enumerate(params)]
    args += [f"_constants[{j}]" for j in range(len(kernel.arg_nodes) - len(graph.inputs))]
    checks = type_checks(graph, kernel, params[:calls]) + size_checks(graph, params[:calls])
    signature = ", ".join([f"{p}=_MISSING" for p in params[:calls]] + ["*_extra", "**_unknown"])
    results = [result_expression(graph, o, k) for k, o in enumerate(graph.outputs)]
    returned = results[0] if single else f"({', '.join(results)}{',' if results else ''})"
    values = f"({', '.join(params)}{',' if params else ''})"
    slow = f"_slow({values}, _extra, _unknown)"
    slow_return = f"        return {slow}[0]" if single else f"        return {slow}"
    lines = [f"def {function_name(graph)}({signature}):", "    if _extra or _unknown:", slow_return]
    lines += [scalar_conversion(graph, node, param, k) for k, (param, node) in enumerate(zip(params, graph.inputs))
              if k in kernel.scalar_args]
    if checks:
        lines += ["    if " + " or ".join(checks) + ":", slow_return]
    lines += ["    try:",
              f"        _r = _kernel({', '.join(args)})",
              "    except _Exception as _error:",
              f"        _r = _failed(_error, {values})",
              f"    return {returned}"]
    return "\n".join(lines) + "\n"


def make_binder(graph, kernel, dispatcher, constants, wrap_single, shared=(), cast="no"):
    """The per-call function and its source. shared: the arrays of the graph's last inputs (gc.shared
    values, passed on every call); cast: which dtype conversions of inputs the call makes (CASTS)."""
    params = parameter_names(graph, len(shared))
    source = binder_source(graph, kernel, params, wrap_single, len(shared))
    slow = SlowPath(graph, kernel, dispatcher, constants, params, len(shared), cast)
    namespace = {"_MISSING": MISSING, "_kernel": dispatcher, "_constants": constants, "_array": np.array,
                 **{f"_s{j}": array for j, array in enumerate(shared)},
                 "_slow": slow, "_scalar": slow.scalar, "_failed": slow.failed, "_type": type,
                 "_ndarray": np.ndarray, "_Exception": Exception,
                 **{f"_{kind}_scalars": frozenset(types) for kind, types in FAST_SCALARS.items()},
                 **{f"_{name}": np.dtype(name) for name in ("float32", "float64", "int32", "int64", "bool")}}
    exec(compile(source, f"<graphc binder {graph.name!r}>", "exec"), namespace)
    return namespace[function_name(graph)], source


class SlowPath:
    """Validates every argument with a message naming the input, its declared type and what came;
    copies what can be copied safely; runs the kernel once."""

    def __init__(self, graph, kernel, dispatcher, constants, params, shared=0, cast="no"):
        self.graph, self.kernel, self.dispatcher, self.constants, self.params = graph, kernel, dispatcher, constants, params
        self.calls, self.cast = len(params) - shared, cast
        self.updated = [k for k, n in enumerate(graph.inputs) if n in {t for t, _ in graph.updates}]

    @functools.cached_property
    def names(self):
        """Size names for messages, worked out when a message needs them (never on a warm start)."""
        return dim_names(self.graph)

    def __call__(self, values, extra, unknown):
        if extra:
            raise CallError(f"{self.graph.name} takes {self.calls} arguments ({', '.join(self.params[:self.calls])}), "
                            f"got {self.calls + len(extra)}")
        if unknown:
            raise CallError(f"{self.graph.name} has no input named {', '.join(sorted(unknown))}; "
                            f"its inputs are {', '.join(self.params[:self.calls])}")
        sizes, args = {}, []
        for k, value in enumerate(values):
            args.append(self.scalar(k, value) if k in self.kernel.scalar_args else self._array(k, value, sizes))
        self._separate_overlaps(args)
        args += list(self.constants)
        try:
            out = self.dispatcher(*args)
        except Exception as error:  # noqa: BLE001  explained by failed(), never run again
            out = self.failed(error, None)
        return tuple(np.asarray(out[k], self.graph.type(o).dtype) if self.graph.type(o).ndim == 0 else out[k]
                     for k, o in enumerate(self.graph.outputs))

    def declared(self, k):
        node = self.graph.inputs[k]
        param = self.params[k] if k < self.calls else self.graph.attrs(node)["name"]
        where = self.graph[node]["loc"]
        return f"{'input' if k < self.calls else 'shared'} {param!r} (declared {self.graph.type(node).text(self.names)}" + (f" at {where})" if where else ")")

    def scalar(self, k, value):
        """value as the Python number the kernel takes for scalar input k, or a CallError."""
        dtype = self.graph.type(self.graph.inputs[k]).dtype
        if value is MISSING:
            raise CallError(f"missing argument: {self.declared(k)}")
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        kind = scalar_kind(dtype)
        if not isinstance(value, CONVERTIBLE_SCALARS[kind]):
            raise CallError(f"{self.declared(k)} expects a scalar of {dtype}, got {_describe(value)}"
                            + ("" if kind != "int" or not isinstance(value, (float, np.floating)) else
                               " (a float is not truncated: pass an int)"))
        if kind == "float":
            try:
                return float(value)
            except OverflowError:
                raise CallError(f"{self.declared(k)}: {value} is too large for {dtype}") from None
        if kind == "bool":
            return bool(value)
        lo, hi = INT_RANGES[dtype]
        if not lo <= int(value) <= hi:
            raise CallError(f"{self.declared(k)}: {value} is out of range for {dtype} [{lo}, {hi}]")
        return int(value)

    def _array(self, k, value, sizes):
        node, param = self.graph.inputs[k], self.params[k]
        t, declared = self.graph.type(node), self.declared(k)
        if value is MISSING:
            raise CallError(f"missing argument: {declared}")
        if not isinstance(value, np.ndarray):
            raise CallError(f"{declared} expects a numpy array, got {_describe(value)}")
        if value.dtype.newbyteorder("=") != np.dtype(t.dtype):
            value = self._cast(k, value, declared)
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
        problems = [what for what, bad in (("C-contiguous", not value.flags.c_contiguous),
                                           ("aligned", not value.flags.aligned),
                                           ("writable", not value.flags.writeable),
                                           ("in native byte order", not value.dtype.isnative)) if bad]
        if problems and k in self.updated:
            raise CallError(f"{declared} is updated in place, so it must be {' and '.join(problems)} "
                            f"(got {_describe(value)})")
        if problems or type(value) is not np.ndarray:
            value = np.array(value, dtype=t.dtype, order="C", subok=False)  # a copy the kernel may read
        return value

    def _cast(self, k, value, declared):
        """value converted to input k's dtype, when the compile's cast policy allows it; else a CallError
        naming the fix."""
        dtype = np.dtype(self.graph.type(self.graph.inputs[k]).dtype)
        fix = f"pass {self.params[k] if k < self.calls else 'it'}.astype(np.{dtype.name})"
        if k in self.updated:
            raise CallError(f"{declared}: got {value.dtype} where {dtype} is declared (shape {value.shape}); it is "
                            f"updated in place, so it is never converted: {fix}")
        if self.cast == "no" or not np.can_cast(value.dtype, dtype, self.cast):
            allowed = "" if self.cast == "no" else f" (cast={self.cast!r} does not convert {value.dtype} to {dtype})"
            hint = "" if not np.can_cast(value.dtype, dtype, "same_kind") else ", or compile with cast=\"same_kind\""
            raise CallError(f"{declared}: got {value.dtype} where {dtype} is declared (shape {value.shape})"
                            f"{allowed}; {fix}{hint}")
        return value.astype(dtype)

    def _separate_overlaps(self, args):
        """An update target sharing memory with another argument: a copy of the other, or a CallError
        when both are updated (each would overwrite what the other's update reads)."""
        for k in self.updated:
            for j, other in enumerate(args):
                if j == k or not isinstance(other, np.ndarray) or not np.shares_memory(args[k], other):
                    continue
                if j in self.updated:
                    raise CallError(f"{self.declared(k)} and {self.declared(j)} are both updated in place but "
                                    "share memory: pass separate arrays")
                args[j] = other.copy()

    def failed(self, error, values):
        """After the kernel raised: an overlap it found before doing anything goes back through the
        checks above (the kernel has not run); an error it found in the data is a RunError (the
        caller's arrays are unchanged: no update is written before a check, see passes/memory.py)."""
        from .codegen import OVERLAP
        if values is not None and str(error) == OVERLAP:
            return self(values, (), {})
        if isinstance(error, (IndexError, ValueError, FloatingPointError)):
            raise RunError(f"{self.graph.name}: {error}; no argument was changed") from None
        raise error


def _describe(value):
    if isinstance(value, np.ndarray):
        flags = [f for f, on in (("read-only", not value.flags.writeable), ("non-contiguous", not value.flags.c_contiguous),
                                 ("unaligned", not value.flags.aligned)) if on]
        return f"{' '.join(flags + [''])}{value.dtype}{list(value.shape)}"
    return type(value).__name__
