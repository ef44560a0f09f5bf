"""gc.compile: lower, run the pass pipeline, generate and compile the kernel, bind it (gc.shared values too)."""
from .errors import DTypeError, GraphcError, ShapeError
from .loc import user_location
from .lower import lower, tensor_list
from .tensor import Tensor


def compile(inputs, outputs, updates=None, disable=(), name="graph", verify=False, options=None, check_finite=False,
            cast="no"):
    """Compile `outputs` (a list of tensors, or one tensor) as a function of `inputs`.

    updates: {target: new value}, target an input or a gc.shared value: after the call it holds the
    new value (an input's array is written in place). Updates are simultaneous: every new value is
    computed from the values before the call.
    gc.shared values the outputs or updates use are not inputs: the function reads and writes them
    itself (f.shared lists them).
    disable: names of passes to skip. verify: check the graph after every pass.
    options: for the passes; {"value_changing": True} enables rewrites that may change results.
    check_finite: the kernel checks every float value it computes (fused loops step by step) and
    raises gc.RunError naming the first node that produced a NaN or Inf (op, type, forward or
    backward, the user's line); the caller's arrays are left as they were. Off by default (it costs
    a pass over every intermediate; loops run serially).
    cast: an array of another dtype than its input's is refused ("no", the default, with the fix in
    the message), or converted when NumPy casts it "safe"ly (int32 to float64) or within its kind
    ("same_kind": float64 data into a float32 input). An input updated in place is never converted.
    """
    from graphc.runtime.binder import CASTS
    disable, options = _check_settings(name, disable, options, verify=verify, check_finite=check_finite)
    if cast not in CASTS:
        raise GraphcError(f"gc.compile cast must be one of {', '.join(map(repr, CASTS))}, got {cast!r} "
                          f"(at {user_location()})")
    graph, shared, single = declare(inputs, outputs, updates, name)
    graph.options = dict(options, check_finite=True) if check_finite else options
    settings = {"disable": list(disable), "options": options, "check_finite": check_finite, "cast": cast,
                "verify": verify, "single": single}
    return compile_graph(graph, shared, settings)


def declare(inputs, outputs, updates=None, name="graph"):
    """(the lowered graph, the gc.shared tensors it reads, whether `outputs` was one tensor): the graph's
    inputs are `inputs`, then the shared tensors the outputs and updates use, in order of appearance."""
    from .shared import Shared, reachable_shared
    single = isinstance(outputs, Tensor)
    outputs, inputs = tensor_list(outputs, "gc.compile outputs"), tensor_list(inputs, "gc.compile inputs")
    passed = [t for t in inputs if isinstance(t, Shared)]
    if passed:
        raise GraphcError(f"gc.compile inputs: {passed[0].name!r} is a gc.shared value, which the compiled "
                          f"function reads itself; leave it out of the inputs (at {user_location()})")
    updates = {} if updates is None else updates
    if not isinstance(updates, dict):
        raise GraphcError(f"gc.compile updates must be a dict {{input: new value}}, got {type(updates).__name__} "
                          f"(at {user_location()})")
    targets = [t for t in updates if isinstance(t, Shared)]
    shared = reachable_shared(outputs + [v for v in updates.values() if isinstance(v, Tensor)] + targets)
    return lower(outputs, inputs + shared, _check_updates(inputs + shared, updates), name), shared, single


