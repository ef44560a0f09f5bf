"""The `graphc` command line, run as a user runs it (a subprocess) on the examples' model files."""
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
LINEAR = os.path.join(EXAMPLES, "spiral.py") + ":linear_model"
MLP = os.path.join(EXAMPLES, "digits.py") + ":mlp_model"


def graphc(*args, env=None, check=True):
    out = subprocess.run([sys.executable, "-m", "graphc.cli", *args], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, **(env or {})))
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_the_console_script_is_installed():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(s.name == "graphc" and s.value == "graphc.cli:main" for s in scripts)


def test_passes_lists_the_pipeline_in_order():
    from graphc import passes
    lines = graphc("passes").stdout.splitlines()
    assert [line.split()[1] for line in lines] == [p.name for p in passes.PIPELINE]


def test_dump_text_after_a_pass_and_json(tmp_path):
    text = graphc("dump", LINEAR, "--after", "autodiff").stdout
    assert text.startswith("graph linear") and "# backward" in text and "spiral.py:" in text
    out = tmp_path / "graph.json"
    graphc("dump", LINEAR, "--format", "json", "-o", str(out))
    data = json.loads(out.read_text())
    assert data["schema"] == "graphc-graph" and any(n["op"] == "softmax_cross_entropy" for n in data["nodes"])


def test_a_dense_dump_numbers_nodes_in_order_of_appearance():
    import re
    numbers = [int(n) for n in re.findall(r"%(\d+)", graphc("dump", LINEAR, "--dense").stdout)]
    assert sorted(set(numbers)) == list(range(len(set(numbers))))
    first = list(dict.fromkeys(numbers))
    assert first == sorted(first)


def test_dump_all_passes_writes_one_file_per_pass(tmp_path):
    from graphc import passes
    listed = graphc("dump", LINEAR, "--all-passes", "-o", str(tmp_path)).stdout.split()
    assert len(listed) == len(passes.PIPELINE) + 1  # the lowered graph, then one per pass
    assert sorted(os.listdir(tmp_path))[-1].endswith("-schedule.txt")


@pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz programs are not installed")
def test_dump_svg(tmp_path):
    pytest.importorskip("graphviz")
    out = tmp_path / "step.svg"
    graphc("dump", MLP, "--format", "svg", "-o", str(out))
    assert b"<svg" in out.read_bytes()


def test_dump_of_a_saved_graph_and_errors_name_the_problem(tmp_path):
    import graphc as gc
    x = gc.tensor("x", (None, 2), "float32")
    saved = tmp_path / "saved.json"
    saved.write_text(gc.to_json(gc.sum(gc.tanh(x)), inputs=[x], name="saved"))
    assert graphc("dump", str(saved)).stdout.startswith("graph saved")
    missing = graphc("dump", LINEAR.replace("linear_model", "no_such_model"), check=False)
    assert missing.returncode == 2 and "has no function 'no_such_model'" in missing.stderr
    assert "linear_model" in missing.stderr and "Traceback" not in missing.stderr


def test_gradcheck_passes_on_the_examples_and_fails_on_a_wrong_gradient(tmp_path):
    report = graphc("gradcheck", os.path.join(EXAMPLES, "spiral.py") + ":two_layer_model", "--size", "6",
                    "--int-high", "3").stdout
    assert "hidden.W" in report or "W" in report
    assert "FAIL" not in report
    # a gate whose gradient rule is wrong: the check must catch it (exit code 1)
    model = tmp_path / "wrong.py"
    model.write_text(
        "import dataclasses\n"
        "import graphc as gc\n"
        "from graphc.ops import OPS\n"
        "OPS['tanh'] = dataclasses.replace(OPS['tanh'], vjp=lambda g, out, x: (g * 2.0,))\n"
        "def model():\n"
        "    x = gc.tensor('x', (3,), 'float64')\n"
        "    return [x], gc.sum(gc.tanh(x))\n")
    wrong = graphc("gradcheck", f"{model}:model", check=False, env={"GRAPHC_CACHE_DIR": str(tmp_path / "cache")})
    assert wrong.returncode == 1 and "FAIL" in wrong.stdout, wrong.stdout + wrong.stderr


def test_build_then_a_warm_start(tmp_path):
    env = {"GRAPHC_CACHE_DIR": str(tmp_path / "cache")}
    built = graphc("build", LINEAR, env=env).stdout
    assert "miss (first compile of this graph)" in built
    again = graphc("build", LINEAR, env=env).stdout
    assert "hit" in again
    info = graphc("cache", "info", env=env).stdout
    assert "compiled graphs" in info and str(tmp_path / "cache") in info
    cleared = graphc("cache", "clear", env=env).stdout
    assert "removed" in cleared and not (tmp_path / "cache").exists()


def test_bench_prints_cold_warm_and_per_call_times():
    table = graphc("bench", LINEAR, "--calls", "20", "--size", "32").stdout
    for row in ("cold compile + first call", "warm start (cache) + first call", "per call, median of 20"):
        assert row in table
