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

The builder records the module's sha256 in the kernel's cache entry; a module is loaded only when its
bytes match (a truncated one would crash the process when mapped: SIGBUS). One builder per folder:
it holds an flock on `graphc_aot_builder.lock` (released by the kernel when the builder dies, so a
killed builder leaves no stale lock) and names itself by process id, start time and command
line (in `graphc_aot_builder.lock.holder`), so a process that merely reuses its id is never reniced
nor waited for. A builder killed mid-build leaves its temporary folder (.aot-*), which the next
builder removes; its kernel stays queued and is built next. The builders a process starts are
reaped (wait_for_builds waits for them), never left as zombies. With an unusable cache folder
(runtime/cache.py) nothing is queued.
"""
import atexit
import fcntl
import functools
import glob
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time

from . import cache

BUILDER_LOCK = "graphc_aot_builder.lock"
STALE_TEMP_SECONDS = 600  # a write_atomic temporary file this old belongs to a killed process


def module_name(key):
    return f"graphc_aot_{key}"


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
    """The kernel's entry point from its ahead-of-time module, or None when there is none (yet) or its
    bytes don't match the digest its build recorded in the cache entry (it is then built again)."""
    name = module_name(key)
    module = sys.modules.get(name)
    if module is None:
        target = _verified_module(key)
        if target is None:
            return None
        try:
            loader = importlib.machinery.ExtensionFileLoader(name, target)
            spec = importlib.util.spec_from_file_location(name, target, loader=loader)
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
        except (ImportError, OSError):
            return None
        sys.modules[name] = module
    return getattr(module, entry, None)


