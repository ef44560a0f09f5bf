"""graphc's benchmark suite: workloads W1..W5 on graphc and its peers, each in fresh processes.

Run `python -m benchmarks.run` (see --help)."""
