"""The disk cache: everything a compile produced, under one key built from what the user wrote.

Key = sha256 of: the canonical text of the *lowered* graph (renumbered SSA with dtypes, ranks, sizes,
input names and updates, and each node's source location, so the cached graph's dumps and the
kernel's messages name the caller's lines) plus the bytes of its array constants; the disabled
passes and the options; a digest of graphc's own source files (so an edited graphc, its pass
pipeline included, never reads a stale entry); Numba's, NumPy's and Python's versions; the CPU (model and flags).

Per key the folder holds `graphc_<key>.json`, the entry: plain data (graphc/serialize.py), never
pickle, so reading it runs no code. It carries its full key, the optimized graph, the kernel
description and the sha256 of every module it loads: `graphc_<key>.py` (the kernel source; Numba's
own cache of the compiled kernel sits beside it in __pycache__) and, for serial kernels, the
ahead-of-time module `graphc_aot_<key>.<ext>` (runtime/aot.py records its digest when it is built).
A module is loaded only when its bytes match the entry. `graphc_<shape-key>.last` remembers the input
types a graph structure was last compiled for, so a miss can say why ("input x changed float32 ->
float64"). Every write is atomic (a temporary file renamed into place).

Trust: the folder (GRAPHC_CACHE_DIR, default ~/.cache/graphc) is created private (0700). A folder or
file owned by another user or writable by group or others is refused with one warning naming it: an
unusable folder (refused, read-only, missing, a file) makes the process compile uncached, into a
private temporary folder; a refused, damaged or foreign entry is a miss (its reason logged on the
"graphc" logger) whose rebuild replaces it.
"""
import atexit
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import stat
import sys
import tempfile
import types

import numpy as np

FORMAT = 4  # bump when the entry layout changes
log = logging.getLogger("graphc")


# ---- the folder, and whether it can be trusted -------------------------------------------------------

def configured_dir():
    return os.environ.get("GRAPHC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphc")


def cache_dir():
    """The configured folder when it is usable, else this process's private temporary folder (uncached)."""
    folder = configured_dir()
    if folder in _refused:
        return _private_folder()
    problem = folder_problem(folder, create=True)
    if problem:
        refuse_folder(folder, problem)
        return _private_folder()
    return folder


def persistent():
    """Whether compiles are cached (the configured folder is in use)."""
    return cache_dir() == configured_dir()


_refused = set()
_warned = set()


def refuse_folder(folder, problem):
    """Compile uncached for the rest of the process; one warning per folder."""
    _refused.add(folder)
    warn_once(folder, f"graphc: not using the cache folder {folder}: {problem}; compiling uncached")


def warn_once(what, message):
    if what not in _warned:
        _warned.add(what)
        log.warning(message)


def folder_problem(folder, create=False):
    """Why `folder` can't hold the cache (None when it can): created private (0700) when absent; it and its
    __pycache__ (Numba's cache) must be folders of this user, not writable by group or others, writable by us."""
    try:
        if create and not os.path.lexists(folder):
            os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.stat(folder)
    except OSError as error:
        return f"{type(error).__name__}: {error.strerror or error}"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    problem = _owner_problem(info, "folder")
    if problem is None and not os.access(folder, os.W_OK | os.X_OK):
        problem = "it is read-only"
    numba_folder = os.path.join(folder, "__pycache__")
    if problem is None and os.path.isdir(numba_folder):
        problem = _owner_problem(os.stat(numba_folder), "__pycache__ folder in it")
    return problem


def _owner_problem(info, what):
    """Why a file or folder with this stat may have been written by someone else (None when it can't)."""
    if info.st_uid != os.getuid():
        return f"the {what} is owned by user {info.st_uid}, not by you ({os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"the {what} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


_fallback = []


def _private_folder():
    if not _fallback:
        _fallback.append(tempfile.mkdtemp(prefix="graphc-uncached-"))
        atexit.register(shutil.rmtree, _fallback[0], True)
    return _fallback[0]


class Untrusted(Exception):
    """A cache file that may have been written by someone else: not read."""


def read_trusted(target):
    """The bytes of a regular file of this user that group and others can't write; Untrusted otherwise
    (checked on the open file, so a file swapped in after the check is not read)."""
    with open(target, "rb") as f:
        info = os.fstat(f.fileno())
        problem = _owner_problem(info, "file") or (None if stat.S_ISREG(info.st_mode) else "not a regular file")
        if problem:
            raise Untrusted(f"{target}: {problem}")
        return f.read()


