"""Benchmarks (each bench/*.py is a script `make bench` runs) and the modules they share (bench/_*.py)."""
