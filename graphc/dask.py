"""graphc on a Dask cluster (`pip install -e ".[dask]"`): compiled graphs over dask arrays, and
synchronous data-parallel training. Dask does all the cluster work (scheduling, transfers, worker
deaths); graphc sends its saved graphs and arrays. The core package never imports this module.

- map_batches(f, *args, combine=None, **kwargs): f over the chunks of dask arrays, as dask arrays.
- DataParallel(loss, inputs, optimizer, **rates): each worker computes (loss, gradients) on its
  shard, the shards' results are summed by a tree (tasks on the workers, its root on the client),
  and the client applies one optimizer update (gc.optim's formulas) and broadcasts the parameters.
- prepare(client, f), configure_workers(client, cache_dir=...), worker_cache_info(client).

What travels: a graph as its saved JSON (f.to_json()), which a worker compiles or loads from its
kernel cache once and keeps (by the text's sha256) for every later chunk or step; arrays as dask data.
"""
import collections
import hashlib
import json
import logging
import math
import os
import threading
import time

import numpy as np
import dask
import dask.array as da
import distributed

from .errors import CallError, GraphcError
from .loc import user_location
from .ops import registry
from .tensor import Tensor
from .types import Dim, resolve

log = logging.getLogger("graphc")
COMBINES = ("mean", "sum", "max", "min", "chunks")
FAN_IN = 8  # partial gradient sums added per task of the reduction tree


class WorkerError(GraphcError):
    """A worker could not compile or load a graph; the message names the worker and its cache folder."""


# ---- what travels to the workers ---------------------------------------------------------------------

class SavedGraph:
    """A graph's saved JSON and its sha256, by which workers keep the function compiled from it."""

    __slots__ = ("digest", "text", "name")

    def __init__(self, text, name):
        self.text, self.name = text, name
        self.digest = hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __dask_tokenize__(self):
        return ("graphc-graph", self.digest)


_LOADED = collections.OrderedDict()  # digest -> [compiled function, times used], in this process
_LOADED_MAX = 32
_LOADING = threading.Lock()


def worker_function(graph):
    """The function compiled from `graph` in this process: loaded (compiled, or its kernel from this
    machine's cache) on first use, then kept. A failure is a WorkerError naming this worker."""
    from .saving import loads
    with _LOADING:
        held = _LOADED.get(graph.digest)
        if held is None:
            try:
                held = _LOADED[graph.digest] = [loads(graph.text), 0]
            except Exception as error:  # noqa: BLE001  the worker's reason, whatever it is, goes into the message
                from .runtime.cache import configured_dir
                raise WorkerError(f"graphc.dask: {_this_worker()} could not compile graph {graph.name!r} "
                                  f"(kernel cache {configured_dir()}): {type(error).__name__}: {error}") from None
            while len(_LOADED) > _LOADED_MAX:
                _LOADED.popitem(last=False)
        held[1] += 1
        _LOADED.move_to_end(graph.digest)
        return held[0]


def _this_worker():
    try:
        worker = distributed.get_worker()
    except ValueError:  # not in a worker: the threaded or synchronous scheduler
        return f"process {os.getpid()} (not a Dask worker)"
    return f"worker {worker.address} (name {worker.name!r}, pid {os.getpid()})"


def _worker_address():
    try:
        return distributed.get_worker().address
    except ValueError:
        return f"pid {os.getpid()}"


# ---- which outputs are computed row by row, and how batch-free ones combine -------------------------