def sha256(data):
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# ---- the key -----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def source_digest():
    """A digest of graphc's own Python sources: any edit to graphc invalidates the cache. The packages
    are found, not imported (a warm start never imports the passes)."""
    import importlib.util

    import graphc
    digest = hashlib.sha256()
    for package in ("graphc", "graphc.passes", "graphc.runtime"):
        folder = os.path.dirname(importlib.util.find_spec(package).origin)
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(f for f in files if f.endswith(".py")):
                with open(os.path.join(root, name), "rb") as f:
                    digest.update(name.encode() + f.read())
    return f"{graphc.__version__}+{digest.hexdigest()[:16]}"


@functools.lru_cache(maxsize=None)
def environment():
    """Versions and CPU, read without importing Numba (a warm start may never need it)."""
    return (f"numba {importlib.metadata.version('numba')}, numpy {np.__version__}, python {sys.version.split()[0]}, "
            f"{platform.machine()} {cpu_description()}")


def cpu_description():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor()
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    flag_hash = hashlib.sha256(flags.group(1).encode()).hexdigest()[:12] if flags else ""
    return f"{model.group(1) if model else '?'} [{flag_hash}]"


def canonical_text(graph):
    """The lowered graph as text with its source locations, plus the bytes of every array constant.

    Locations are part of the key: the cached optimized graph carries them into dumps and kernel
    error messages, which must name the lines of the program that is running now."""
    from graphc.printer import format_graph
    parts = [format_graph(graph, show_loc=True)]
    for node in graph.order():
        if graph.op(node) == "gate":  # its dump names it only: the body and rules are part of the key
            from graphc.serialize import _Writer
            parts.append(f"%{node} {json.dumps(_Writer().value(graph.attrs(node)['body']), sort_keys=True)} "
                         f"{json.dumps(_Writer().value(graph.attrs(node)['grads']), sort_keys=True)}")
        value = graph.attrs(node).get("value") if graph.op(node) == "constant" else None
        if isinstance(value, np.ndarray):
            parts.append(f"%{node} {value.dtype} {value.shape} {hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}")
    return "\n".join(parts)


def compile_config(disable, options):
    """The compile's settings. The pass pipeline is graphc source (passes/__init__.py), which the
    digest covers, so a warm start need not import the passes to name them."""
    return f"disable {sorted(disable)} options {sorted(options.items())} format {FORMAT} graphc {source_digest()}"


def make_key(*parts):
    """The full sha256 (hex): file names carry all of it and so does the entry, which is checked against it."""
    return sha256("\n".join(map(str, parts + (environment(),))))


def path(key, suffix):
    return os.path.join(cache_dir(), f"graphc_{key}{suffix}")


def write_atomic(target, data):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".tmp-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_or_refuse(target, data):
    """Write a cache file; a folder that can't be written is refused (the process then runs uncached)."""
    try:
        write_atomic(target, data)
        return True
    except OSError as error:
        refuse_folder(os.path.dirname(target), f"can't write {os.path.basename(target)}: {error.strerror or error}")
        return False


# ---- entries -----------------------------------------------------------------------------------------

_entries = {}  # key -> the entry (plain data) read or written by this process: aot.py reads its digests


class BadEntry(Exception):
    """An entry that can't be used: the miss's reason."""


def load_artifact(key, kernel_from):
    """(artifact, None) on a hit; (None, why) when the entry is unusable (why says so); (None, None) when
    there is none. The artifact holds "graph" (the optimized Graph) and "kernel": kernel_from(data, graph),
    given the entry's kernel data once its source matched the recorded digest (it raises BadEntry,
    TypeError or KeyError for data it can't use)."""
    if not persistent():
        return None, None
    target = path(key, ".json")
    try:
        entry = _parse_entry(key, read_trusted(target))
        graph = _graph_from(entry)
        if not isinstance(entry["kernel"]["source"], str) or sha256(entry["kernel"]["source"]) != entry["modules"]["source"]:
            raise BadEntry("the kernel source does not match its recorded digest")
        artifact = {"graph": graph, "kernel": kernel_from(entry["kernel"], graph)}
    except (TypeError, AttributeError, KeyError) as error:  # a field of the wrong kind
        return None, f"the cache entry was unusable (malformed: {type(error).__name__})"
    except FileNotFoundError:
        return None, None
    except Untrusted as error:
        warn_once(target, f"graphc: not loading {error}")
        return None, f"the cache entry was refused ({error})"
    except (OSError, BadEntry) as error:
        return None, f"the cache entry was unusable ({error})"
    _entries[key] = entry
    return artifact, None


