"""The op registry: every op has every facet, and tests/test_ops.py exercises every op.

Facets: a shape/dtype rule (infer), a NumPy reference, a gradient rule (vjp) unless the op is marked
differentiable=False, and Numba code: a scalar expression for elementwise ops, an emit function
otherwise. Exempt, and why:
- source ops (input, constant) have no operands, so nothing to infer (they are typed when declared)
  and nothing to differentiate through; an input's value comes from the caller, so it has no reference;
- `grad` is a pseudo-op: a symbolic gradient the autodiff pass expands before the interpreter or the
  code generator ever see it, so it has no reference, no code and no gradient rule of its own;
- `gate` (gc.gate) is replaced by its body's ops (the inline_gates pass) before code generation, so
  it has no code of its own; tests/test_gate.py exercises it.
"""
import pytest

from graphc import passes
from graphc.ops import OPS
from graphc.ops.reduce import REDUCERS

import graphc as gc

SOURCES = {name for name, op in OPS.items() if op.kind == "source"}
PSEUDO = {"grad", "gate"}
KINDS = {"elementwise", "reduce", "source", "other"}


@pytest.mark.parametrize("name", sorted(set(OPS) - SOURCES - PSEUDO))
def test_op_has_every_facet(name):
    op = OPS[name]
    assert op.name == name
    assert op.kind in KINDS, f"{name}: unknown kind {op.kind!r}"
    assert callable(op.infer), f"{name} has no shape/dtype rule"
    assert callable(op.numpy), f"{name} has no NumPy reference"
    if op.differentiable:
        assert callable(op.vjp), f"{name} is differentiable but has no gradient rule"
    if op.kind == "elementwise":
        assert callable(op.scalar), f"elementwise {name} has no scalar expression"
    elif name not in REDUCERS:  # a reduction's kernel is a one-step fused loop
        assert callable(op.emit), f"{name} has no emit function"
    assert callable(op.format_attrs), f"{name} can't print its attributes"
    assert not (op.view and (op.fresh or op.kind in ("elementwise", "reduce"))), f"{name}: both a view and a new array"


def test_exemptions_are_the_ones_documented():
    assert SOURCES == {"input", "constant"}
    assert all(OPS[name].emit is not None for name in SOURCES), "sources still need kernel code"
    assert OPS["constant"].numpy is not None


def test_every_op_is_exercised_by_the_op_tests():
    """Each op appears in some case of tests/test_ops.py, forward or backward (after autodiff)."""
    from test_ops import CASES, declare

    seen = set()
    for case in CASES:
        part = declare(case, "float64")
        graph = passes.run_pipeline(gc.lower(part["outputs"], part["all_inputs"]), passes.PIPELINE).graph
        seen |= {graph.op(n) for n in graph.g.nodes}
    missing = set(OPS) - PSEUDO - seen
    assert not missing, f"ops no case of test_ops.py exercises: {sorted(missing)}"
