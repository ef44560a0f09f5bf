"""A damaged, foreign or hostile cache: every case ends in right results (checked against NumPy) or a
clear graphc warning, never a crash, a wrong kernel or code run from the cache.

Each case copies a cache filled once (two graphs, x+y and x*y, their ahead-of-time modules built),
damages it, and runs a program in a fresh process (a truncated native module could kill it: SIGBUS).
"""
import _ctypes
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import aot, cache

PROGRAM = textwrap.dedent("""
    import json, os
    import numpy as np
    import graphc as gc
    x, y = gc.tensor("x", (3,), "float64"), gc.tensor("y", (3,), "float64")
    X, Y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    graphs = {"add": lambda: gc.sum(x + y), "mul": lambda: gc.sum(x * y)}
    runs = {}
    for name in os.environ.get("GRAPHS", "add,mul").split(","):
        build = graphs[name]
        f = gc.compile([x, y], build(), name=name)
        runs[name] = dict(f.cache_info(), value=float(f(X, Y)))
    print(json.dumps(runs))
""")
X, Y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
EXPECTED = {"add": float(np.sum(X + Y)), "mul": float(np.sum(X * Y))}
HOSTILE_MARK = "graphc-hostile-pickle-ran"


def run(folder, aot_builds=False, **env):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(folder), GRAPHC_AOT="1" if aot_builds else "0", **env)
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, f"the program died ({done.returncode}): {done.stderr[-2000:]}"
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    for name, want in EXPECTED.items():
        assert name not in env.get("GRAPHS", "add,mul") or runs[name]["value"] == pytest.approx(want, rel=1e-15), (name, runs[name])
    return runs, done.stderr


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A cache holding both graphs: entries, kernel sources, Numba's cache; the ahead-of-time module of
    x+y (one build: they take seconds)."""
    folder = tmp_path_factory.mktemp("pristine") / "cache"
    runs, _ = run(folder, aot_builds=True)
    keys = {name: r["key"] for name, r in runs.items()}
    os.unlink(folder / f"graphc_{keys['mul']}.building")
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(folder))
    subprocess.run([sys.executable, "-c", "from graphc.runtime import aot; aot.wait_for_builds()"], env=env, check=True)
    warm, _ = run(folder, GRAPHS="add")
    assert warm["add"]["kernel"] == "ahead-of-time module", warm
    return folder, keys


def files(folder, key):
    """The cache files of one graph, by role (its ahead-of-time module, or an unrelated extension module
    for the graph that has none)."""
    names = os.listdir(folder)
    numba = os.listdir(folder / "__pycache__")
    return {"entry": folder / f"graphc_{key}.json", "source": folder / f"graphc_{key}.py",
            "aot": folder / next((n for n in names if n.startswith(f"graphc_aot_{key}.")), "an-unrelated-extension.so"),
            "index": folder / "__pycache__" / next(n for n in numba if n.startswith(f"graphc_{key}.") and n.endswith(".nbi")),
            "data": folder / "__pycache__" / next(n for n in numba if n.startswith(f"graphc_{key}.") and n.endswith(".nbc"))}


def truncate(path, other):
    """The first quarter (half an ahead-of-time module still loaded; a quarter killed the process: SIGBUS)."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 4])


def garble(path, other):
    path.write_bytes(random.Random(0).randbytes(max(64, path.stat().st_size)))


def swap_in(path, other):
    """The other graph's file of the same role, under this graph's name."""
    shutil.copyfile(other, path)


