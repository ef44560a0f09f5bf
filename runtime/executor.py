"""CompiledFunction: what gc.compile returns. Calling it runs the generated binder, nothing more."""
import os

from graphc.printer import format_graph


class CompiledFunction:
    """A compiled graph: call it like a function; inspect it with dump(), source(), report()."""

    def __init__(self, graph, pipeline, kernel, binder_source, cache_status):
        self._graph, self._pipeline, self._kernel = graph, pipeline, kernel
        self._binder_source, self._cache_status = binder_source, cache_status

    @property
    def graph(self):
        """The networkx.DiGraph that was compiled."""
        return self._graph.g

    @property
    def ir(self):
        """The final graphc Graph (IR object)."""
        return self._graph

    def dump(self, after=None, show_loc=True, dense=False, format="text"):
        """The compiled graph, or the graph after the pass named `after`: text IR (dense: nodes
        renumbered in order of appearance), or format "dot" (Graphviz text), "svg" or "png" (bytes;
        graphc/dot.py)."""
        if after is not None and after not in self._pipeline.snapshots:
            raise KeyError(f"no pass named {after!r} ran; passes: {', '.join(self._pipeline.snapshots)}")
        graph = self._graph if after is None else self._pipeline.snapshots[after]
        if format == "text":
            return format_graph(graph, show_loc, dense)
        from graphc.dot import render, to_dot
        text = to_dot(graph, show_loc)
        return text if format == "dot" else render(text, format)

    def dump_all(self, only_changed=False, folder=None):
        """The IR after every pass, in order (only after passes that changed it; also written into `folder`)."""
        changed = {r.name for r in self._pipeline.records if r.changed} | {"input"}
        dumps = [(name, format_graph(g)) for name, g in self._pipeline.snapshots.items()
                 if not only_changed or name in changed]
        if folder:
            os.makedirs(folder, exist_ok=True)
            for k, (name, text) in enumerate(dumps):
                with open(os.path.join(folder, f"{k:02d}-{name}.txt"), "w") as f:
                    f.write(text + "\n")
        return "\n\n".join(f"// after {name}\n{text}" for name, text in dumps)

    def memory(self, **sizes):
        """Planned peak bytes beside the naive plan's (one buffer per value, none freed); sizes by name, e.g. N=256."""
        plan = getattr(self._graph, "memory_plan", None)
        return plan.report(**sizes) if plan else None

    def report(self):
        """Per pass: nodes before and after, milliseconds, which rewrites fired; the memory plan."""
        lines = [self._pipeline.report()]
        try:
            memory = self.memory()
        except KeyError:
            memory = "call-time sizes: see f.memory(N=...)"
        if isinstance(memory, dict):
            saved = 1 - memory["planned_peak_bytes"] / memory["naive_bytes"] if memory["naive_bytes"] else 0
            memory = (f"naive {memory['naive_bytes']} bytes in {memory['naive_allocations']} arrays -> planned peak "
                      f"{memory['planned_peak_bytes']} bytes in {memory['planned_allocations']} ({saved:.0%} less)")
        if memory:
            lines.append(f"memory: {memory}")
        return "\n".join(lines)

    def source(self):
        """The generated Numba source: the graph's driver, then each library kernel it calls."""
        return self._kernel.full_source()

    def binder_source(self):
        return self._binder_source

    def cache_info(self):
        return dict(self._cache_status)

    @property
    def shared(self):
        """{"read": the gc.shared values the function reads, "written": those its updates write}."""
        graph, shared, _ = self._declaration
        node_of = dict(zip(graph.inputs[len(graph.inputs) - len(shared):], shared))
        written = [node_of[t] for t, _ in graph.updates if t in node_of]
        return {"read": list(shared), "written": written}

    def save(self, path):
        """Write the declaration, the current shared values and the compile settings as JSON
        (graphc/saving.py); gc.load(path) returns a function that behaves the same."""
        from graphc.saving import save
        save(self, path)

    def to_json(self):
        from graphc.saving import function_json
        return function_json(self)

    def __reduce__(self):
        """Pickled as its saved graph: unpickling compiles it, or loads its kernel from that machine's
        cache; shared values travel with it (as copies: the unpickled function has its own)."""
        from graphc.saving import loads
        return loads, (self.to_json(),)


def make_compiled(call, graph, pipeline, kernel, binder_source, cache_status):
    """A CompiledFunction whose call goes straight to the generated binder (no per-call Python layer)."""
    cls = type("CompiledFunction", (CompiledFunction,), {"__call__": staticmethod(call), "__doc__": CompiledFunction.__doc__})
    return cls(graph, pipeline, kernel, binder_source, cache_status)