def _parse_entry(key, data):
    try:
        entry = json.loads(data)
    except (ValueError, RecursionError, MemoryError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadEntry(f"not JSON: {type(error).__name__}") from None
    if not isinstance(entry, dict):
        raise BadEntry("not an entry")
    if entry.get("format") != FORMAT:
        raise BadEntry(f"format {entry.get('format')!r}, this graphc reads {FORMAT}")
    if entry.get("key") != key:
        raise BadEntry(f"it belongs to another graph (key {str(entry.get('key'))[:24]}...)")
    return entry


def _graph_from(entry):
    from graphc.serialize import SerializeError, graph_from_json
    try:
        return graph_from_json(entry["graph"])
    except SerializeError as error:
        raise BadEntry(f"graph: {error}") from None


def store_artifact(key, graph, kernel_data):
    """Write the entry for `key`: the optimized graph and the kernel as plain data (runtime/kernel.py),
    its "source" digest recorded. Raises graphc.serialize.SerializeError for a graph the schema can't hold."""
    from graphc.serialize import graph_to_json
    entry = {"format": FORMAT, "key": key, "graph": graph_to_json(graph), "kernel": kernel_data,
             "modules": {"source": sha256(kernel_data["source"])}}
    _entries[key] = entry
    if persistent():
        write_or_refuse(path(key, ".json"), json.dumps(entry).encode())


def recorded(key, module):
    """The digest record of `module` ("source", or "aot": {"file", "sha256"}) in the entry this process
    read or wrote for `key`, or None."""
    return _entries.get(key, {}).get("modules", {}).get(module)


def recorded_on_disk(key, module):
    """As `recorded`, read from the entry on disk now (another process, the builder, may have added it)."""
    try:
        return _parse_entry(key, read_trusted(path(key, ".json"))).get("modules", {}).get(module)
    except (OSError, Untrusted, BadEntry):
        return None


def record_module(key, module, record):
    """Add a module's digest record to the entry on disk (the ahead-of-time builder does, once built)."""
    target = path(key, ".json")
    entry = _parse_entry(key, read_trusted(target))
    entry.setdefault("modules", {})[module] = record
    write_atomic(target, json.dumps(entry).encode())
    _entries[key] = entry


def library_entry(key, source):
    """Make sure a library kernel (runtime/library.py) has its entry, where its Numba files' digests are
    recorded: read when it is its source's, else written afresh (its Numba files are then unrecorded,
    so removed before use, and compiled again)."""
    if key in _entries or not persistent():
        return
    target = path(key, ".json")
    try:
        entry = _parse_entry(key, read_trusted(target))
        if entry["modules"]["source"] != sha256(source):
            raise BadEntry("its source differs")
    except (OSError, Untrusted, BadEntry, KeyError, TypeError):
        entry = {"format": FORMAT, "key": key, "modules": {"source": sha256(source)}}
        write_or_refuse(target, json.dumps(entry).encode())
    _entries[key] = entry


# ---- the kernel module -------------------------------------------------------------------------------

def write_module(key, source):
    """The kernel source as a module file (rewritten when its bytes differ from the source or it may be
    someone else's): Numba's cache is keyed by this file, and users read it."""
    target = path(key, ".py")
    try:
        if read_trusted(target) == source.encode():
            return target
    except (OSError, Untrusted):
        pass
    if not write_or_refuse(target, source.encode()):
        target = path(key, ".py")  # the folder was refused: into the private one
        write_atomic(target, source.encode())
    return target


def load_module(key, source):
    """The kernel module for `key`, once per process. Its code is compiled from `source` (the entry's text,
    whose digest was checked), never from the file or a .pyc beside it; Numba's cache files for it that
    differ from the entry's record are removed first (Numba then compiles afresh rather than failing)."""
    name = f"graphc_kernel_{key}"
    if name in sys.modules:
        return sys.modules[name]
    target = write_module(key, source)
    _discard_unrecorded_numba_files(key)
    module = types.ModuleType(name)
    module.__file__ = target
    exec(compile(source, target, "exec"), module.__dict__)  # noqa: S102  the entry's own, verified source
    sys.modules[name] = module
    _numba_keys.add(key)
    return module


# ---- Numba's cache files -----------------------------------------------------------------------------
# Numba loads its index (.nbi) and data (.nbc) with pickle, and a data file swapped in from another
# kernel fails, or runs that kernel when its module is loaded. So the entry records the sha256 of the
# kernel's Numba files once Numba has written them (record_numba_files, after the compile), and before
# Numba reads them again any that differ from the record (damaged, foreign, or never recorded because
# the writer was killed) are removed: Numba then compiles afresh.

_numba_keys = set()  # kernels whose module this process loaded, whose Numba files are to be recorded


def numba_cache_folders(module_file):
    """Where Numba keeps the cache of a module's functions: NUMBA_CACHE_DIR's subfolder for it when set,
    else __pycache__ beside the module."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        try:
            from numba.core.caching import _CacheLocator
            return [os.path.join(os.environ["NUMBA_CACHE_DIR"], _CacheLocator.get_suitable_cache_subpath(module_file))]
        except (ImportError, AttributeError):
            return []
    return [os.path.join(os.path.dirname(module_file), "__pycache__")]


def _numba_files(key):
    """{path: sha256} of the kernel's Numba cache files (Untrusted or OSError when one can't be read)."""
    found = {}
    for folder in numba_cache_folders(path(key, ".py")):
        for name in listdir(folder):
            if name.startswith(f"graphc_{key}.") and name.endswith((".nbi", ".nbc")):
                found[os.path.join(folder, name)] = sha256(read_trusted(os.path.join(folder, name)))
    return found


def _discard_unrecorded_numba_files(key):
    """Remove the kernel's Numba files unless each is the one the entry records."""
    record = recorded(key, "numba") or {}
    try:
        problem = next((f"{os.path.basename(p)} is not the file its entry records" for p, digest in _numba_files(key).items()
                        if record.get(os.path.basename(p)) != digest), None)
    except (OSError, Untrusted) as error:
        problem = str(error)
    if problem:
        (log.warning if record else log.info)("graphc: removing Numba's cache of kernel %s: %s", key, problem)
        remove_numba_files(key)


