"""The pass manager: the named pipeline, disable, dumps after any/every/changed pass, reports, errors."""
import os

import pytest

import graphc as gc
from graphc import passes
from graphc.errors import GraphcError, PassError
from graphc.passes import Pass, run_pipeline


def test_pipeline_is_listed_in_order_with_descriptions():
    assert passes.names() == ["canonicalize", "simplify", "stabilize", "autodiff", "inline_gates", "dce", "cse", "simplify_backward",
                              "fold", "cse_again", "fuse_elementwise", "share_loops", "join_reduction",
                              "plan_memory", "schedule"]
    for p in passes.PIPELINE:
        assert p.description and p.run.__doc__ and len(p.run.__doc__.strip().splitlines()[0]) > 10


def neuron():
    w, x = gc.tensor("w", (3,), "float64"), gc.tensor("x", (2,), "float64")
    f = 1.0 / (1.0 + gc.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    return gc.lower([f] + gc.grad(f, [w, x]), [w, x])


def test_passes_never_mutate_their_input_and_return_it_when_unchanged():
    graph = neuron()
    for p in passes.PIPELINE:
        before = (sorted(graph.g.nodes(data="op")), list(graph.outputs), {n: graph.args(n) for n in graph.g.nodes})
        result = p.run(graph)
        assert before == (sorted(graph.g.nodes(data="op")), list(graph.outputs), {n: graph.args(n) for n in graph.g.nodes}), p.name
        result.verify(gc.ops.OPS)
        graph = result
    assert passes.cse(graph) is graph and passes.dce(graph) is graph


def test_disable_dumps_and_report(tmp_path):
    result = run_pipeline(neuron(), passes.PIPELINE, disable=["fuse_elementwise"], verify=True)
    assert "fuse_elementwise" not in result.snapshots and "fused" not in [result.graph.op(n) for n in result.graph.g.nodes]
    report = result.report()
    assert "sigmoidx1" in report and "stabilize" in report and "unchanged" in report
    with pytest.raises(GraphcError, match="unknown passes"):
        run_pipeline(neuron(), passes.PIPELINE, disable=["fusion"])


def test_compiled_function_dumps_every_pass_only_changed_and_into_a_folder(tmp_path):
    w, x = gc.tensor("w", (3,), "float64"), gc.tensor("x", (2,), "float64")
    f = 1.0 / (1.0 + gc.exp(-(w[0] * x[0] + w[1] * x[1] + w[2]))); line = __import__("inspect").currentframe().f_lineno  # noqa: E702
    # its own name: the disk cache keys graphs without their source lines (a cached graph keeps the
    # lines of whichever test compiled it first)
    fn = gc.compile([w, x], [f] + gc.grad(f, [w, x]), name="manager_dumps")
    everything = fn.dump_all()
    changed = fn.dump_all(only_changed=True, folder=str(tmp_path))
    assert everything.count("// after") == len(passes.names()) + 1
    assert "// after simplify\n" in everything and "// after simplify\n" not in changed
    assert "// after stabilize" in changed and "sigmoid" in fn.dump(after="stabilize")
    files = sorted(os.listdir(tmp_path))
    assert files[0] == "00-input.txt" and any(name.endswith("-fuse_elementwise.txt") for name in files)
    assert "fused{i0*(1-i0)}" in fn.dump() and "memory:" in fn.report() and "sigmoidx1" in fn.report()
    gate_line = next(line for line in fn.dump().splitlines() if "fused{i0*(1-i0)}" in line)
    assert gate_line.endswith(f"# grad of sigmoid at test_passes_manager.py:{line}"), gate_line  # provenance survives


def test_a_failing_pass_is_named_with_the_passes_before_it():
    def broken(graph):
        """Break the graph: an edge its operands don't list."""
        graph = graph.copy()
        graph.g.add_edge(graph.inputs[0], graph.outputs[0])
        return graph
    pipeline = passes.PIPELINE[:2] + [Pass("broken", broken, "breaks things")]
    with pytest.raises(PassError, match=r"pass broken \(after canonicalize, simplify\)"):
        run_pipeline(neuron(), pipeline, verify=True)