def compile_graph(graph, shared, settings):
    """Compile a lowered graph whose last inputs are the `shared` tensors (gc.load's way in too)."""
    from graphc.runtime import binder, cache
    from graphc.runtime.kernel import kernel_data, kernel_from
    from graphc.runtime.compile import constant_arrays, kernel_function
    from graphc.runtime.executor import make_compiled

    disable, verify = tuple(settings["disable"]), settings["verify"]
    config = cache.compile_config(disable, graph.options)
    text = cache.canonical_text(graph)
    key = cache.make_key(text, config)
    artifact, problem = cache.load_artifact(key, kernel_from)
    if artifact is None:
        structure = cache.shape_key(text, config)
        status = {"status": "miss", "reason": problem or cache.miss_reason(structure, graph)}
        result = _run_passes(graph, disable, verify)
        final, kernel = result.graph, _generate(result.graph)
        _store(cache, key, structure, graph, final, kernel_data(kernel), status)
    else:  # a warm start: the optimized graph and the kernel come from the disk cache, no pass runs
        final, kernel = artifact["graph"], artifact["kernel"]
        result = _LazyPipeline(lambda: _run_passes(graph, disable, verify))
        status = {"status": "hit", "reason": "optimized graph and kernel source from the disk cache"}
    function, where, use = kernel_function(final, kernel, key)
    cache.record_numba_files(key)  # what Numba wrote for the kernel, checked before Numba next reads it
    status.update(key=key, kernel=where, folder=cache.cache_dir(), library_kernels=len(kernel.library),
                  library=use or {"compiled": 0, "loaded": 0, "reused": 0})
    constants = constant_arrays(final, kernel)
    call, binder_source = binder.make_binder(final, kernel, function, constants, settings["single"],
                                             [s.get_value(copy=False) for s in shared], settings["cast"])
    compiled = make_compiled(call, final, result, kernel, binder_source, status)
    compiled._declaration = (graph, list(shared), settings)
    return compiled


def _run_passes(graph, disable, verify):
    from graphc import passes  # imported on a miss only: a warm start needs none of the passes
    return passes.run_pipeline(graph, passes.PIPELINE, disable=disable, verify=verify)


def _generate(final):
    from graphc.runtime import codegen
    return codegen.generate(final)


def _store(cache, key, structure, graph, final, kernel, status):
    """Write the compile's results to the disk cache; a recompile of a known graph is logged with its reason."""
    import logging
    if status["reason"] != cache.FIRST_COMPILE:
        logging.getLogger("graphc").warning("recompiling %s: %s", graph.name, status["reason"])
    from graphc.serialize import SerializeError
    try:
        cache.store_artifact(key, final, kernel)
        cache.remember_types(structure, graph)
    except SerializeError as error:  # an attribute the entry's schema has no form for: run uncached
        status["reason"] += f" (not cached: {error})"


class _LazyPipeline:
    """The pass pipeline's snapshots and report for a cache hit, computed on first use (f.dump(after=...))."""

    def __init__(self, run):
        self._run, self._result = run, None

    def __getattr__(self, name):
        if self._result is None:
            self._result = self._run()
        return getattr(self._result, name)


def _check_settings(name, disable, options, **flags):
    """compile's other arguments: a printable name, pass names (one name alone too), an options dict,
    flags that are True or False (a string such as "no" is a mistake, not a truth value)."""
    for flag, value in flags.items():
        if not isinstance(value, bool):
            raise GraphcError(f"gc.compile {flag} must be True or False, got {value!r} (at {user_location()})")
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise GraphcError(f"gc.compile name must be a non-empty printable string, got {name!r} (at {user_location()})")
    disable = (disable,) if isinstance(disable, str) else disable
    if not isinstance(disable, (list, tuple, set, frozenset)) or not all(isinstance(p, str) for p in disable):
        raise GraphcError(f"gc.compile disable must be a list of pass names, got {disable!r} (at {user_location()})")
    if options is not None and not isinstance(options, dict):
        raise GraphcError(f"gc.compile options must be a dict, got {type(options).__name__} {options!r} "
                          f"(at {user_location()})")
    return tuple(disable), dict(options or {})


def _check_updates(inputs, updates):
    """{input: new value} as (input, value) pairs; a number or array value takes its input's dtype."""
    from .tensor import as_tensors
    pairs = []
    for target, value in updates.items():
        if not isinstance(target, Tensor) or all(target is not t for t in inputs):
            raise GraphcError(f"update target {target!r} must be one of the compiled function's inputs "
                              f"or a gc.shared value (at {user_location()})")
        if not isinstance(value, Tensor):
            try:
                value = as_tensors([value, target])[0]
            except GraphcError as error:
                raise type(error)(f"update of {target.name!r}: {error} (at {user_location()})") from None
        if value.type != target.type:
            mismatch = DTypeError if value.dtype != target.dtype else ShapeError
            raise mismatch(f"update of {target.name!r}: the new value is {value.type}, the input is {target.type} "
                              f"(at {value.loc})")
        pairs.append((target, value))
    return pairs
