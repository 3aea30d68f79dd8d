"""Benchmarks: pytest-benchmark micro benchmarks and whole-workload comparisons (see README.md)."""
