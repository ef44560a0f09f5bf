"""scikit-learn's digits (1797 8x8 images, bundled as graphc.data) with two models trained by graphc.

(a) the lecture's multiclass SVM: scores s = x W + b, loss mean_i sum_{j != y_i} max(0, s_j - s_{y_i} + 1)
    plus L2 on W, full batch SGD with momentum;
(b) an MLP 64-128-10 with relu, softmax cross-entropy, Adam on minibatches of 64, a tqdm bar per epoch.
Then the same MLP step written in plain NumPy (forward, backward by hand, the same Adam) trains from the
same initial values on the same batches, and the time per epoch of the two steps is compared.
Written to --out: the MLP's loss and accuracy curves (PNG), its compiled step's IR (text) and graph (SVG,
when Graphviz is installed).

    python examples/digits.py [--out DIR] [--epochs N]
"""
import argparse
import os
import time

import numpy as np

import graphc as gc
from graphc.data import load_digits

CLASSES = 10
TRAIN_SIZE = 1347  # of 1797: a 75/25 split, 450 test images
BATCH_SIZE = 64
MLP_LR = 2e-3  # Adam's rate, for graphc's step and the NumPy one
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def split(seed=0):
    """(X_train, y_train, X_test, y_test): a fixed shuffle of load_digits()."""
    X, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return X[train], y[train], X[test], y[test]


def _inputs():
    return gc.tensor("x", (None, 64), "float32"), gc.tensor("labels", (None,), "int64")


def svm_model(lr=0.1, reg=1e-3, seed=0):
    """The multiclass SVM, hinge loss plus reg * sum(W * W): {"inputs", "outputs": [loss, scores], "updates"}."""
    x, labels = _inputs()
    scores = gc.nn.dense(x, CLASSES, name="svm", init="glorot_uniform", seed=seed)
    W, b = gc.parameters(scores)
    correct = gc.take_along_axis(scores, gc.reshape(labels, (-1, 1)), axis=1)
    # the j = y_i term is max(0, 1) = 1 whatever the scores: the one-hot mask leaves it out
    margins = gc.maximum(scores - correct + 1.0, 0.0) * (1.0 - gc.one_hot(labels, CLASSES))
    loss = gc.mean(gc.sum(margins, axis=1)) + reg * gc.sum(W * W)
    return {"inputs": [x, labels], "outputs": [loss, scores], "name": "digits_svm_step",
            "updates": gc.optim.sgd(loss, [W, b], lr, momentum=0.9)}


def mlp_model(hidden=128, lr=MLP_LR, seed=0):
    """The MLP's declaration {"inputs", "outputs": [loss, scores], "updates": Adam's}; any batch size."""
    x, labels = _inputs()
    h = gc.nn.dense(x, hidden, activation="relu", name="hidden", seed=seed)
    scores = gc.nn.dense(h, CLASSES, name="output", init="glorot_uniform", seed=seed + 1)
    loss = gc.nn.cross_entropy(scores, labels)
    return {"inputs": [x, labels], "outputs": [loss, scores], "name": "digits_mlp_step",
            "updates": gc.optim.adam(loss, gc.parameters(loss), lr=lr)}


def compile_model(model):
    """(the training step, x -> scores): the scores read the step's gc.shared parameters as it trains them.
    The step is named as its model names it, so `graphc build examples/digits.py:mlp_model` compiles
    the very graph this program runs."""
    step = gc.compile(model["inputs"], model["outputs"], updates=model["updates"], name=model["name"])
    scores = gc.compile(model["inputs"][:1], model["outputs"][1], name=model["name"].replace("_step", "_scores"))
    return step, scores


def accuracy(scores, X, y):
    return float(np.mean(np.argmax(scores(X), axis=1) == y))


def train_svm(data, steps=300):
    X_train, y_train, X_test, y_test = data
    step, scores = compile_model(svm_model())
    for _ in range(steps):
        loss, _ = step(X_train, y_train)
    return float(loss), accuracy(scores, X_test, y_test)


def train_mlp(step, scores, data, epochs, seed=0, progress=True):
    """Minibatch training; `step(x, labels) -> (loss, scores)` updates the model, `scores(x)` predicts.
    Returns per-epoch lists: loss, train and test accuracy, and the seconds spent in `step`."""
    X_train, y_train, X_test, y_test = data
    rng = np.random.default_rng(seed)  # the same seed gives the graphc and the NumPy step the same batches
    history = {"loss": [], "train_accuracy": [], "test_accuracy": [], "step_seconds": []}
    for epoch in range(epochs):
        order = rng.permutation(len(y_train))
        batches = [order[k:k + BATCH_SIZE] for k in range(0, len(order), BATCH_SIZE)]
        if progress:
            from tqdm import tqdm  # imported here: training without a bar needs no tqdm
            batches = tqdm(batches, desc=f"epoch {epoch + 1:>2}/{epochs}")
        loss_sum = correct = seen = seconds = 0.0
        for batch in batches:
            x, labels = X_train[batch], y_train[batch]
            start = time.perf_counter()
            loss, batch_scores = step(x, labels)
            seconds += time.perf_counter() - start
            seen += len(batch)
            loss_sum += float(loss) * len(batch)
            correct += np.sum(np.argmax(batch_scores, axis=1) == labels)
            if progress:
                batches.set_postfix(loss=f"{loss_sum / seen:.4f}", accuracy=f"{correct / seen:.1%}", refresh=False)
        history["loss"].append(loss_sum / seen)
        history["train_accuracy"].append(float(correct / seen))
        history["test_accuracy"].append(accuracy(scores, X_test, y_test))
        history["step_seconds"].append(seconds)
    return history


