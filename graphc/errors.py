"""graphc's exceptions: one base class, messages that name the op, the types and the user's line."""


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class ShapeError(GraphcError, ValueError):
    """Operands whose shapes don't fit the op (declaration time)."""


class DTypeError(GraphcError, TypeError):
    """An unsupported or mismatched dtype."""


class GradientError(GraphcError):
    """A gradient that can't be taken (non-scalar output, integer input, an op without a rule)."""


class CallError(GraphcError, TypeError):
    """A compiled function called with missing, extra or ill-typed arguments."""


class RunError(GraphcError, ValueError):
    """A compiled kernel found bad values at run time (an index out of range); the call changed nothing."""


class PassError(GraphcError):
    """A pass failed or left a broken graph."""


def describe(op, types, loc=None, detail=""):
    """`op`: detail; operand types; at file:line."""
    parts = [f"{op}: {detail}" if detail else op]
    if types:
        parts.append("operands " + ", ".join(str(t) for t in types))
    if loc:
        parts.append(f"at {loc}")
    return "; ".join(parts)
