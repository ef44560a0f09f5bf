"""Central differences in float64: the numeric gradient the gradient tests compare against."""
import numpy as np

EPS = 1e-6  # central-difference step


def central_differences(f, arrays, k):
    """d f(arrays) / d arrays[k], element by element; f maps a list of arrays to a float."""
    x = np.asarray(arrays[k], np.float64)
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        values = []
        for h in (EPS, -EPS):
            moved = x.copy()
            moved[index] += h
            values.append(f(arrays[:k] + [moved] + arrays[k + 1:]))
        numeric[index] = (values[0] - values[1]) / (2 * EPS)
    return numeric
