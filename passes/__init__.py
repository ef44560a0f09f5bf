"""Every graph-to-graph transformation, and the pipeline: one explicit ordered list."""
from .autodiff import autodiff
from .dce import dce
from .manager import Pass, PipelineResult, run_pipeline

PIPELINE = [
    Pass("autodiff", autodiff, "expand gc.grad nodes into the reverse graph"),
    Pass("dce", dce, "remove nodes no output depends on"),
]


def names():
    return [p.name for p in PIPELINE]


__all__ = ["PIPELINE", "Pass", "PipelineResult", "run_pipeline", "names", "autodiff", "dce"]
