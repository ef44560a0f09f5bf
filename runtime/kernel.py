"""Kernel: a graph's compiled form as codegen wrote it (the driver, the library kernels it calls, what
compiling and running them needs), and its form as plain data in a cache entry."""
from dataclasses import dataclass, field

from graphc.types import DTYPES

from .cache import BadEntry
from .library import LibraryKernel, register


@dataclass
class Kernel:
    """A graph's compiled form as codegen wrote it, and what compiling and running it needs."""
    source: str              # the driver's module text
    name: str                # the driver's entry point
    arg_nodes: list          # graph nodes passed as arguments, in order (inputs, then array constants)
    scalar_args: set         # positions passed as scalars (rank-0 inputs not updated)
    library: list = field(default_factory=list)  # the library kernels the driver calls (library.LibraryKernel)
    parallel: bool = False   # a library kernel runs loops on threads (prange)
    blas: bool = False       # the driver calls BLAS
    python: bool = False     # the driver is plain Python (compiled: only its library kernels)
    signatures: list = field(default_factory=list)  # [j, argument types] the driver calls library kernel j with

    def full_source(self):
        """The driver's module, then each library kernel's."""
        parts = [self.source] + [f"# ---- library kernel {k.key[:16]} (_k{j} above) ----\n{k.source}"
                                 for j, k in enumerate(self.library)]
        return "\n\n".join(parts)


def kernel_data(kernel):
    """The kernel as JSON-ready data (what store_artifact writes)."""
    return {"source": kernel.source, "name": kernel.name, "arg_nodes": list(kernel.arg_nodes),
            "scalar_args": sorted(kernel.scalar_args), "parallel": kernel.parallel, "blas": kernel.blas,
            "python": kernel.python, "signatures": [[j, [list(t) for t in ts]] for j, ts in kernel.signatures],
            "library": [[k.key, k.source, k.parallel] for k in kernel.library]}


def kernel_from(data, graph):
    """The Kernel of an entry's data, its library kernels registered (each key checked against its text);
    BadEntry when a field is malformed (a field of the wrong kind raises TypeError or KeyError)."""
    source, name, arg_nodes, scalar_args = data["source"], data["name"], data["arg_nodes"], data["scalar_args"]
    parallel, blas, python, signatures = data["parallel"], data["blas"], data["python"], data["signatures"]
    if not (isinstance(source, str) and isinstance(name, str) and name.isidentifier()
            and all(type(n) is int and n in graph.g for n in arg_nodes)
            and all(type(k) is int and 0 <= k < len(arg_nodes) for k in scalar_args)
            and isinstance(parallel, bool) and isinstance(blas, bool) and isinstance(python, bool)
            and isinstance(data["library"], list) and _signatures_ok(signatures, len(data["library"]))):
        raise BadEntry("the kernel description is malformed")
    kernels = [LibraryKernel(*item) for item in data["library"]]
    register(kernels)
    return Kernel(source, name, list(arg_nodes), set(scalar_args), kernels, parallel, blas, python,
                  [[j, [tuple(t) for t in types]] for j, types in signatures])


def _signatures_ok(signatures, count):
    """[j, [type, ...]] pairs naming library kernels 0..count-1, each type one codegen writes."""
    def type_ok(t):
        return (isinstance(t, list) and (t == ["int64"] or (len(t) == 2 and t[0] == "scalar" and t[1] in DTYPES)
                or (len(t) == 4 and t[0] == "array" and t[1] in DTYPES and type(t[2]) is int and 0 < t[2] <= 32
                    and t[3] in ("C", "F", "A"))))
    return isinstance(signatures, list) and all(
        isinstance(s, list) and len(s) == 2 and type(s[0]) is int and 0 <= s[0] < count
        and isinstance(s[1], list) and all(type_ok(t) for t in s[1]) for s in signatures)