class _Rows:
    """Over a declared graph whose `batch` inputs share one call-time size: `axis` holds each node
    computed row by row (row i of it depends on row i of the batch inputs only, so chunk results
    concatenate to the whole batch's) with its batch axis; `kind` holds each batch-free node that
    depends on the batch with how chunk values combine into the whole batch's: "mean" (weighted by
    the chunks' rows), "sum", "max", "min", or None (they don't)."""

    def __init__(self, graph, batch_axes, size):
        self.graph, self.size = graph, size
        self.axis, self.kind, self.dependent = dict(batch_axes), {}, set(batch_axes)
        for node in graph.order():
            deps = [a for a in graph.args(node) if a in self.dependent]
            if node in self.dependent or not deps:
                continue
            self.dependent.add(node)
            axis, other = self._batch_axis(node)
            if other:
                continue  # another call-time size (a flattened batch, say): not followed
            if axis is not None:
                if all(a in self.axis for a in deps) and self._keeps_rows(node, deps, axis):
                    self.axis[node] = axis
            else:
                self.kind[node] = self._combine(node, deps)

    def _batch_axis(self, node):
        sizes = [resolve(s) for s in self.graph.type(node).shape]
        axes = [k for k, s in enumerate(sizes) if s is self.size]
        other = any(isinstance(s, Dim) and s is not self.size for s in sizes) or len(axes) > 1
        return (axes[0] if axes else None), other

    def _keeps_rows(self, node, deps, axis):
        graph, op, attrs = self.graph, self.graph.op(node), self.graph.attrs(node)
        ndim = graph.type(node).ndim
        aligned = all(self.axis[a] + ndim - graph.type(a).ndim == axis for a in deps)  # NumPy broadcasting
        a0 = graph.args(node)[0]
        if registry.get(op).kind == "elementwise" or op in ("broadcast_to", "one_hot"):
            return aligned
        if registry.get(op).kind == "reduce":
            return self.axis[a0] not in attrs["axes"]
        if op in ("softmax", "log_softmax"):
            return attrs["axis"] % ndim != axis
        if op in ("take_along_axis", "concatenate"):
            return aligned and attrs["axis"] % ndim != axis and all(graph.type(a).ndim == ndim for a in deps)
        if op == "transpose":
            return list(attrs["axes"]).index(self.axis[a0]) == axis
        if op == "reshape":  # C order keeps whole rows together when the batch axis leads
            return self.axis[a0] == 0 and axis == 0
        if op == "matmul":
            a, b = graph.args(node)
            if deps == [a]:
                return graph.type(a).ndim == 2 and self.axis[a] == 0
            return deps == [b] and graph.type(b).ndim == 2 and self.axis[b] == 1
        if op == "getitem":
            entries = [e for e in attrs["index"] if e[0] != "new"]
            return entries[self.axis[a0]] == ("slice", None, None, None)
        return False

    def _combine(self, node, deps):
        graph, op = self.graph, self.graph.op(node)
        args, kinds = graph.args(node), [self.kind.get(a) for a in deps]
        if op in ("sum", "mean", "max", "min"):
            (x,) = deps
            if x in self.axis:
                return op if self.axis[x] in graph.attrs(node)["axes"] else None
            if op in ("sum", "mean"):  # over other axes of a combined value: still linear
                return kinds[0] if kinds[0] in ("mean", "sum") else None
            return op if kinds[0] == op else None
        if op == "grad":  # linear in the loss: the gradient of a weighted mean is the weighted mean
            y, target = args
            return self.kind.get(y) if target not in self.dependent and self.kind.get(y) in ("mean", "sum") else None
        if op == "neg":
            return {"mean": "mean", "sum": "sum", "max": "min", "min": "max"}.get(kinds[0])
        if op == "cast":
            return kinds[0] if graph.type(node).dtype.startswith("float") else None
        if op in ("mul", "div") and len(deps) == 1 and (op == "mul" or deps[0] == args[0]):
            return kinds[0] if kinds[0] in ("mean", "sum") else None
        if op in ("add", "sub"):
            if len(deps) == 2:
                return kinds[0] if kinds[0] == kinds[1] and kinds[0] in ("mean", "sum") else None
            if kinds[0] == "mean":  # a weighted mean of (m_k + c) is m + c; a sum of them is not
                return "mean"
            if kinds[0] in ("max", "min"):  # c - max is a min
                return {"max": "min", "min": "max"}[kinds[0]] if op == "sub" and deps[0] == args[1] else kinds[0]
        return None


def _describe(graph, node):
    return f"{graph.op(node)} {graph.type(node)} (at {graph[node]['loc']})"


# ---- map_batches -------------------------------------------------------------------------------------

