"""Threads: graphs declared, compiled and called from several threads at once, and the threading layer
graphc picks for parallel kernels (thread-safe calls, a forked child that still runs them)."""
import sys
import threading

import numpy as np
import pytest

import graphc as gc
from graphc.errors import ShapeError
from graphc.types import Dim, resolve, transaction, unify

THREADS = 8


def run_in_threads(work, count=THREADS):
    """work(k) in `count` threads started together; the first exception any of them raised, re-raised."""
    errors, start = [], threading.Barrier(count)

    def run(k):
        start.wait()
        try:
            work(k)
        except BaseException as error:  # noqa: B036  reported to the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.fixture
def switch_often():
    """Threads switch every microsecond instead of every 5 ms, so races show within a few thousand builds."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


# ---- declaring ----------------------------------------------------------------------------------------

def test_a_rejected_op_in_one_thread_keeps_another_threads_unification():
    """Regression: transactions shared one journal stack. Thread A's rejected op rolled back the journal
    on top, which held thread B's unification (x*y's batch sizes), so B's x and y stayed apart and the
    kernel accepted x of (100000, 5) with y of (2, 5)."""
    inside, b_done = threading.Event(), threading.Event()
    a_own, a_other = Dim("a"), Dim("b")
    built = {}

    def rejected_op():  # what apply does for an op whose shape rule unifies, then raises
        with pytest.raises(ShapeError):
            with transaction():
                unify(a_own, a_other)
                inside.set()
                b_done.wait(timeout=0.2)  # with declaration serialized, B waits for this block instead
                raise ShapeError("rejected")

    def build_product():
        inside.wait()
        x, y = gc.tensor("x", (None, 5), "float64"), gc.tensor("y", (None, 5), "float64")
        built.update(x=x, y=y, z=x * y)
        b_done.set()

    threads = [threading.Thread(target=rejected_op), threading.Thread(target=build_product)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    x, y, z = built["x"], built["y"], built["z"]
    assert x.shape[0] is y.shape[0] is z.shape[0]
    assert resolve(a_other) is a_other  # A's own unification was undone


def test_declaring_from_threads_unifies_every_build(switch_often):
    """8 threads build x*y (batch sizes unified) between rejected ops; every build keeps its unification."""
    lost = []

    def work(k):
        w = gc.tensor("w", (4,), "float64")
        for i in range(500):
            x, y = gc.tensor("x", (None, 5), "float64"), gc.tensor("y", (None, 5), "float64")
            z = x * y
            if not x.shape[0] is y.shape[0] is z.shape[0]:
                lost.append((k, i))
            with pytest.raises(ShapeError):
                x @ w

    run_in_threads(work)
    assert lost == []

