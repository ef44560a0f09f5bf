"""The kernel cache: generated modules on disk under a structural key, so Numba's own cache applies."""
import hashlib
import importlib.util
import os
import pickle
import platform
import sys
import tempfile

import numba
import numpy as np

import graphc


def cache_dir():
    path = os.environ.get("GRAPHC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphc")
    os.makedirs(path, exist_ok=True)
    return path


def cpu_name():
    return f"{platform.machine()}-{numba.config.CPU_NAME or __import__('llvmlite.binding', fromlist=['x']).get_host_cpu_name()}"


def make_key(*parts):
    """A structural key: the parts given, graphc's, Numba's and NumPy's versions, and the CPU."""
    text = "\n".join(map(str, parts + (graphc.__version__, numba.__version__, np.__version__, sys.version, cpu_name())))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def write_atomic(path, data):
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def load_module(key, source):
    """Import the kernel module for `key`, writing it first when absent (kept unchanged when present)."""
    path = os.path.join(cache_dir(), f"graphc_{key}.py")
    if not os.path.exists(path) or open(path).read() != source:
        write_atomic(path, source.encode())
    name = f"graphc_kernel_{key}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def load_artifact(key):
    path = os.path.join(cache_dir(), f"graphc_{key}.pkl")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError):
        return None


def store_artifact(key, artifact):
    write_atomic(os.path.join(cache_dir(), f"graphc_{key}.pkl"), pickle.dumps(artifact))