def map_batches(f, *args, combine=None, **kwargs):
    """f (a compiled function) over dask arrays chunked along a call-time axis, as dask arrays.

    Arguments bind as in a call of f (positionally, or by input name). Dask arrays are batch
    arguments: each has one call-time axis, the same size for all (f's inputs say which); they are
    split in the same chunks along it and whole along their other axes (rechunked if they are not).
    Other arguments (NumPy arrays, numbers: weights) are fixed: each is one key of the graph, so it
    travels to a worker once, not with every chunk; so does f (its saved graph, shared values
    included), which each worker compiles or loads from its kernel cache once.

    Outputs: one with the batch axis comes back chunked along it, as the inputs are; it must be
    computed row by row (checked on f's graph: a row of it depending on other rows, as x - mean(x,
    axis=0), is refused, since chunks would give other values). A batch-free output that depends on
    the batch combines across chunks as its graph says: a mean over the batch axis (also plus or
    times batch-free terms, negated, or a gradient of such a loss) as the mean of the chunks' values
    weighted by their rows; a sum over it (a plain sum, no batch-free term added) as the sum; a max
    or min as the max or min (-max as the min). combine={output index: "mean"|"sum"|"max"|"min"|"chunks"}
    overrides or supplies the rule ("chunks": the per-chunk values, stacked on a new first axis); an
    output whose rule graphc can't infer is refused with its op and line. An output that does not
    depend on the batch is computed once per chunk and the first chunk's is returned.
    Float combinations are computed in float64 and returned in the output's dtype.
    Returns a dask array, or a tuple of them when f has several outputs.
    """
    graph, shared, settings = _declaration(f, "map_batches")
    calls = graph.inputs[:len(graph.inputs) - len(shared)]
    names = [graph.attrs(n)["name"] for n in calls]
    values = _bind(names, args, kwargs)
    batch, size, chunks = {}, None, None
    for node, name, value in zip(calls, names, values):
        if not isinstance(value, da.Array):
            continue
        t = graph.type(node)
        axes = [k for k, s in enumerate(t.shape) if isinstance(resolve(s), Dim)]
        if len(axes) != 1 or value.ndim != t.ndim:
            raise CallError(f"gc.dask.map_batches: input {name!r} is {t}: a dask array argument needs an input "
                            f"with one call-time axis and its rank, got {value.ndim}-d (pass fixed inputs as "
                            f"NumPy arrays) (at {user_location()})")
        if value.dtype != np.dtype(t.dtype) and (settings["cast"] == "no" or not np.can_cast(
                value.dtype, t.dtype, settings["cast"])):
            raise CallError(f"gc.dask.map_batches: input {name!r} is {t}, got a dask array of {value.dtype} "
                            f"(at {user_location()})")
        if size is not None and resolve(t.shape[axes[0]]) is not size:
            raise CallError(f"gc.dask.map_batches: input {name!r}'s call-time size is not the other batch "
                            f"inputs' (map_batches splits one batch axis) (at {user_location()})")
        if any(math.isnan(n) for n in value.chunks[axes[0]]):
            raise CallError(f"gc.dask.map_batches: input {name!r}'s chunk sizes are unknown; call "
                            f"compute_chunk_sizes() on it first (at {user_location()})")
        size, chunks = resolve(t.shape[axes[0]]), chunks or value.chunks[axes[0]]
        batch[node] = axes[0]
    if not batch:
        raise CallError(f"gc.dask.map_batches: no dask array among the arguments of {graph.name} "
                        f"(at {user_location()})")
    for node, name in zip(calls, names):
        if node not in batch and any(resolve(s) is size for s in graph.type(node).shape):
            raise CallError(f"gc.dask.map_batches: input {name!r} has the batch size: pass it as a dask array "
                            f"chunked as the other batch inputs (at {user_location()})")
    plan = _output_plan(graph, _Rows(graph, batch, size), combine or {})
    source = dask.delayed(SavedGraph(f.to_json(), graph.name), pure=True)
    rows = list(chunks)
    blocks = []  # per input: a list of delayed blocks (batch inputs) or one delayed value (fixed)
    for node, value in zip(calls, values):
        if node in batch:
            axis = batch[node]
            whole = value.rechunk({k: (chunks if k == axis else -1) for k in range(value.ndim)})
            blocks.append(list(whole.to_delayed().reshape(-1)))
        else:
            blocks.append(dask.delayed(value, pure=True))
    pieces = [dask.delayed(_run_chunk, nout=len(plan), pure=True)(
        source, *[b[k] if isinstance(b, list) else b for b in blocks]) for k in range(len(rows))]
    outputs = [_assemble(graph, node, rule, [p[j] for p in pieces], rows)
               for j, (node, rule) in enumerate(zip(graph.outputs, plan))]
    return outputs[0] if settings["single"] else tuple(outputs)


def _declaration(f, what):
    declaration = getattr(f, "_declaration", None)
    if declaration is None:
        raise GraphcError(f"gc.dask.{what} takes a compiled function (gc.compile, gc.load), got "
                          f"{type(f).__name__} (at {user_location()})")
    return declaration


def _bind(names, args, kwargs):
    if len(args) > len(names):
        raise CallError(f"gc.dask.map_batches: {len(args)} arguments for the inputs {names} (at {user_location()})")
    values = dict(zip(names, args))
    for name, value in kwargs.items():
        if name not in names or name in values:
            raise CallError(f"gc.dask.map_batches: unexpected or repeated argument {name!r} for the inputs "
                            f"{names} (at {user_location()})")
        values[name] = value
    missing = [n for n in names if n not in values]
    if missing:
        raise CallError(f"gc.dask.map_batches: missing arguments {missing} (at {user_location()})")
    return [values[n] for n in names]


