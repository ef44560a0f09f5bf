"""Code generation, compilation, caching and execution. Knows nothing about individual passes."""
