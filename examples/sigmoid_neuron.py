"""The lecture's two-input sigmoid neuron: f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))).

Written out op by op, as in the lecture's graph; at w = [2, -3, -3], x = [-1, -2]:
f ~ 0.73, df/dw ~ [-0.20, -0.39, 0.20], df/dx ~ [0.39, -0.59].
"""
import numpy as np

import graphc as gc


def build():
    w = gc.tensor("w", shape=(3,), dtype="float64")
    x = gc.tensor("x", shape=(2,), dtype="float64")
    dot = w[0] * x[0] + w[1] * x[1] + w[2]
    f = 1.0 / (1.0 + gc.exp(-dot))
    return gc.compile([w, x], [f] + gc.grad(f, [w, x]), name="neuron"), (f, w, x)


def main():
    fn, (f_sym, w, x) = build()
    W, X = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])
    f, dw, dx = fn(W, X)
    print(f"f = {f:.4f}\ndf/dw = {np.round(dw, 2)}\ndf/dx = {np.round(dx, 2)}\n")
    print("check against central differences:")
    print(gc.check_grad(f_sym, [w, x], {w: W, x: X}), "\n")
    print(fn.dump(after="autodiff"), "\n")
    print("compiled:")
    print(fn.dump())


if __name__ == "__main__":
    main()
