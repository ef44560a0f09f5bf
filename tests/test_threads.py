"""Threads: graphs declared, compiled and called from several threads at once, and the threading layer
graphc picks for parallel kernels (thread-safe calls, a forked child that still runs them)."""
import ctypes
import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphcError, ShapeError
from graphc.runtime import threads
from graphc.runtime.compile import COUNTS
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



# ---- calling from threads -----------------------------------------------------------------------------
CALLS = 10_000  # per thread, half to each kernel


def build_serial():
    a, b = gc.tensor("a", (None, 3), "float64"), gc.tensor("b", (3,), "float64")
    return gc.compile([a, b], [gc.sum(gc.tanh(a * b), axis=1)], name="serial_rows")


def build_parallel():
    x = gc.tensor("x", (None,), "float64")  # a flat loop over a call-time size: a parallel kernel
    return gc.compile([x], [gc.tanh(x * 2.0 + 1.0) * x], name="parallel_chain")


@pytest.fixture(scope="module")
def serial():
    return build_serial()


@pytest.fixture(scope="module")
def parallel():
    return build_parallel()


def close(got, want):
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= 1e-12 * (1 + np.abs(want))))


def thread_inputs(k):
    """Each thread its own sizes and values, so results crossing between threads show."""
    rng = np.random.default_rng(k)
    return rng.standard_normal((k + 1, 3)), rng.standard_normal(3), rng.standard_normal(k + 2)


def call_from_threads(serial, parallel, calls):
    def work(k):
        a, b, x = thread_inputs(k)
        want_rows, want_chain = np.tanh(a * b).sum(axis=1), np.tanh(x * 2.0 + 1.0) * x
        for _ in range(calls // 2):
            (rows,) = serial(a, b)
            (chain,) = parallel(x)
            assert close(rows, want_rows) and close(chain, want_chain), f"thread {k}: {rows}, {chain}"

    run_in_threads(work)


def test_the_kernels_are_serial_and_parallel(serial, parallel):
    assert "prange(" not in serial.source() and "prange(" in parallel.source()


def test_calls_from_threads_match_numpy(serial, parallel):
    call_from_threads(serial, parallel, CALLS)



def test_graphs_declared_and_compiled_in_threads(serial, parallel):
    """8 threads compile at once, half of them one shared graph, half their own declarations; each kernel
    is counted once (COUNTS), and every function computes its thread's results."""
    x = gc.tensor("x", (None,), "float64")
    shared = [x], [gc.tanh(x * 2.0 + 1.0) * x]
    before = sum(COUNTS.values())

    def declared(k):
        """(function, arguments, NumPy's result): odd threads compile the shared graph, even threads
        declare their own serial or parallel one."""
        a, b, x_value = thread_inputs(k)
        chain = np.tanh(x_value * 2.0 + 1.0) * x_value
        if k % 2:
            return gc.compile(*shared, name="shared_chain"), (x_value,), chain
        if k % 4:
            return build_parallel(), (x_value,), chain
        return build_serial(), (a, b), np.tanh(a * b).sum(axis=1)

    def work(k):
        function, arguments, want = declared(k)
        for _ in range(1000):
            (got,) = function(*arguments)
            assert close(got, want), f"thread {k}: {got}"

    run_in_threads(work)
    assert sum(COUNTS.values()) - before == THREADS


# ---- the threading layer --------------------------------------------------------------------------------

def run_child(mode, layer):
    """This file run as a script in a fresh process with NUMBA_THREADING_LAYER=layer: (exit code, stdout,
    stderr). Its kernels come from the test cache that this process's fixtures filled."""
    environment = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    done = subprocess.run([sys.executable, __file__, mode], env=environment, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, done.stdout, done.stderr


def test_parallel_calls_from_threads_on_the_workqueue_layer(serial, parallel):
    """Regression: two parallel kernels started at once on Numba's workqueue layer aborted the process."""
    code, out, err = run_child("calls", "workqueue")
    assert code == 0, err[-2000:]
    assert out.split() == ["workqueue", "ok"]


def tbb_loads():
    try:
        ctypes.CDLL("libtbb.so.12")  # what Numba loads for its tbb layer
    except OSError:
        return False
    return True


@pytest.mark.skipif(tbb_loads(), reason="TBB is installed here")
def test_an_absent_layer_falls_back_with_one_warning(serial, parallel):
    """Regression: NUMBA_THREADING_LAYER=tbb without TBB made the first parallel kernel fail to compile."""
    code, out, err = run_child("calls", "tbb")
    assert code == 0, err[-2000:]
    assert out.split() == ["workqueue", "ok"]
    assert err.count("threading layer 'tbb'") == 1 and "one call at a time" in err


def run_parallel_kernel(queue):
    _, _, x = thread_inputs(3)
    try:
        (chain,) = build_parallel()(x)
        queue.put(("ok", bool(close(chain, np.tanh(x * 2.0 + 1.0) * x))))
    except GraphcError as error:
        queue.put(("refused", str(error)))


def fork_after_a_parallel_call():
    """The parallel kernel run here, then in a child forked from here: what the child reported."""
    _, _, x = thread_inputs(3)
    build_parallel()(x)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=run_parallel_kernel, args=(queue,))
    child.start()
    child.join(120)
    return child.exitcode, queue.get(timeout=10) if child.exitcode == 0 else None


def test_a_forked_child_runs_parallel_kernels(parallel):
    """Regression: a child forked after a parallel call was killed by GNU OpenMP (Numba's default layer
    when present). On graphc's layer the child computes; under omp, chosen by the user, it refuses."""
    code, report = fork_after_a_parallel_call()
    assert code == 0
    if threads.threading_layer() == "omp":
        assert report[0] == "refused" and "spawn" in report[1]
    else:
        assert report == ("ok", True)


def test_a_forked_child_refuses_clearly_on_the_omp_layer(parallel):
    code, out, err = run_child("fork", "omp")
    if out.startswith("no omp"):
        pytest.skip("Numba's omp layer doesn't load here")
    assert code == 0, err[-2000:]
    assert out.startswith("omp 0 refused") and "multiprocessing.get_context('spawn')" in out


def child_main(mode):
    if mode == "calls":
        serial, parallel = build_serial(), build_parallel()
        call_from_threads(serial, parallel, 2000)
        print(threads.threading_layer(), "ok")
    else:
        code, report = fork_after_a_parallel_call()
        layer = threads.threading_layer()
        print(layer if layer == "omp" else f"no omp ({layer})", code, *report or ())


if __name__ == "__main__":
    child_main(sys.argv[1])
