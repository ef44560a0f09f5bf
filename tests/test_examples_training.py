"""The bundled data sets, and the spiral and digits examples: their models compile and learn, main() writes its files."""
import shutil

import numpy as np
import pytest

import graphc as gc
from graphc.data import load_digits, spiral

from test_examples import load


def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))  # counts 0..16, scaled
    assert set(np.unique(y)) == set(range(10)) and np.bincount(y).min() > 150


def test_spiral():
    X, y = spiral(points_per_class=50, classes=4, seed=1)
    assert X.shape == (200, 2) and X.dtype == np.float32
    assert y.dtype == np.int64 and np.array_equal(np.bincount(y), [50] * 4)
    assert np.linalg.norm(X, axis=1).max() <= 1.0 + 1e-6
    np.testing.assert_array_equal(X, spiral(points_per_class=50, classes=4, seed=1)[0])


MODELS = [("spiral", "linear_model"), ("spiral", "two_layer_model"), ("digits", "svm_model"), ("digits", "mlp_model")]


@pytest.mark.parametrize("example, model", MODELS)
def test_model_returns_a_declaration(example, model):
    declaration = getattr(load(example), model)()
    assert {"inputs", "outputs", "updates"} <= set(declaration) <= {"inputs", "outputs", "updates", "name"}
    x, labels = declaration["inputs"]
    loss, scores = declaration["outputs"]
    assert not isinstance(x.shape[0], int) and labels.dtype == "int64"  # any batch size
    assert loss.ndim == 0 and scores.ndim == 2
    assert {id(p) for p in gc.parameters(loss)} <= {id(t) for t in declaration["updates"]}


# the two larger models compile in the training tests below, through the examples' own gc.compile calls
@pytest.mark.parametrize("example, model", [("spiral", "linear_model"), ("digits", "svm_model")])
def test_gc_compile_accepts_the_declaration(example, model):
    declaration = getattr(load(example), model)()
    step = gc.compile(declaration["inputs"], declaration["outputs"], updates=declaration["updates"], name=model)
    features, classes = declaration["inputs"][0].shape[1], declaration["outputs"][1].shape[1]
    params = {p: p.get_value() for p in gc.parameters(declaration["outputs"][0])}
    loss, scores = step(np.full((5, features), 0.5, np.float32), np.arange(5, dtype=np.int64) % classes)
    assert loss.shape == () and np.isfinite(loss) and scores.shape == (5, classes)
    assert all(not np.array_equal(p.get_value(), before) for p, before in params.items())  # updated in place


def test_spiral_two_layer_fits_the_training_set():
    example = load("spiral")
    X, y = spiral()
    _, scores, _ = example.train(example.two_layer_model(), X, y, steps=2000, name="spiral_two_layer")
    assert example.accuracy(scores, X, y) > 0.95


def test_digits_mlp_reaches_97_percent_and_matches_numpy():
    example = load("digits")
    data = example.split()
    model = example.mlp_model()
    initial = {p.name: p.get_value() for p in gc.parameters(model["outputs"][0])}
    step, scores = example.compile_model(model)
    history = example.train_mlp(step, scores, data, epochs=30, progress=False)
    assert history["test_accuracy"][-1] >= 0.97
    # the hand-written NumPy step from the same start follows the same path, up to float32 rounding
    reference = example.NumpyMLP(initial["hidden.W"], initial["hidden.b"], initial["output.W"], initial["output.b"],
                                 example.MLP_LR)
    numpy_history = example.train_mlp(reference.step, reference.scores, data, epochs=3, progress=False)
    np.testing.assert_allclose(numpy_history["loss"], history["loss"][:3], rtol=1e-3)


def test_examples_main_write_their_files(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    spiral_results = load("spiral").main(["--out", str(tmp_path)])
    digits_results = load("digits").main(["--out", str(tmp_path), "--epochs", "3"])
    for name in ["spiral_linear.png", "spiral_two_layer.png", "spiral_two_layer_step.txt", "digits_mlp_curves.png",
                 "digits_mlp_step.txt"]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert spiral_results["two_layer"] > 0.9 and digits_results["mlp_test_accuracy"] > 0.8
    assert "# backward" in (tmp_path / "digits_mlp_step.txt").read_text()
    if shutil.which("dot"):  # Graphviz installed: the step's picture too
        assert (tmp_path / "digits_mlp_step.svg").read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
    assert str(tmp_path / "digits_mlp_curves.png") in capsys.readouterr().out
