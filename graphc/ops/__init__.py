"""The op registry, filled by one module per family."""
from .registry import OPS, OpDef, get, register
from . import source, elementwise, reduce, movement, linalg, gates, fused, user_gate, conv, random, scan  # noqa: F401  (they register)

__all__ = ["OPS", "OpDef", "get", "register"]
