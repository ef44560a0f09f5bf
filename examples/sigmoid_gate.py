"""The sigmoid gate: the lecture's neuron written naively, f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))).

The stabilize pass recognizes the sigmoid before autodiff, so the backward comes from the gate's own
rule ds = s*(1-s)*g and never recomputes exp; fusion then makes the forward one node and the
backward one node reading only the saved output s. Prints the IR before and after.
"""
import numpy as np

import graphc as gc


def build():
    return gc.compile(*_inputs_outputs(), name="neuron")


def main():
    fn = build()
    f, dw, dx = fn(np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0]))
    print(f"f = {f:.4f}   df/dw = {np.round(dw, 2)}   df/dx = {np.round(dx, 2)}\n")
    print("as written (forward), before any pass:")
    print(fn.dump(after="input"), "\n")
    print("without the gate (stabilize and fusion off), after autodiff the backward recomputes through exp:")
    print(gc.compile(*_inputs_outputs(), disable=["stabilize", "fuse_elementwise"], name="neuron").dump(), "\n")
    print("compiled: one forward node, one backward node ds = s*(1-s) reading the saved s:")
    print(fn.dump(), "\n")
    print(fn.report())


def _inputs_outputs():
    w = gc.tensor("w", shape=(3,), dtype="float64")
    x = gc.tensor("x", shape=(2,), dtype="float64")
    f = 1.0 / (1.0 + gc.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    return [w, x], [f] + gc.grad(f, [w, x])


if __name__ == "__main__":
    main()