class NumpyMLP:
    """The MLP step in plain NumPy: forward, backward written out, Adam as gc.optim.adam (PyTorch's)."""

    def __init__(self, W1, b1, W2, b2, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params = [p.copy() for p in (W1, b1, W2, b2)]
        self.moments = [(np.zeros_like(p), np.zeros_like(p)) for p in self.params]
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0

    def scores(self, x):
        W1, b1, W2, b2 = self.params
        return np.maximum(x @ W1 + b1, 0) @ W2 + b2

    def step(self, x, labels):
        W1, b1, W2, b2 = self.params
        h = np.maximum(x @ W1 + b1, 0)
        scores = h @ W2 + b2
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(len(labels))
        loss = -log_p[rows, labels].mean()
        d_scores = np.exp(log_p)
        d_scores[rows, labels] -= 1
        d_scores /= len(labels)
        d_h = d_scores @ W2.T
        d_h[h <= 0] = 0  # relu passes no gradient at 0, as graphc's
        grads = [x.T @ d_h, d_h.sum(axis=0), h.T @ d_scores, d_scores.sum(axis=0)]
        self._adam(grads)
        return loss, scores

    def _adam(self, grads):
        beta1, beta2 = self.betas
        self.t += 1
        correction1, root2 = 1 - beta1 ** self.t, np.sqrt(1 - beta2 ** self.t)
        for p, g, (m, v) in zip(self.params, grads, self.moments):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= self.lr * (m / correction1) / (np.sqrt(v) / root2 + self.eps)


def plot_curves(history, path):
    import matplotlib  # imported here: training needs no matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, history["loss"])
    left.set(title="MLP training loss", xlabel="epoch", ylabel="cross-entropy", yscale="log")
    right.plot(epochs, history["train_accuracy"], label="train")
    right.plot(epochs, history["test_accuracy"], label="test")
    right.set(title="MLP accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0.8, 1.0))
    right.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def write_step_graph(step, out):
    """The compiled step's final IR as text, and as an SVG picture when Graphviz's dot is installed;
    returns the paths written."""
    from graphc.dot import render, to_dot

    text_path, svg_path = os.path.join(out, "digits_mlp_step.txt"), os.path.join(out, "digits_mlp_step.svg")
    with open(text_path, "w") as f:
        f.write(step.dump() + "\n")
    try:
        svg = render(to_dot(step.ir), "svg")
    except gc.GraphcError as error:  # no Graphviz: the text IR is enough
        print(f"  no SVG of the step: {error}")
        return [text_path]
    with open(svg_path, "wb") as f:
        f.write(svg)
    return [text_path, svg_path]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for the plots and the IR (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=30, help="MLP epochs (default: %(default)s)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    data = split()

    svm_loss, svm_accuracy = train_svm(data)
    print(f"SVM: loss {svm_loss:.3f}, test accuracy {svm_accuracy:.1%}")

    model = mlp_model()
    initial = {p.name: p.get_value() for p in gc.parameters(model["outputs"][0])}
    start = time.perf_counter()
    step, scores = compile_model(model)
    info = step.cache_info()
    print(f"MLP step ready in {time.perf_counter() - start:.2f} s ({info['status']}: {info['reason']}; "
          f"kernel: {info['kernel']})")
    history = train_mlp(step, scores, data, args.epochs)
    print(f"MLP: loss {history['loss'][-1]:.4f}, train accuracy {history['train_accuracy'][-1]:.1%}, "
          f"test accuracy {history['test_accuracy'][-1]:.1%}")

    reference = NumpyMLP(initial["hidden.W"], initial["hidden.b"], initial["output.W"], initial["output.b"], MLP_LR)
    numpy_history = train_mlp(reference.step, reference.scores, data, args.epochs, progress=False)
    # the median epoch: the first graphc calls may still finish loading kernels
    graphc_epoch, numpy_epoch = np.median(history["step_seconds"]), np.median(numpy_history["step_seconds"])
    print(f"NumPy MLP (same start, same batches): test accuracy {numpy_history['test_accuracy'][-1]:.1%}")
    print(f"time per epoch ({len(data[1])} images, batches of {BATCH_SIZE}): graphc {graphc_epoch * 1e3:.2f} ms, "
          f"NumPy {numpy_epoch * 1e3:.2f} ms: NumPy / graphc = {numpy_epoch / graphc_epoch:.2f}x (above 1: graphc is faster)")

    curves = os.path.join(args.out, "digits_mlp_curves.png")
    plot_curves(history, curves)
    for path in [curves] + write_step_graph(step, args.out):
        print(f"  wrote {path}")
    return {"svm_test_accuracy": svm_accuracy, "mlp_test_accuracy": history["test_accuracy"][-1],
            "numpy_test_accuracy": numpy_history["test_accuracy"][-1], "time_ratio": numpy_epoch / graphc_epoch}


if __name__ == "__main__":
    main()