def hostile_pickle(path, other):
    """A valid pickle that would create a marker file when unpickled."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {path.parent / HOSTILE_MARK}",))
    path.write_bytes(pickle.dumps(Payload()) * 2)


def foreign_owner(path, other):
    os.chown(path, 65534, 65534)


def others_can_write(path, other):
    os.chmod(path, 0o666)


# name: (the damaged file's role, the damage, what the reason or the warning says)
CASES = {
    "entry truncated": ("entry", truncate, "the cache entry was unusable (not JSON"),
    "entry of the other graph": ("entry", swap_in, "the cache entry was unusable (it belongs to another graph"),
    "entry writable by others": ("entry", others_can_write, "the cache entry was refused"),
    "kernel source of the other graph": ("source", swap_in, None),
    "kernel source garbled": ("source", garble, None),
    "ahead-of-time module truncated": ("aot", truncate, "differ from the build's recorded digest"),
    "ahead-of-time module swapped for another": ("aot", swap_in, "differ from the build's recorded digest"),
    "ahead-of-time module owned by another user": ("aot", foreign_owner, "not loading the ahead-of-time module"),
    "Numba's index truncated": ("index", truncate, "removing Numba's cache"),
    "Numba's data garbled": ("data", garble, "removing Numba's cache"),
    "Numba's data of the other graph": ("data", swap_in, "is not the file its entry records"),
    "Numba's index a hostile pickle": ("index", hostile_pickle, "is not the file its entry records"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_entry_is_a_miss_or_is_repaired(pristine, tmp_path, case):
    source, keys = pristine
    folder = tmp_path / "cache"
    shutil.copytree(source, folder, symlinks=True)
    role, damage, expected = CASES[case]
    mine, theirs = files(folder, keys["add"]), files(folder, keys["mul"])
    if role in ("source", "index", "data"):  # Numba's path: without the ahead-of-time module
        mine["aot"].unlink()
    if role == "aot" and not theirs["aot"].exists():
        shutil.copyfile(_ctypes.__file__, theirs["aot"])
    damage(mine[role], theirs[role])
    runs, stderr = run(folder)
    add = runs["add"]
    if role == "entry":
        assert add["status"] == "miss" and add["reason"].startswith(expected), add
        assert f"recompiling add: {expected}" in stderr
        assert json.loads(mine["entry"].read_text())["key"] == keys["add"]  # rebuilt, replaced
        assert os.stat(mine["entry"]).st_uid == os.getuid() and not os.stat(mine["entry"]).st_mode & 0o022
    else:
        assert add["status"] == "hit" and add["kernel"] != "ahead-of-time module", add
        if expected:
            assert expected in stderr
    assert runs["mul"]["status"] == "hit"
    assert not (folder / "__pycache__" / HOSTILE_MARK).exists()
    if role == "source":
        assert mine["source"].read_bytes() != theirs["source"].read_bytes()  # rewritten from the entry


def test_a_damaged_types_record_only_changes_the_reason(pristine, tmp_path):
    source, keys = pristine
    folder = tmp_path / "cache"
    shutil.copytree(source, folder, symlinks=True)
    for last in folder.glob("graphc_*.last"):
        garble(last, None)
    files(folder, keys["add"])["entry"].unlink()
    runs, _ = run(folder, GRAPHS="add")
    assert runs["add"]["reason"] == cache.FIRST_COMPILE


@pytest.mark.parametrize("problem", ["writable by others", "owned by another user", "a file", "not creatable"])
def test_an_unusable_folder_compiles_uncached_with_one_warning(pristine, tmp_path, problem):
    source, keys = pristine
    folder = tmp_path / "cache"
    shutil.copytree(source, folder, symlinks=True)
    if problem == "writable by others":
        os.chmod(folder, 0o777)
        hostile_pickle(files(folder, keys["add"])["index"], None)
    elif problem == "owned by another user":
        os.chown(folder, 65534, 65534)
    elif problem == "a file":
        shutil.rmtree(folder)
        folder.write_text("not a folder")
    else:
        folder = "/proc/graphc-cache"  # no one can create a folder there, root included
    runs, stderr = run(folder, GRAPHS="add,mul" if problem == "writable by others" else "add")  # once for two compiles
    assert stderr.count(f"graphc: not using the cache folder {folder}") == 1, stderr
    assert all(r["status"] == "miss" and r["folder"] != str(folder) for r in runs.values()), runs
    assert not (tmp_path / "cache" / "__pycache__" / HOSTILE_MARK).exists()


def test_the_folder_is_created_private(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "new" / "cache"))
    assert cache.cache_dir() == str(tmp_path / "new" / "cache")
    assert os.stat(tmp_path / "new" / "cache").st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="run as root, the test can give files to another user")
def test_read_only_folder_is_found_by_the_check_root_ignores_permissions(tmp_path, monkeypatch):
    """Root writes into a read-only folder anyway (EACCES never comes), so the check is shown through
    os.access's answer for an ordinary user, and a failing write is shown through write_atomic."""
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o500)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(folder) else real_access(p, mode))
    assert cache.folder_problem(str(folder)) == "it is read-only"


