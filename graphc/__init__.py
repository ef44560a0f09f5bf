"""graphc: a JIT-compiled static-graph compiler. Declare symbolically, differentiate, compile with Numba."""
__version__ = "0.1.0"

from . import ops  # noqa: F401  (fills the op registry)
from .errors import CallError, DTypeError, GradientError, GraphcError, PassError, RunError, ShapeError
from .functions import (abs, add, broadcast_to, cast, clip, concatenate, divide, dot, equal, exp, getitem, grad,
                        greater, greater_equal, less, less_equal, log, log_softmax, logsumexp, matmul, max,
                        maximum, mean, minimum, multiply, negative, not_equal, one_hot, power, relu, reshape,
                        scalar, sigmoid, sign, softmax, softplus, sqrt, subtract, sum, take_along_axis, tanh,
                        tensor, transpose, where)
from .tensor import Tensor, constant
from .compiler import compile
from .check import check_grad
from .interpret import interpret
from .shared import Shared, parameters, shared
from .saving import Declaration, from_json, load, loads, to_json
from . import init, nn, optim  # noqa: E402  (they build on the names above)
from graphc.runtime.threads import get_num_threads, set_num_threads
from .lower import lower

__all__ = [name for name in dir() if not name.startswith("_")]