def _output_plan(graph, rows, combine):
    """Per output: "rows" (concatenated along its batch axis, given), "first" (batch-free), or a combine rule."""
    for j, rule in combine.items():
        if not isinstance(j, int) or not 0 <= j < len(graph.outputs) or rule not in COMBINES:
            raise GraphcError(f"gc.dask.map_batches combine: {j!r}: {rule!r}; keys are output indexes "
                              f"0..{len(graph.outputs) - 1}, rules {', '.join(COMBINES)} (at {user_location()})")
    plan = []
    for j, node in enumerate(graph.outputs):
        axis, other = rows._batch_axis(node)
        rule = combine.get(j) or rows.kind.get(node)
        if other:
            problem = "has a call-time size other than the batch axis"
        elif axis is not None:
            if node in rows.axis and j not in combine:
                plan.append(("rows", axis))
                continue
            problem = ("has the batch axis: combine applies to batch-free outputs" if j in combine else
                       "depends on other rows of the batch than its own")
        elif node not in rows.dependent and j not in combine:
            plan.append("first")
            continue
        elif rule:
            plan.append(rule)
            continue
        else:
            problem = ("is not a mean, sum, max or min over the batch that graphc can follow; pass combine="
                       f"{{{j}: 'mean'|'sum'|'max'|'min'|'chunks'}} if it combines so")
        raise GraphcError(f"gc.dask.map_batches: output {j} ({_describe(graph, node)}) {problem}, so chunks "
                          f"can't compute it (at {user_location()})")
    return plan


def _run_chunk(graph, *arrays):
    result = worker_function(graph)(*arrays)
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _assemble(graph, node, rule, parts, rows):
    t = graph.type(node)
    dtype = np.dtype(t.dtype)
    static = tuple(resolve(s) if isinstance(resolve(s), int) else 0 for s in t.shape)  # 0: the batch axis
    if isinstance(rule, tuple):
        axis = rule[1]
        pieces = [da.from_delayed(p, static[:axis] + (n,) + static[axis + 1:], dtype=dtype,
                                  meta=np.empty((0,) * t.ndim, dtype)) for p, n in zip(parts, rows)]
        return da.concatenate(pieces, axis=axis)
    pieces = [da.from_delayed(p, static, dtype=dtype, meta=np.empty((0,) * t.ndim, dtype)) for p in parts]
    if rule == "first":
        return pieces[0]
    stacked = da.stack(pieces)
    if rule == "chunks":
        return stacked
    if rule in ("max", "min"):
        return getattr(stacked, rule)(axis=0)
    wide = np.float64 if dtype.kind == "f" else None
    if rule == "sum":
        return stacked.sum(axis=0, dtype=wide).astype(dtype)
    weights = np.array(rows, np.float64).reshape((-1,) + (1,) * t.ndim) / sum(rows)
    return (stacked.astype(np.float64) * weights).sum(axis=0).astype(dtype)


# ---- workers: setup, warm-up, what they hold ---------------------------------------------------------

class GraphcWorkerSetup(distributed.WorkerPlugin):
    """Sets GRAPHC_CACHE_DIR on every worker, restarted and later-joining ones too (a worker plugin)."""

    def __init__(self, cache_dir, per_worker):
        self.cache_dir, self.per_worker = cache_dir, per_worker

    def setup(self, worker):
        folder = self.cache_dir
        if self.per_worker:
            label = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(worker.name))
            folder = os.path.join(folder, f"worker-{label}")
        os.environ["GRAPHC_CACHE_DIR"] = folder


def configure_workers(client, cache_dir, per_worker=False):
    """Point every worker's kernel cache at `cache_dir` (a folder they share, e.g. on a network
    filesystem: a kernel compiled by one is loaded by the others), or with per_worker=True at a
    subfolder of it per worker name. Applies to workers joining later too; a function a worker has
    already loaded stays loaded. Returns {worker address: folder in use}."""
    client.register_plugin(GraphcWorkerSetup(os.fspath(cache_dir), per_worker), name="graphc-cache")
    return client.run(_configured_folder)


def _configured_folder():
    from .runtime.cache import configured_dir
    return configured_dir()


def prepare(client, f):
    """Compile or load `f` (a compiled function, or a saved graph's JSON text: f.to_json(),
    gc.to_json(...)) on every worker now, as map_batches and DataParallel would on first use, so the
    first chunks or steps don't wait for it and a worker that can't compile fails here, its
    WorkerError naming it. One worker goes first and the others after it, so with a shared kernel
    cache (a LocalCluster's, or configure_workers' folder) they load what the first compiled.
    Returns {worker address: f.cache_info() there}."""
    if isinstance(f, (str, bytes)):
        from .saving import from_json
        text = f.decode("utf-8") if isinstance(f, bytes) else f
        return _prepare(client, SavedGraph(text, from_json(text).name))
    _declaration(f, "prepare")
    return _prepare(client, SavedGraph(f.to_json(), f.ir.name))


