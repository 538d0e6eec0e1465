"""Plots: pure functions from an experiment result to a matplotlib ``Figure`` (no I/O, no show)."""