def _verified_module(key):
    """The module's path when the entry records it and its bytes match the recorded sha256."""
    record = cache.recorded(key, "aot")
    suffixes = [module_name(key) + suffix for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    if not isinstance(record, dict) or record.get("file") not in suffixes:
        return None
    target = os.path.join(cache.cache_dir(), record["file"])
    try:
        data = cache.read_trusted(target)
    except FileNotFoundError:
        return None
    except (OSError, cache.Untrusted) as error:
        cache.log.warning("graphc: not loading the ahead-of-time module %s: %s", target, error)
        return None
    if cache.sha256(data) != record.get("sha256"):
        cache.log.warning("graphc: not loading the ahead-of-time module %s: its bytes differ from the build's "
                          "recorded digest (it is built again)", target)
        return None
    return target


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
    return os.environ.get("GRAPHC_AOT", "1") != "0" and cache.persistent()


def pending_path(key):
    return cache.path(key, ".building")


def lock_path():
    return os.path.join(cache.cache_dir(), BUILDER_LOCK)


_start_at_exit = False
_children = []  # builders this process started: reaped, never left as zombies


QUEUE_PER_PROCESS = 8  # builds one process may queue: a script of ~80 graphs left a builder running 4 minutes
_queued_here = []


def build_in_background(key):
    """Queue `key` for an ahead-of-time build, started when this process exits (one builder per folder
    builds every queued kernel, one at a time). A kernel queued by a process that never started its
    builder (it was killed) is built after this one exits. A process queues at most QUEUE_PER_PROCESS
    (the others warm-start from Numba's cache); with no numba.pycc (pending deprecation in Numba)
    nothing is queued, and the reason is logged once."""
    global _start_at_exit
    if not enabled() or not _pycc_available() or len(_queued_here) >= QUEUE_PER_PROCESS:
        return False
    try:
        os.close(os.open(pending_path(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return False
    _queued_here.append(key)
    if not _start_at_exit:
        _start_at_exit = True
        atexit.register(start_builder)
    return True


@functools.lru_cache(maxsize=None)
def _pycc_available():
    if importlib.util.find_spec("numba.pycc") is not None:
        return True
    cache.log.info("graphc: numba.pycc is not available in this Numba: kernels warm-start from Numba's cache "
                   "(no ahead-of-time modules)")
    return False


def start_builder():
    """Start a builder process for the queued kernels unless one runs in the folder. The builder inherits
    the claimed lock (an flock, held until it exits); a spawn that fails is one logged line."""
    _reap()
    if not enabled() or not _queued():
        return
    lock = _claim_builder()
    if lock is None:
        return
    try:
        import subprocess  # here, not at the top: a warm start never starts a builder
        with open(os.path.join(cache.cache_dir(), "graphc_aot_builder.log"), "ab") as log:
            env = dict(os.environ, GRAPHC_CACHE_DIR=cache.cache_dir())
            builder = subprocess.Popen([sys.executable, "-m", "graphc.runtime.aot", "--lock-fd", str(lock)],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True, pass_fds=(lock,))
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        cache.log.warning("graphc: could not start the ahead-of-time builder: %s: %s", type(error).__name__, error)
        return
    finally:
        os.close(lock)  # the builder holds the lock now (or nobody does)
    _children.append(builder)
    _lower_priority(builder.pid)  # our own child, not yet reaped: its pid can't name another process


def _reap():
    _children[:] = [child for child in _children if child.poll() is None]


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


# ---- the builder lock and the builder's identity ------------------------------------------------------

def _claim_builder():
    """The lock's file descriptor, flocked, when no builder holds it (else None). Holding it means no
    builder runs, so what a killed builder left behind is removed now."""
    try:
        fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    _remove_leftovers()
    return fd


def _remove_leftovers():
    folder = cache.cache_dir()
    for temp in glob.glob(os.path.join(folder, ".aot-*")):
        shutil.rmtree(temp, ignore_errors=True)
    for temp in glob.glob(os.path.join(folder, ".tmp-*")):
        try:
            if time.time() - os.path.getmtime(temp) > STALE_TEMP_SECONDS:
                os.unlink(temp)
        except OSError:
            pass


def identity(pid):
    """What tells a process from a later one with the same id: its start time (in clock ticks after boot)
    and command line, from /proc; None when it is gone, a zombie, or /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace")
    except (OSError, IndexError):
        return None
    if fields[0] == b"Z" or not cmdline:
        return None
    return {"pid": pid, "start": int(fields[19]), "cmdline": cmdline}


def _name_holder(pid):
    """Write the builder's identity into the lock file (which the builder's flock guards)."""
    named = identity(pid)
    if named is None:
        return
    try:
        cache.write_atomic(lock_path() + ".holder", json.dumps(named).encode())
    except OSError:
        pass


def _running_builder():
    """The pid of the builder the lock names, when that very process still runs (else None)."""
    try:
        with open(lock_path() + ".holder") as f:
            named = json.load(f)
        pid = named["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if isinstance(pid, int) and identity(pid) == named else None


def wait_for_builds(timeout=300.0):
    """Start the queued builds now and block until none is queued or running in the cache folder, and
    the builder process has ended: its exit (Python's teardown with Numba loaded, ~0.3 s) would still
    take CPU from whatever runs next (benchmarks and tests use this). While waited for, the builder
    runs at normal priority. Only a process whose identity the lock records is reniced or waited for."""
    start_builder()
    deadline = time.time() + timeout
    raised = None
    while time.time() < deadline:
        builder = _running_builder()
        if builder is None and not _queued():
            break
        if builder is None:
            start_builder()  # queued by a builder's last moments, or by a killed one
        elif builder != raised:
            raised = builder
            _normal_priority(builder)
        time.sleep(0.05)
    for child in _children:
        try:
            child.wait(max(0.0, deadline - time.time()))
        except Exception:  # noqa: BLE001  subprocess.TimeoutExpired: left running, reaped later
            pass
    _reap()


def _numpy_error_model_flags():
    """numba.pycc compiles with default flags; graphc's kernels need error_model="numpy" to vectorize."""
    from numba.core.compiler import Flags

    def flags():
        made = Flags()
        made.error_model = "numpy"
        return made
    return flags


def build(key):
    """Compile the cached kernel `key` into its extension module (atomically renamed into place) and
    record the module's sha256 in the kernel's entry."""
    import llvmlite.binding as llvm
    import numba
    import numba.pycc.compiler
    from numba.pycc import CC

    from .compile import argument_types
    from .kernel import kernel_from
    artifact, problem = cache.load_artifact(key, kernel_from)
    if artifact is None:
        raise SystemExit(f"no usable cached kernel {key}: {problem or 'no entry'}")
    graph, kernel = artifact["graph"], artifact["kernel"]  # (loading it registered its library kernels)
    function = getattr(cache.load_module(key, kernel.source), kernel.name)
    dispatcher = numba.njit(argument_types(graph, kernel), cache=True, error_model="numpy")(function)
    for k in [key] + [k.key for k in kernel.library]:
        cache.record_numba_files(k)
    signature = dispatcher.nopython_signatures[0]
    numba.pycc.compiler.Flags = _numpy_error_model_flags()
    folder = tempfile.mkdtemp(prefix=".aot-", dir=cache.cache_dir())
    try:
        cc = CC(module_name(key))
        cc.output_dir = folder
        cc.target_cpu = llvm.get_host_cpu_name()
        cc.export(kernel.name, signature)(function)
        cc.compile()
        with open(os.path.join(folder, cc.output_file), "rb") as f:
            digest = cache.sha256(f.read())
        os.replace(os.path.join(folder, cc.output_file), os.path.join(cache.cache_dir(), cc.output_file))
        cache.record_module(key, "aot", {"file": cc.output_file, "sha256": digest})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv):
    """The builder: build queued kernels one at a time, holding the lock it was given (or claims, when run
    by hand). After releasing it, look once more, so a kernel queued meanwhile is not left behind."""
    lock = int(argv[argv.index("--lock-fd") + 1]) if "--lock-fd" in argv else _claim_builder()
    if lock is None:
        print("another builder runs in this folder", flush=True)
        return
    os.set_inheritable(lock, False)  # a compiler the build runs must not keep the lock after the builder died
    _name_holder(os.getpid())
    while True:
        while _build_next():
            pass
        os.close(lock)  # releases the flock
        lock = _claim_builder() if _queued() else None
        if lock is None:
            return


def _queued():
    return sorted(glob.glob(os.path.join(cache.cache_dir(), "graphc_*.building")), key=_mtime)


def _mtime(target):
    try:
        return os.path.getmtime(target)
    except OSError:
        return 0.0


IDLE_BELOW = 0.25     # the machine's busy share under which a build may start
IDLE_WAIT_LONGEST = 60.0  # seconds a build waits for an idle machine before it runs anyway (at idle priority)


def busy_share(interval=0.5):
    """The share of the machine's CPU time spent busy over `interval` seconds (/proc/stat), or None."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total
    try:
        idle0, total0 = sample()
        time.sleep(interval)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_until_idle(longest=IDLE_WAIT_LONGEST):
    """Wait while the machine is busy (the program started right after the one that queued the build,
    say): at idle priority the builder still shared the caches and memory bandwidth with it (W5's rerun
    ran 1.79 -> 2.91 ms a call beside a build). After `longest` seconds the build runs anyway."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        busy = busy_share()
        if busy is None or busy < IDLE_BELOW:
            return


def _build_next():
    queued = _queued()
    if not queued:
        return False
    wait_until_idle()
    queued = _queued() or queued
    key = os.path.basename(queued[0])[len("graphc_"):-len(".building")]
    start = time.time()
    try:
        build(key)
        print(f"built {module_name(key)} in {time.time() - start:.1f} s", flush=True)
    except (Exception, SystemExit) as error:  # noqa: BLE001  a kernel that can't be built stays JIT-only
        print(f"could not build {module_name(key)}: {type(error).__name__}: {error}", flush=True)
    finally:
        try:
            os.unlink(queued[0])
        except OSError:
            pass
    return True


if __name__ == "__main__":
    main(sys.argv[1:])
