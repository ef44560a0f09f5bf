"""Dead-code elimination."""
import networkx as nx


def dce(graph):
    """Remove nodes that no output, update or input depends on."""
    live = set(graph.inputs)
    for root in graph.roots():
        live |= nx.ancestors(graph.g, root) | {root}
    dead = set(graph.g.nodes) - live
    if not dead:
        return graph
    graph = graph.copy()
    graph.g.remove_nodes_from(dead)
    return graph
