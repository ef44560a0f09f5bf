"""Kernels compiled ahead of time into a CPython extension module, for warm starts without Numba.

Loading a kernel from Numba's own cache still initializes Numba's compiler (its typing and target
contexts, and SciPy's BLAS bindings): about half a second. A serial kernel is therefore also built
into `graphc_aot_<key>.<ext>` with numba.pycc, and later processes import that module instead
(milliseconds; Numba itself is not imported). Its first compile queues the build; a background
process runs it when the compiling program exits, at idle priority: a build beside the program's
first calls took a core from their BLAS threads (W4's two-thread step ran ~15x slower while it
lasted, beside a merely niced builder too; measured). The module is built for this CPU with
error_model="numpy" (as the JIT-compiled kernel). Its entry point unboxes
arguments without checking their types, so the binder checks dtype, rank, layout and writability
before calling it (see binder.py). Parallel kernels (prange) cannot be built this way; they warm-start
from Numba's cache.

    python -m graphc.runtime.aot   # build every queued kernel (what the background process runs)

GRAPHC_AOT=0 turns the background builds off.
"""
import atexit
import glob
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
import time

from . import cache

STALE_LOCK_SECONDS = 600


def module_name(key):
    return f"graphc_aot_{key}"


def built_path(key):
    return extension_file(cache.cache_dir(), module_name(key))


def extension_file(folder, name):
    """The extension module `name` in folder (named with one of this Python's extension suffixes, as
    numba.pycc names its output), or None: a few stats, where a glob would list the whole folder and
    could match a .pyx or .pxd beside the module."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        target = os.path.join(folder, name + suffix)
        if os.path.exists(target):
            return target
    return None


def load(key, entry):
    """The kernel's entry point from its ahead-of-time module, or None when there is none (yet)."""
    target = built_path(key)
    if target is None:
        return None
    name = module_name(key)
    module = sys.modules.get(name)
    if module is None:
        try:
            loader = importlib.machinery.ExtensionFileLoader(name, target)
            spec = importlib.util.spec_from_file_location(name, target, loader=loader)
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
        except (ImportError, OSError):
            return None
        sys.modules[name] = module
    return getattr(module, entry, None)


def preload_blas():
    """Numba's helper library finds BLAS by importing scipy.linalg.cython_blas on the first matrix
    product; through the scipy.linalg package that import costs ~0.3 s (its __init__ loads all of
    scipy.linalg). Loading the cython_blas extension module alone takes ~0.04 s and serves the same
    lookup, so a warm start of a kernel with matrix products imports just that, and so does every
    compile before Numba's setup (which checks for BLAS with the same import)."""
    name = "scipy.linalg.cython_blas"
    if name in sys.modules:
        return
    scipy = importlib.util.find_spec("scipy")
    found = extension_file(os.path.join(os.path.dirname(scipy.origin), "linalg"), "cython_blas") if scipy else None
    if found is None:
        return
    spec = importlib.util.spec_from_file_location(name, found)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError:
        del sys.modules[name]


def enabled():
    return os.environ.get("GRAPHC_AOT", "1") != "0"


def pending_path(key):
    return cache.path(key, ".building")


BUILDER_LOCK = "graphc_aot_builder.lock"


def lock_path():
    return os.path.join(cache.cache_dir(), BUILDER_LOCK)


_start_at_exit = False


