"""gc.compile: lower, run the pass pipeline, generate and compile one kernel, bind it."""
from .errors import GraphcError
from .lower import lower
from .tensor import Tensor


def compile(inputs, outputs, updates=None, disable=(), name="graph", verify=False, options=None):
    """Compile `outputs` (a list of tensors, or one tensor) as a function of `inputs`.

    updates: {input: new value}: after the call, the caller's input array holds the new value.
    disable: names of passes to skip. verify: check the graph after every pass.
    options: for the passes; {"value_changing": True} enables rewrites that may change results.
    """
    from graphc import passes
    from graphc.runtime import binder, cache, codegen
    from graphc.runtime.compile import compile_kernel, constant_arrays
    from graphc.runtime.executor import make_compiled

    single = isinstance(outputs, Tensor)
    outputs = [outputs] if single else list(outputs)
    inputs = list(inputs)
    update_pairs = _check_updates(inputs, updates or {})
    graph = lower(outputs, inputs, update_pairs, name)
    graph.options = dict(options or {})
    result = passes.run_pipeline(graph, passes.PIPELINE, disable=disable, verify=verify)
    final = result.graph
    kernel = codegen.generate(final)
    key = cache.make_key(kernel.source)
    dispatcher = compile_kernel(final, kernel, key)
    constants = constant_arrays(final, kernel)
    call, binder_source = binder.make_binder(final, kernel, dispatcher, constants, single)
    return make_compiled(call, final, result, kernel, binder_source, {"key": key})


def _check_updates(inputs, updates):
    pairs = []
    for target, value in updates.items():
        if not isinstance(target, Tensor) or all(target is not t for t in inputs):
            raise GraphcError(f"update target {target!r} must be one of the compiled function's inputs")
        if not isinstance(value, Tensor):
            from .tensor import as_tensors
            (value,) = as_tensors([value])
        if value.type != target.type:
            raise GraphcError(f"update of {target.name!r}: the new value is {value.type}, the input is {target.type} "
                              f"(at {value.loc})")
        pairs.append((target, value))
    return pairs
