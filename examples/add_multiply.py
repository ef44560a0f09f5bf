"""The lecture's first computational graph: f = (x + y) * z at x=-2, y=5, z=-4.

Add distributes the upstream gradient, multiply swaps its inputs:
f = -12, df/dx = df/dy = z = -4, df/dz = x + y = 3.
"""
import graphc as gc


def build():
    x, y, z = (gc.scalar(name, dtype="float64") for name in "xyz")
    q = x + y
    f = q * z
    return gc.compile([x, y, z], [f] + gc.grad(f, [x, y, z]), name="add_multiply")


def main():
    fn = build()
    f, dx, dy, dz = fn(-2.0, 5.0, -4.0)
    print(f"f = {f}   df/dx = {dx}   df/dy = {dy}   df/dz = {dz}\n")
    print(fn.dump(after="autodiff"), "\n")
    print(fn.dump())


if __name__ == "__main__":
    main()