def test_a_write_that_fails_turns_caching_off_once(tmp_path, monkeypatch, caplog):
    import graphc as gc
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "_refused", set())
    monkeypatch.setattr(cache, "_warned", set())

    write_atomic = cache.write_atomic

    def read_only(target, data):
        if target.startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied", target)
        write_atomic(target, data)
    monkeypatch.setattr(cache, "write_atomic", read_only)
    v = gc.tensor("v", (None,), "float64")
    with caplog.at_level(logging.WARNING, logger="graphc"):
        functions = [gc.compile([v], gc.sum(v * 2.0), name="ro") for _ in range(2)]
    assert [float(f(np.ones(4))) for f in functions] == [8.0, 8.0]
    assert caplog.text.count(f"not using the cache folder {tmp_path}") == 1
    assert all(f.cache_info()["folder"] != str(tmp_path) for f in functions)


# ---- the background builder ------------------------------------------------------------------------

def sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_a_reused_pid_is_never_reniced_nor_waited_for(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    unrelated = sleeper()
    try:
        (tmp_path / aot.BUILDER_LOCK).write_text(str(unrelated.pid))  # the old lock format: a bare pid
        named = dict(aot.identity(unrelated.pid) or {"pid": unrelated.pid, "cmdline": "?"})
        named["start"] = named.get("start", 0) + 1  # the same pid, another process
        (tmp_path / (aot.BUILDER_LOCK + ".holder")).write_text(json.dumps(named))
        policy, nice = os.sched_getscheduler(unrelated.pid), os.getpriority(os.PRIO_PROCESS, unrelated.pid)
        start = time.perf_counter()
        aot.wait_for_builds(timeout=20)
        assert time.perf_counter() - start < 5  # not waited for
        assert (os.sched_getscheduler(unrelated.pid), os.getpriority(os.PRIO_PROCESS, unrelated.pid)) == (policy, nice)
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_failed_spawn_is_one_logged_line(tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_AOT", "1")
    (tmp_path / "graphc_0.building").touch()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    with caplog.at_level(logging.WARNING, logger="graphc"):
        aot.start_builder()
    assert "could not start the ahead-of-time builder: FileNotFoundError" in caplog.text
    assert "Traceback" not in capfd.readouterr().err
    lock = aot._claim_builder()  # released
    assert lock is not None
    os.close(lock)


def children_of_this_process():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.append((int(pid), fields[0]))
    return found


def test_a_builder_killed_mid_build_leaves_nothing_behind(pristine, tmp_path, monkeypatch):
    """Killed while building: the next builder removes its temporary folder and works through the queue,
    and no process is left over (every builder this process started is reaped). The next builder is
    given a kernel that fails at once (a second real build would take seconds)."""
    source, keys = pristine
    folder = tmp_path / "cache"
    shutil.copytree(source, folder, symlinks=True)
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(folder))
    monkeypatch.setenv("GRAPHC_AOT", "1")
    files(folder, keys["add"])["aot"].unlink()
    queued = folder / f"graphc_{keys['add']}.building"
    queued.touch()
    aot.start_builder()
    deadline = time.time() + 120
    while not list(folder.glob(".aot-*")) and time.time() < deadline:
        time.sleep(0.02)
    builder = aot._children[-1]
    os.killpg(builder.pid, signal.SIGKILL)  # the builder and the compiler it runs
    builder.wait()
    assert list(folder.glob(".aot-*")) and queued.exists()  # what the killed build left
    queued.unlink()
    (folder / "graphc_0.building").touch()  # no such kernel: its build fails at once
    aot.wait_for_builds(timeout=120)
    assert not list(folder.glob(".aot-*")) and not list(folder.glob("*.building"))
    assert "could not build graphc_aot_0" in (folder / "graphc_aot_builder.log").read_text()
    assert children_of_this_process() == []


def test_an_error_inside_numbas_cache_loader_compiles_without_that_cache(monkeypatch, caplog):
    """Files that change between graphc's digest check and Numba's read (or a bug of Numba's loader)
    make Numba's cache raise: the kernel compiles without it, with a warning."""
    import numba.core.caching

    def broken(*args, **kwargs):
        raise EOFError("truncated index")
    monkeypatch.setattr(numba.core.caching.Cache, "load_overload", broken)
    x = gc.tensor("x", (3,), "float64")
    with caplog.at_level("WARNING", logger="graphc"):
        f = gc.compile([x], gc.sum(x * 3.25 - 1.0), name="loader_fault")
    assert float(f(np.arange(3.0))) == pytest.approx(3 * 3.25 - 3.0)
    assert any("failed to load (EOFError: truncated index)" in r.getMessage() for r in caplog.records)
