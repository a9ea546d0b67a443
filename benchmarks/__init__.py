"""Benchmark scripts: each ``benchmarks/<name>.py`` prints its figures; ``python -m benchmarks``
lists them and ``python -m benchmarks NAME [ARGS]`` runs one."""