def remove_numba_files(key):
    """Delete the kernel's files in Numba's cache (they are rebuilt by the next compile)."""
    for folder in numba_cache_folders(path(key, ".py")):
        for name in listdir(folder):
            if name.startswith(f"graphc_{key}."):
                _unlink(os.path.join(folder, name))


def record_numba_files(key):
    """Record the digests of the kernel's Numba files in its entry, when this process loaded the kernel
    module and they changed (Numba wrote them): a no-op on an ahead-of-time warm start."""
    if key not in _numba_keys or not persistent():
        return
    try:
        found = {os.path.basename(p): digest for p, digest in _numba_files(key).items()}
        if found != recorded(key, "numba"):
            record_module(key, "numba", found)
    except (OSError, Untrusted, BadEntry):
        pass  # unrecorded files are removed before their next use


def listdir(folder):
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _unlink(target):
    try:
        os.unlink(target)
    except OSError:
        pass


# ---- why a miss happened -----------------------------------------------------------------------------

FIRST_COMPILE = "first compile of this graph"


def shape_key(text, config):
    """The key of a graph's structure (its canonical text) without its input dtypes: the same model at
    another dtype."""
    return make_key("structure", re.sub(r"\b(f32|f64|i32|i64|bool)\[", "T[", text), config)


def input_types(graph):
    return {graph.attrs(n)["name"]: graph.type(n).dtype for n in graph.inputs}


def miss_reason(structure, graph):
    """Why this graph (of shape_key `structure`) is not in the cache: new, or which input types changed
    since the last compile."""
    last = _last_types(structure)
    if last is None:
        return FIRST_COMPILE
    now = input_types(graph)
    changes = [f"input {name} changed {last[name]} -> {dtype}" for name, dtype in now.items()
               if last.get(name, dtype) != dtype]
    return "; ".join(changes) or "first compile with these options or this graphc/Numba version"


def _last_types(structure):
    """The input types recorded for this structure, or None (none, or a record that can't be read)."""
    if not persistent():
        return None
    try:
        record = json.loads(read_trusted(path(structure, ".last")))
        types_ = record["types"] if record.get("key") == structure else None
        return types_ if isinstance(types_, dict) and all(isinstance(v, str) for v in types_.values()) else None
    except (OSError, Untrusted, ValueError, RecursionError, MemoryError, AttributeError, KeyError, TypeError):
        return None


def remember_types(structure, graph):
    if persistent():
        record = {"format": FORMAT, "key": structure, "types": input_types(graph)}
        write_or_refuse(path(structure, ".last"), json.dumps(record).encode())