def _prepare(client, graph):
    workers = sorted(client.nthreads())
    source = client.scatter(graph, broadcast=True, hash=False)
    submit = lambda w: client.submit(_prepare_task, source, key=f"graphc-prepare-{graph.digest[:16]}-{w}",  # noqa: E731
                                     workers=[w], allow_other_workers=True, pure=False)
    first = client.gather([submit(w) for w in workers[:1]])
    return dict(first + client.gather([submit(w) for w in workers[1:]]))


def _prepare_task(graph):
    return _worker_address(), worker_function(graph).cache_info()


def worker_cache_info(client):
    """Per worker: its pid, kernel cache folder, graphc.runtime.compile.COUNTS (kernels compiled,
    loaded from Numba's cache, imported ahead of time) and the functions it holds, each with its
    cache_info() and how many chunks or steps used it."""
    return client.run(_worker_report)


def _worker_report():
    from .runtime.cache import configured_dir
    from .runtime.compile import COUNTS
    with _LOADING:
        functions = [dict(f.cache_info(), name=f.ir.name, digest=digest, uses=uses)
                     for digest, (f, uses) in _LOADED.items()]
    return {"pid": os.getpid(), "cache_dir": configured_dir(), "counts": dict(COUNTS), "functions": functions}


# ---- data-parallel training --------------------------------------------------------------------------

def batch_indices(count, batch_size, rng, shuffle=True):
    """One epoch's batches as row index arrays, as DataParallel.fit takes them: a permutation drawn
    from `rng` (or 0..count-1 without shuffle) cut into batch_size rows, the last batch shorter."""
    order = rng.permutation(count) if shuffle else np.arange(count)
    return [order[k:k + batch_size] for k in range(0, count, batch_size)]