def build_in_background(key):
    """Queue `key` for an ahead-of-time build, started when this process exits (one builder per folder
    builds every queued kernel, one at a time). A kernel queued by a process that never started its
    builder (it was killed) is built after this one exits."""
    global _start_at_exit
    if built_path(key) or not enabled():
        return False
    try:
        os.close(os.open(pending_path(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        pass
    if not _start_at_exit:
        _start_at_exit = True
        atexit.register(start_builder)
    return True


def start_builder():
    """Start a builder process for the queued kernels unless one runs in the folder."""
    if not _queued() or not _claim_builder():
        return
    import subprocess  # here, not at the top: a warm start never starts a builder
    with open(os.path.join(cache.cache_dir(), "graphc_aot_builder.log"), "ab") as log:
        env = dict(os.environ, GRAPHC_CACHE_DIR=cache.cache_dir())
        builder = subprocess.Popen([sys.executable, "-m", "graphc.runtime.aot"], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    _lower_priority(builder.pid)
    _write_lock(builder.pid)


def _lower_priority(pid):
    """SCHED_IDLE: the process runs only on otherwise idle cores (Linux; elsewhere nice 19)."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.setpriority(os.PRIO_PROCESS, pid, 19)
        except (AttributeError, OSError):
            pass


def _normal_priority(pid):
    """Back to the normal policy, at nice 10: someone waits for the build (on a busy machine an idle-
    priority builder would hardly run)."""
    try:
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, pid, 10)
    except (AttributeError, OSError):
        pass


def _claim_builder():
    """True when no live builder holds the folder's lock (a stale lock, older than ten minutes, is broken).
    The lock names the builder's process id (this one until start_builder names its child)."""
    lock = lock_path()
    try:
        if time.time() - os.path.getmtime(lock) > STALE_LOCK_SECONDS:
            os.unlink(lock)
    except OSError:
        pass
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    _write_lock(os.getpid())
    return True


def _write_lock(pid):
    try:
        with open(lock_path(), "w") as f:
            f.write(str(pid))
    except OSError:
        pass


def wait_for_builds(timeout=300.0):
    """Start the queued builds now and block until none is queued or running in the cache folder, and
    the builder process has ended: its exit (Python's teardown with Numba loaded, ~0.3 s) would still
    take CPU from whatever runs next (benchmarks and tests use this). While waited for, the builder
    runs at normal priority."""
    start_builder()
    deadline = time.time() + timeout
    folder = cache.cache_dir()
    lock, builder = lock_path(), None
    while (glob.glob(os.path.join(folder, "*.building")) or os.path.exists(lock)) and time.time() < deadline:
        try:
            with open(lock) as f:
                named = int(f.read())  # empty for a moment after the lock's creation: ValueError
            if named != builder and named != os.getpid():
                builder = named
                _normal_priority(builder)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    while builder not in (None, os.getpid()) and not _ended(builder) and time.time() < deadline:
        time.sleep(0.01)


def _ended(pid):
    try:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return True  # our child, reaped now
    except ChildProcessError:
        pass  # another process's child: signal 0 only tests that it exists
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    return False


def _numpy_error_model_flags():
    """numba.pycc compiles with default flags; graphc's kernels need error_model="numpy" to vectorize."""
    from numba.core.compiler import Flags

    def flags():
        made = Flags()
        made.error_model = "numpy"
        return made
    return flags


def build(key):
    """Compile the cached kernel `key` into its extension module (atomically renamed into place)."""
    import llvmlite.binding as llvm
    import numba
    import numba.pycc.compiler
    from numba.pycc import CC

    from .compile import argument_types
    artifact = cache.load_artifact(key)
    if artifact is None:
        raise SystemExit(f"no cached kernel {key}")
    graph, kernel = artifact["graph"], artifact["kernel"]
    function = getattr(cache.load_module(key, kernel.source), kernel.name)
    dispatcher = numba.njit(argument_types(graph, kernel), cache=True, error_model="numpy")(function)
    signature = dispatcher.nopython_signatures[0]
    numba.pycc.compiler.Flags = _numpy_error_model_flags()
    folder = tempfile.mkdtemp(prefix=".aot-", dir=cache.cache_dir())
    try:
        cc = CC(module_name(key))
        cc.output_dir = folder
        cc.target_cpu = llvm.get_host_cpu_name()
        cc.export(kernel.name, signature)(function)
        cc.compile()
        os.replace(os.path.join(folder, cc.output_file), os.path.join(cache.cache_dir(), cc.output_file))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    """The builder: build queued kernels one at a time; after releasing the lock, look once more, so a
    kernel queued while the lock was being released is not left behind. Its priority is set by the
    process that starts it (start_builder) and raised by one that waits for it (wait_for_builds)."""
    while True:
        try:
            while _build_next():
                pass
        finally:
            os.unlink(lock_path())
        if not _queued() or not _claim_builder():
            return


def _queued():
    return sorted(glob.glob(os.path.join(cache.cache_dir(), "graphc_*.building")), key=os.path.getmtime)


def _build_next():
    queued = _queued()
    if not queued:
        return False
    key = os.path.basename(queued[0])[len("graphc_"):-len(".building")]
    start = time.time()
    try:
        build(key)
        print(f"built {module_name(key)} in {time.time() - start:.1f} s", flush=True)
    except Exception as error:  # noqa: BLE001  a kernel that can't be built stays JIT-only
        print(f"could not build {module_name(key)}: {type(error).__name__}: {error}", flush=True)
    finally:
        os.unlink(queued[0])
    return True


if __name__ == "__main__":
    main()
