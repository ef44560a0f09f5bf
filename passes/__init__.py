"""Every graph-to-graph transformation, and the pipeline: one explicit ordered list.

Each pass is a pure function Graph -> Graph with a one-line docstring; it returns its input when
nothing changed, and a result's `fired` dict is what the report lists. Stabilize runs before
autodiff, so gradients come from the gates; the backward is then simplified, folded and merged;
fusion and memory planning come last. Rewrites are tagged (passes/rewrite.py): exact and
stabilizing rules always run, value-changing ones only with gc.compile(..., options={"value_changing": True}).
"""
from .autodiff import autodiff
from .cse import canonicalize, cse
from .dce import dce
from .fold import fold
from .fuse import fuse_elementwise
from .inline_gates import inline_gates
from .join_reduction import join_reduction
from .manager import Pass, PipelineResult, run_pipeline
from .memory import plan_memory
from .schedule import schedule
from .share_loops import share_loops
from .simplify import simplify
from .stabilize import stabilize

PIPELINE = [
    Pass("canonicalize", canonicalize, "constants last in commutative ops; merge duplicate nodes"),
    Pass("simplify", simplify, "algebraic identities: x*1, x+0, neg(neg x), transpose/reshape chains, ..."),
    Pass("stabilize", stabilize, "naive exp/log formulas -> sigmoid, softplus, softmax, logsumexp, the cross-entropy gate"),
    Pass("autodiff", autodiff, "expand gc.grad nodes into the reverse graph"),
    Pass("inline_gates", inline_gates, "each gc.gate node -> its body's ops (autodiff has used its gradient rule)"),
    Pass("dce", dce, "remove nodes no output depends on"),
    Pass("cse", cse, "merge nodes computing the same thing"),
    Pass("simplify_backward", simplify, "the algebraic identities again, now over the backward graph"),
    Pass("fold", fold, "evaluate nodes over constants"),
    Pass("cse_again", cse, "merge the nodes simplification made identical"),
    Pass("fuse_elementwise", fuse_elementwise, "groups of elementwise ops (+ a final reduction) -> one fused loop"),
    Pass("share_loops", share_loops, "fused loops over one shape reading a common array -> one loop"),
    Pass("join_reduction", join_reduction, "loops reading a reduction loop's stored values -> that loop"),
    Pass("plan_memory", plan_memory, "liveness, buffer reuse and in-place updates"),
    Pass("schedule", schedule, "each loop nest -> a shared library kernel call; views, BLAS calls, scalars -> the driver"),
]


def names():
    """The pipeline's pass names, in order."""
    return [p.name for p in PIPELINE]


__all__ = ["PIPELINE", "Pass", "PipelineResult", "run_pipeline", "names", "autodiff", "canonicalize", "cse", "dce",
           "fold", "fuse_elementwise", "inline_gates", "join_reduction", "plan_memory", "schedule", "share_loops", "simplify", "stabilize"]