class DataParallel:
    """Synchronous data-parallel training of `loss` (a rank-0 tensor of `inputs` and gc.shared
    parameters) on a Dask cluster.

    optimizer: a gc.optim function (gc.optim.sgd, adam, adamw, rmsprop), given its rates as keyword
    arguments (numbers). name: the graphs' names ("<name>_gradients", "<name>_update"). params: the
    gc.shared values to train (default gc.parameters(loss)), the user's own tensors, updated in place
    on the client, so other functions reading them see the training. client: a distributed.Client
    (default: the current one).

    Each step: the parameters (and the other shared values the loss reads) are broadcast to the
    workers (client.scatter(broadcast=True)); each worker computes (loss, gradients) on its shard
    with a function compiled once per worker from the gradient graph, whose parameters are inputs,
    and scales them by its share of the rows (a mean loss; 1 for a sum); the shards' results are
    summed by a tree (tasks adding FAN_IN at a time on the workers, the last FAN_IN or fewer on the
    client); the client applies the optimizer's update once, with gc.optim's formulas
    compiled into one function over shared state that stays on the client (moments, step count).
    So a step equals the single-process step on the concatenated batch within float rounding. The
    inputs' first axis is the batch (a call-time size); `reduction` ("mean" or "sum") is how the loss
    combines over shards, inferred from its graph when it is a mean or plain sum over the batch.

    Faults: a step whose tasks fail for another reason than a graphc error (a worker died, its data
    lost) is retried up to max_retries times on the workers then alive; the update is applied only
    for the step the client expects next (self.steps), so a step is never lost nor applied twice.
    A worker that can't compile the gradient graph raises WorkerError naming it (at construction:
    prepare=True compiles it on every worker first, see gc.dask.prepare).
    """

    def __init__(self, loss, inputs, optimizer, params=None, client=None, reduction=None, name="train",
                 max_retries=3, step_timeout=None, recovery_wait=10.0, prepare=True, **rates):
        from . import compiler, functions as F
        from .shared import parameters, reachable_shared
        from .lower import tensor_list
        from .saving import to_json
        self.client = client or distributed.default_client()
        inputs = tensor_list(inputs, "gc.dask.DataParallel inputs")
        params = parameters(loss) if params is None else tensor_list(params, "params")
        for rate, value in rates.items():
            if isinstance(value, Tensor):
                raise GraphcError(f"gc.dask.DataParallel: rate {rate} must be a number (the update runs on the "
                                  f"client, between steps; change it with a new DataParallel) (at {user_location()})")
        graph, _, _ = compiler.declare(inputs, loss, name=name)
        self.reduction = reduction or _loss_reduction(graph, inputs)
        if self.reduction not in ("mean", "sum"):
            raise GraphcError(f"gc.dask.DataParallel: reduction must be 'mean' or 'sum', got {reduction!r} "
                              f"(at {user_location()})")
        grads = F.grad(loss, params)
        # the gradient graph with every shared value as a call input: workers keep no parameter state
        saved = json.loads(to_json([loss] + grads, inputs=inputs, name=f"{name}_gradients"))
        by_name = {s.name: s for s in reachable_shared([loss] + params)}
        self._values = [by_name[record["name"]] for record in saved["shared"]]
        saved["calls"], saved["shared"] = saved["calls"] + len(saved["shared"]), []
        self._gradients = SavedGraph(json.dumps(saved, sort_keys=True, separators=(",", ":")), f"{name}_gradients")
        self.params, self.name, self._inputs = list(params), name, inputs
        # gradients as inputs: sum(p * g) has gradient g for p, so the optimizer's own formulas apply
        grad_inputs = [F.tensor(f"gradient{k}", p.shape, p.dtype) for k, p in enumerate(params)]
        surrogate = _total([F.cast(F.sum(p * g), "float64") for p, g in zip(params, grad_inputs)])
        self._update = compiler.compile(grad_inputs, [], updates=optimizer(surrogate, params, **rates),
                                        name=f"{name}_update")
        self.max_retries, self.step_timeout, self.recovery_wait = max_retries, step_timeout, recovery_wait
        self.steps, self.retries, self.timings = 0, [], []
        self._serial = hashlib.sha256(f"{os.getpid()}-{id(self)}-{time.time()}".encode()).hexdigest()[:12]
        self._source = self._shards = self._shard_data = None
        if prepare:
            self.prepare()

    @property
    def optimizer_state(self):
        """The optimizer's shared values (moments, step count), held on the client."""
        written = self._update.shared["written"]
        return [s for s in written if all(s is not p for p in self.params)]

    def prepare(self):
        """Compile or load the gradient function on every worker now; {worker: its cache_info()}."""
        return _prepare(self.client, self._gradients)

    # -- one step --

    def step(self, *batch):
        """One step on `batch` (NumPy arrays, one per input, rows along the first axis): split into
        one contiguous shard per worker, sent with the step. Returns the batch's loss."""
        arrays = self._check_batch(batch)
        count = len(arrays[0])

        def shards(workers):
            bounds = np.linspace(0, count, len(workers) + 1).astype(int)
            placed = []
            for w, lo, hi in zip(workers, bounds, bounds[1:]):
                if hi > lo:
                    data = self.client.scatter([tuple(a[lo:hi] for a in arrays)], workers=[w], hash=False)[0]
                    placed.append((w, [(data, None)], hi - lo))
            return placed
        return self._run_step(count, shards)

    def _check_batch(self, batch):
        if len(batch) != len(self._inputs):
            raise CallError(f"gc.dask.DataParallel: {len(batch)} arrays for the inputs "
                            f"{[t.name for t in self._inputs]} (at {user_location()})")
        arrays = [np.asarray(a) for a in batch]
        counts = {len(a) if a.ndim else None for a in arrays}
        if len(counts) != 1 or None in counts or not counts.pop():
            raise CallError(f"gc.dask.DataParallel: the batch arrays need the same number of rows (at least one), "
                            f"got shapes {[a.shape for a in arrays]} (at {user_location()})")
        return arrays

    def _run_step(self, count, shards):
        """Submit the shards' gradient tasks and their tree sum; apply the update; retry on a fault."""
        step = self.steps
        for attempt in range(self.max_retries + 1):
            workers = sorted(self.client.nthreads())
            start = time.perf_counter()
            try:
                if not workers:
                    raise OSError("no workers")
                if self._source is None:
                    self._source = self.client.scatter(self._gradients, broadcast=True, hash=False)
                values = self.client.scatter([tuple(v.get_value(copy=False) for v in self._values)],
                                             broadcast=True, hash=False)[0]
                loss, grads, rows, worker, used = self._sum([self.client.submit(
                    _gradient_task, self._source, values, self._weight(n, count), pieces,
                    key=f"graphc-gradients-{self._serial}-{step}-{attempt}-{k}", workers=[w],
                    allow_other_workers=True, pure=False) for k, (w, pieces, n) in enumerate(shards(workers))],
                    f"{step}-{attempt}")
            except GraphcError:
                raise
            except Exception as error:  # noqa: BLE001  a cluster fault: Dask's errors have no common base
                if attempt == self.max_retries:
                    raise GraphcError(f"gc.dask.DataParallel: step {step} failed {attempt + 1} times; last: "
                                      f"{type(error).__name__}: {error}") from error
                self.retries.append({"step": step, "attempt": attempt, "error": f"{type(error).__name__}: {error}",
                                     "workers": workers})
                log.warning("graphc.dask: step %d failed on workers %s (%s: %s); retrying on the workers alive",
                            step, workers, type(error).__name__, error)
                self._recover(workers)
                continue
            if rows != count:
                raise GraphcError(f"gc.dask.DataParallel: step {step} summed {rows} rows of {count}")
            update = time.perf_counter()
            self._apply(step, grads)
            end = time.perf_counter()
            self.timings.append({"step": step, "seconds": end - start, "worker": worker, "update": end - update,
                                 "workers": used})
            return float(loss)

    def _weight(self, rows, count):
        return rows / count if self.reduction == "mean" else 1.0

    def _sum(self, partials, tag):
        """The partial results summed by a tree of fan-in FAN_IN whose root is the client: tasks add
        groups of FAN_IN on the workers until at most FAN_IN are left, which the client gathers and adds
        (with 2 workers: no task level, the two partials come straight to the client)."""
        level = 0
        while len(partials) > FAN_IN:
            partials = [group[0] if len(group) == 1 else self.client.submit(
                _add_partials, *group, key=f"graphc-sum-{self._serial}-{tag}-{level}-{k}", pure=False)
                for k, group in enumerate(partials[j:j + FAN_IN] for j in range(0, len(partials), FAN_IN))]
            level += 1
        distributed.wait(partials, timeout=self.step_timeout)
        return _add_partials(*self.client.gather(partials))

    def _apply(self, step, grads):
        """The optimizer's update for `step`, once: a result for a step already applied is ignored."""
        if step != self.steps:
            return
        self._update(*grads)
        self.steps += 1

    def _recover(self, failed_on):
        """After a fault: drop what may be lost (resident shards, the broadcast graph) and wait until
        Dask has noticed a change of workers (or recovery_wait seconds) and one is alive."""
        self._source = self._shards = None
        deadline = time.monotonic() + self.recovery_wait
        while time.monotonic() < deadline and sorted(self.client.nthreads()) == failed_on:
            time.sleep(0.1)
        self.client.wait_for_workers(1, timeout=max(self.recovery_wait, 60))

    # -- epochs --

    def fit(self, *data, batch_size, epochs=1, shuffle=True, seed=0, progress=True, callback=None):
        """Train on `data` (NumPy arrays, one per input): its rows are split into one contiguous part
        per worker, sent once (again after a fault, or when the workers changed at an epoch's start),
        and each step sends only the batch's row indices (batch_indices(len, batch_size, rng, shuffle),
        rng = np.random.default_rng(seed)). progress: a tqdm bar per epoch. callback(step, loss) after
        each step. Returns {"loss": per epoch mean, "step_loss": per step, "seconds": per epoch}."""
        arrays = self._check_batch(data)
        rng = np.random.default_rng(seed)
        history = {"loss": [], "step_loss": [], "seconds": []}
        for epoch in range(epochs):
            if self._shards is not None and {w for w, _, _, _ in self._shards} != set(self.client.nthreads()):
                self._shards = None  # workers joined or left: spread the data over those there now
            batches = batch_indices(len(arrays[0]), batch_size, rng, shuffle)
            if progress:
                from tqdm import tqdm
                batches = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}")
            start, total, seen = time.perf_counter(), 0.0, 0
            for rows in batches:
                loss = self._run_step(len(rows), lambda workers, rows=rows: self._resident(arrays, rows, workers))
                total, seen = total + loss * len(rows), seen + len(rows)
                history["step_loss"].append(loss)
                if progress:
                    batches.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
                if callback is not None:
                    callback(self.steps, loss)
            history["loss"].append(total / seen)
            history["seconds"].append(time.perf_counter() - start)
        return history

    def _resident(self, arrays, rows, workers):
        if self._shards is None or len(self._shard_data) != len(arrays) or any(
                a is not b for a, b in zip(self._shard_data, arrays)):
            self._place(arrays, workers)
        pieces = []
        for w, data, lo, hi in self._shards:
            local = rows[(rows >= lo) & (rows < hi)] - lo
            if len(local):
                pieces.append((w, [(data, local)], len(local)))
        return pieces

    def _place(self, arrays, workers):
        self._shards, self._shard_data = None, arrays
        bounds = np.linspace(0, len(arrays[0]), len(workers) + 1).astype(int)
        shards = []
        for w, lo, hi in zip(workers, bounds, bounds[1:]):
            if hi > lo:
                data = self.client.scatter([tuple(a[lo:hi] for a in arrays)], workers=[w], hash=False)[0]
                shards.append((w, data, lo, hi))
        self._shards = shards

    # -- the cost model --

    def cost(self, batch_size=None):
        """Bytes per step: parameters (and other shared values) broadcast to every worker, gradients
        reduced (each worker's partial sum travels once: to the worker adding it, the last to the
        client), and the batch's data (step() sends it each step; fit() only its row indices, the
        data once per placement). Measured: median step seconds, the slowest worker's task (taking its
        rows and computing), the client's update, and the
        share of the step spent on neither (communication and scheduling)."""
        workers = len(self.client.nthreads())
        values = sum(v.get_value(copy=False).nbytes for v in self._values)
        grads = sum(p.get_value(copy=False).nbytes for p in self.params) + 8
        row = sum(np.dtype(t.dtype).itemsize * math.prod(s for s in t.shape[1:] if isinstance(s, int))
                  for t in self._inputs)
        report = {"workers": workers, "parameter_bytes": values, "broadcast_bytes": values * workers,
                  "gradient_bytes": grads, "reduced_bytes": grads * workers, "row_bytes": row}
        if batch_size:
            report.update(batch_bytes=row * batch_size, index_bytes=8 * batch_size)
        if self.timings:
            recent = self.timings[-50:]
            seconds = float(np.median([t["seconds"] for t in recent]))
            worker = float(np.median([t["worker"] for t in recent]))
            update = float(np.median([t["update"] for t in recent]))
            report.update(step_seconds=seconds, worker_seconds=worker, update_seconds=update,
                          communication_share=max(0.0, 1 - (worker + update) / seconds))
        return report

    def print_cost(self, batch_size=None, file=None):
        """Print cost(batch_size) in words; returns the dict."""
        c = self.cost(batch_size)
        lines = [f"graphc.dask step cost on {c['workers']} workers:",
                 f"  parameters broadcast: {_mb(c['parameter_bytes'])} x {c['workers']} = {_mb(c['broadcast_bytes'])}",
                 f"  gradients reduced:    {_mb(c['gradient_bytes'])} x {c['workers']} = {_mb(c['reduced_bytes'])}"]
        if batch_size:
            lines.append(f"  batch of {batch_size}: {_mb(c['batch_bytes'])} of data with step(), "
                         f"{_mb(c['index_bytes'])} of row indices with fit()")
        if "step_seconds" in c:
            lines.append(f"  measured (median of the last steps): step {c['step_seconds'] * 1e3:.1f} ms, "
                         f"slowest worker task {c['worker_seconds'] * 1e3:.1f} ms, "
                         f"update {c['update_seconds'] * 1e3:.1f} ms, "
                         f"communication and scheduling {c['communication_share']:.0%}")
        print("\n".join(lines), file=file)
        return c


