"""Compiling a kernel module with Numba for the argument types the graph fixes."""
import numba
import numpy as np
from numba import types as nt

from graphc.errors import GraphcError

from .cache import load_module

_SCALARS = {"float32": nt.float32, "float64": nt.float64, "int32": nt.int32, "int64": nt.int64, "bool": nt.boolean}


def argument_types(graph, kernel):
    sig = []
    for k, node in enumerate(kernel.arg_nodes):
        t = graph.type(node)
        if k in kernel.scalar_args:
            sig.append(_SCALARS[t.dtype])
        else:
            sig.append(nt.Array(_SCALARS[t.dtype], t.ndim, "C"))
    return tuple(sig)


def compile_kernel(graph, kernel, key):
    """The njit dispatcher, compiled now for the graph's argument types; later calls never recompile."""
    module = load_module(key, kernel.source)
    fn = getattr(module, kernel.name)
    try:
        dispatcher = numba.njit(argument_types(graph, kernel), cache=True, error_model="numpy", nogil=True)(fn)
    except numba.core.errors.NumbaError as error:
        raise GraphcError(f"internal error: the generated kernel for graph {graph.name} failed to compile "
                          f"(see f.source()): {str(error).splitlines()[0]}") from error
    dispatcher.disable_compile()
    return dispatcher


def constant_arrays(graph, kernel):
    # writable C copies: the kernel's signature types arrays as mutable (graphc's constants are read-only)
    return [np.array(graph.attrs(n)["value"], order="C") for n in kernel.arg_nodes[len(graph.inputs):]]
