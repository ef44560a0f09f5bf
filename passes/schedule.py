"""Scheduling: which nodes run as library kernels and which as lines of the graph's driver (graphc/schedule.py)."""
from graphc.schedule import build_schedule, tag_joint_groups


def schedule(graph):
    """Place every node: a library kernel call per loop nest, inline steps for the rest."""
    work = graph.copy()
    work.memory_plan = getattr(graph, "memory_plan", None)
    # tagged here, once passes no longer remove or merge nodes (the plan's order only gets readers earlier)
    tag_joint_groups(work)
    work.schedule = build_schedule(work)
    return work
