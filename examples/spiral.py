"""CS231n's spiral: three interleaved arms of points in the plane, which no linear classifier separates.

A softmax classifier reaches ~50% train accuracy, a two-layer network (100 relu units) over 95%; both
train full batch with Adam, one compiled graphc step per iteration (forward, backward and update).
The decision regions are saved as PNG, and the two-layer step's IR as text, in --out.

    python examples/spiral.py [--out DIR]
"""
import argparse
import os

import numpy as np

import graphc as gc
from graphc.data import spiral

CLASSES = 3
L2 = 1e-3  # CS231n's regularization strength for this data
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def linear_model(lr=0.05, seed=0):
    """Scores x @ W + b: the declaration {"inputs", "outputs": [loss, scores], "updates"}."""
    x, labels = _inputs()
    scores = gc.nn.dense(x, CLASSES, name="linear", init="glorot_uniform", seed=seed)
    return _classifier(x, labels, scores, lr)


def two_layer_model(hidden=100, lr=0.01, seed=0):
    """Scores relu(x @ W1 + b1) @ W2 + b2: the declaration, as linear_model's."""
    x, labels = _inputs()
    h = gc.nn.dense(x, hidden, activation="relu", name="hidden", seed=seed)
    scores = gc.nn.dense(h, CLASSES, name="output", init="glorot_uniform", seed=seed + 1)
    return _classifier(x, labels, scores, lr)


def _inputs():
    return gc.tensor("x", (None, 2), "float32"), gc.tensor("labels", (None,), "int64")


def _classifier(x, labels, scores, lr):
    """Softmax cross-entropy plus L2 on the weights (not the biases), with Adam's updates."""
    params = gc.parameters(scores)
    weights = [p for p in params if p.name.endswith(".W")]  # gc.nn.dense's names: layer.W, layer.b
    loss = gc.nn.cross_entropy(scores, labels) + 0.5 * L2 * sum(gc.sum(W * W) for W in weights)
    return {"inputs": [x, labels], "outputs": [loss, scores], "updates": gc.optim.adam(loss, params, lr=lr)}


def train(model, X, y, steps, name):
    """Run `steps` full-batch steps; returns (the compiled step, a compiled x -> scores, the last loss)."""
    step = gc.compile(model["inputs"], model["outputs"], updates=model["updates"], name=name)
    for _ in range(steps):
        loss, _ = step(X, y)
    # the scores read the same gc.shared parameters, so this sees the trained values
    scores = gc.compile(model["inputs"][:1], model["outputs"][1], name=f"{name}_scores")
    return step, scores, float(loss)


def accuracy(scores, X, y):
    return float(np.mean(np.argmax(scores(X), axis=1) == y))


def plot_regions(scores, X, y, title, path):
    import matplotlib  # imported here: training needs no matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = X.min(axis=0) - 0.2, X.max(axis=0) + 0.2
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)
    regions = np.argmax(scores(grid), axis=1).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(gx, gy, regions, levels=np.arange(CLASSES + 1) - 0.5, cmap="Spectral", alpha=0.4)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=12, cmap="Spectral", edgecolors="k", linewidths=0.3)
    ax.set(title=title, xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for the plots and the IR (default: %(default)s)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    X, y = spiral(points_per_class=100, classes=CLASSES, seed=0)

    results = {}
    for name, model, steps in [("linear", linear_model(), 300), ("two_layer", two_layer_model(), 2000)]:
        step, scores, loss = train(model, X, y, steps, name=f"spiral_{name}")
        results[name] = acc = accuracy(scores, X, y)
        print(f"{name:>9}: {steps} steps, loss {loss:.3f}, train accuracy {acc:.1%}")
        plot = os.path.join(args.out, f"spiral_{name}.png")
        plot_regions(scores, X, y, f"spiral, {name.replace('_', '-')}: train accuracy {acc:.1%}", plot)
        print(f"  wrote {plot}")
        if name == "two_layer":
            ir = os.path.join(args.out, "spiral_two_layer_step.txt")
            with open(ir, "w") as f:
                f.write(step.dump() + "\n")
            print(f"  wrote {ir}")
    return results


if __name__ == "__main__":
    main()
