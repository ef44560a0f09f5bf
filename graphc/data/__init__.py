"""Small data sets for the examples, bundled with graphc so nothing is downloaded at run time."""
import gzip
import os

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))


def load_digits():
    """scikit-learn's digits (the UCI optdigits test set; LICENSE-digits.txt): 1797 handwritten digits
    as 8x8 images of 0..16 counts. Returns X float32 (1797, 64) scaled to [0, 1] and y int64 (1797,)."""
    with gzip.open(os.path.join(_HERE, "digits.csv.gz"), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return (table[:, :-1] / 16.0).astype(np.float32), table[:, -1].astype(np.int64)


def spiral(points_per_class=100, classes=3, seed=0):
    """CS231n's spiral: `classes` arms, each `points_per_class` points from the centre outwards at
    radius 0..1, with noise on the angle, so no linear classifier separates them. Returns X float32
    (points_per_class * classes, 2) and y int64."""
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, points_per_class)
    arms, labels = [], []
    for k in range(classes):
        angle = np.linspace(4.0 * k, 4.0 * (k + 1), points_per_class) + rng.normal(0.0, 0.2, points_per_class)
        arms.append(np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]))
        labels.append(np.full(points_per_class, k))
    return np.concatenate(arms).astype(np.float32), np.concatenate(labels).astype(np.int64)
