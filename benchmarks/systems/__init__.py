"""One module per system. Each gives build(workload, inputs) -> Runner and threads(). This module stays
free of NumPy so that a worker can time the import of the system's library from a clean process."""
import importlib
import os
from dataclasses import dataclass, field
from typing import Callable

SYSTEMS = {"graphc": "graphc_system", "numpy": "numpy_system", "jax": "jax_system",
           "pytensor-numba": "pytensor_system", "pytensor-c": "pytensor_system"}
PEERS = ("jax", "pytensor-numba", "pytensor-c")
LIBRARY = {"graphc": "graphc", "numpy": "numpy", "jax": "jax", "pytensor-numba": "pytensor", "pytensor-c": "pytensor"}


def cache_environment(system, folder):
    """Environment variables pointing the system's on-disk caches (and Numba's) into `folder`."""
    env = {"NUMBA_CACHE_DIR": os.path.join(folder, "numba")}
    if system == "graphc":
        env["GRAPHC_CACHE_DIR"] = os.path.join(folder, "graphc")
    elif system == "jax":
        env.update(JAX_COMPILATION_CACHE_DIR=os.path.join(folder, "jax"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    elif system.startswith("pytensor"):
        env["PYTENSOR_FLAGS"] = f"base_compiledir={os.path.join(folder, 'pytensor')}"  # its Numba cache too
    return env


@dataclass
class Runner:
    fn: Callable                      # the call being timed: fn(*args)
    args: tuple
    outputs: Callable                 # raw result of fn -> list of arrays in the reference's order
    sync: Callable = field(default=lambda raw: raw)   # wait for asynchronous results (JAX)
    extra: dict = field(default_factory=dict)          # system-specific facts for the report and hooks


def load(system):
    module = importlib.import_module(f"benchmarks.systems.{SYSTEMS[system]}")
    return module.variant(system) if hasattr(module, "variant") else module
