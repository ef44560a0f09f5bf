"""graphc: a JIT-compiled static-graph compiler. Declare symbolically, differentiate, compile with Numba."""
__version__ = "0.1.0"

from . import ops  # noqa: F401  (fills the op registry)
from .errors import CallError, DTypeError, GradientError, GraphcError, PassError, RunError, ShapeError
from .functions import (abs, add, arccos, arcsin, arctan, argmax, argmin, argsort, broadcast_to, cast, ceil, clip,
                        concatenate, cos, cosh, cumsum, divide, dot, equal, exp, expm1, floor, getitem, grad, greater,
                        greater_equal, less, less_equal, log, log1p, log_softmax, logsumexp, matmul, max, maximum, mean,
                        min, minimum, mod, multiply, negative, not_equal, one_hot, power, prod, reciprocal, relu,
                        remainder, reshape, round, scalar, sigmoid, sign, sin, sinh, softmax, softplus, sort, sqrt, square,
                        std, subtract, sum, take_along_axis, tan, tanh, tensor, transpose, var, where)
from .tensor import Tensor, constant
from .contract import einsum, split, stack, tensordot
from .compiler import compile
from .check import check_grad
from .interpret import interpret
from .shared import Shared, parameters, shared
from .saving import Declaration, from_json, load, loads, to_json
from .gate import Gate, gate
from .scan import scan
from . import init, nn, optim, random  # noqa: E402  (they build on the names above)
from graphc.runtime.threads import get_num_threads, set_num_threads
from .lower import lower

# `random` stays out of *-imports, where it would shadow Python's own module
__all__ = [name for name in dir() if not name.startswith("_") and name != "random"]


def __getattr__(name):
    """gc.dask on first use: the core package never imports Dask (an optional extra)."""
    if name == "dask":
        import importlib
        return importlib.import_module("graphc.dask")
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")