def _total(terms):
    from .functions import add
    total = terms[0]
    for term in terms[1:]:
        total = add(total, term)
    return total


def _mb(count):
    return f"{count / 1e6:.3f} MB"


def _loss_reduction(graph, inputs):
    """"mean" or "sum": how the loss over a batch is made of the shards' losses (graphc's inference)."""
    axes, size = {}, None
    for node, t in zip(graph.inputs, inputs):
        first = resolve(t.type.shape[0]) if t.ndim else None
        if not isinstance(first, Dim) or (size is not None and first is not size):
            raise GraphcError(f"gc.dask.DataParallel: input {t.name!r} is {t.type}: every input needs the batch, "
                              f"one call-time size, as its first axis (at {user_location()})")
        axes[node], size = 0, first
    kind = _Rows(graph, axes, size).kind.get(graph.outputs[0])
    if kind not in ("mean", "sum"):
        raise GraphcError(f"gc.dask.DataParallel: the loss ({_describe(graph, graph.outputs[0])}) is not a mean or "
                          f"plain sum over the batch that graphc can follow, so shards can't compute it; if it is "
                          f"one, pass reduction='mean' or 'sum' (at {user_location()})")
    return kind


def _gradient_task(graph, values, weight, pieces):
    """On a worker: (weight * loss, weight * gradients, rows, seconds taking its rows and computing, [worker])."""
    f = worker_function(graph)
    start = time.perf_counter()
    parts = [tuple(a if rows is None else a[rows] for a in data) for data, rows in pieces]
    batch = parts[0] if len(parts) == 1 else [np.concatenate(column) for column in zip(*parts)]
    loss, *grads = f(*batch, *values)
    seconds = time.perf_counter() - start
    return (loss * weight, [g * g.dtype.type(weight) for g in grads], len(batch[0]), seconds,
            [_worker_address()])


def _add_partials(first, *others):
    """(loss, gradients, rows, seconds, workers) of several shards as one: sums, the slowest's seconds."""
    loss, grads, rows, seconds, workers = first[0], list(first[1]), first[2], first[3], list(first[4])
    for other in others:
        loss, grads = loss + other[0], [g + h for g, h in zip(grads, other[1])]
        rows, seconds, workers = rows + other[2], max(seconds, other[3]), workers + other[4]
    return loss, grads, rows, seconds, workers
