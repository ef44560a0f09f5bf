"""graphc.dot: DOT text of the IR (deterministic, escaped, fused bodies as clusters) and rendering it."""
import importlib.util
import re
import shutil
import sys
import xml.etree.ElementTree as ET

import pytest

import graphc as gc
from graphc.dot import PHASE_COLOURS, render, to_dot
from graphc.errors import GraphcError
from graphc.lower import lower

HAVE_GRAPHVIZ_PACKAGE = importlib.util.find_spec("graphviz") is not None

needs_package = pytest.mark.skipif(not HAVE_GRAPHVIZ_PACKAGE, reason="the graphviz Python package is not installed")
needs_dot = pytest.mark.skipif(not HAVE_GRAPHVIZ_PACKAGE or shutil.which("dot") is None,
                               reason="the graphviz Python package or Graphviz's dot program is not installed")


def tanh_layer_step():
    x, W = gc.tensor("x", (None, 4), "float32"), gc.tensor("W", (4, 3), "float32")
    loss = gc.sum(gc.tanh(x @ W))
    (grad_W,) = gc.grad(loss, [W])
    return gc.compile([x, W], [loss, grad_W], updates={W: W - 0.1 * grad_W})


@pytest.fixture(scope="module")
def step():
    return tanh_layer_step()


def defined_nodes(text):
    return re.findall(r"^ +(\w+) \[", text, re.M)


def test_phases_fused_clusters_types_and_locations(step):
    text = to_dot(step.ir)
    for colour in PHASE_COLOURS.values():
        assert re.search(rf'^ +n\d+ \[[^\]]*fillcolor="{colour}"', text, re.M), colour
    assert 'n0 [label="x", shape="ellipse"' in text and 'n1 [label="W", shape="ellipse"' in text
    assert 'label="output 0", shape="doubleoctagon"' in text
    cluster = re.search(r"subgraph cluster_0 \{\n(.*?)\n  \}", text, re.S).group(1)
    assert re.search(r'c0s0 \[label="tanh"', cluster)
    assert re.search(r'n\d+ \[label="fused\{sum\[0,1\]\(tanh\(i0\)\)\}"', cluster), "the fused node shows its formula"
    assert 'n0 -> n2 [label="f32[N,4]"];' in text, "x feeds the matmul"
    assert re.search(r'-> n1 \[label="update", style="dashed"', text), "the new W goes back into W"
    assert re.search(r'tooltip="forward, test_dot\.py:\d+"', text)
    assert re.search(r'tooltip="backward, grad of tanh at test_dot\.py:\d+"', text)
    assert "tooltip" not in to_dot(step.ir, show_loc=False)


def test_same_text_for_two_compiles_with_nodes_numbered_densely(step):
    text = to_dot(step.ir)
    assert to_dot(tanh_layer_step().ir) == text
    graph_nodes = [name for name in defined_nodes(text) if re.fullmatch(r"n\d+", name)]
    assert graph_nodes == [f"n{k}" for k in range(len(step.ir))]
    endpoints = {name for edge in re.findall(r"^ +(\w+) -> (\w+)", text, re.M) for name in edge}
    assert endpoints <= set(defined_nodes(text)), "every edge joins drawn nodes"


AWKWARD_NAME = 'x "quoted" \\N <b> {c} &amp; d'


def test_labels_show_quotes_backslashes_and_ampersands_as_written():
    x = gc.tensor(AWKWARD_NAME, (2,), "float32")
    text = to_dot(lower([gc.exp(x)], [x]))
    assert 'n0 [label="x \\"quoted\\" \\\\N <b> {c} &amp;amp; d", shape="ellipse"' in text


@needs_dot
def test_render_svg_and_png_deterministically(step):
    text = to_dot(step.ir)
    svg = render(text, "svg")
    assert svg.startswith(b"<?xml") and b"<svg" in svg
    assert render(text, "svg") == svg
    assert render(text, "png").startswith(b"\x89PNG")
    x = gc.tensor(AWKWARD_NAME, (2,), "float32")
    labels = [e.text for e in ET.fromstring(render(to_dot(lower([gc.exp(x)], [x])), "svg")).iter()
              if e.tag.endswith("text")]
    assert AWKWARD_NAME in labels, "Graphviz draws the name exactly"


def test_render_dot_is_the_text_and_other_formats_are_refused():
    assert render("digraph {}", "dot") == b"digraph {}"
    with pytest.raises(GraphcError, match="formats are dot, svg, png"):
        render("digraph {}", "pdf")


@needs_dot
def test_render_reports_bad_dot_text():
    with pytest.raises(GraphcError, match="dot failed.*syntax error"):
        render("digraph {", "svg")


@needs_package
def test_missing_dot_program_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(GraphcError, match="system package.*apt-get install graphviz.*brew install graphviz"):
        render("digraph {}", "svg")


def test_missing_graphviz_package_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz now raises ImportError
    with pytest.raises(GraphcError, match="pip install graphviz"):
        render("digraph {}", "svg")
