"""Experiments: each runs a scenario on a live ``Lab`` and returns a result holding the raw samples.

Every public experiment validates its arguments (``ValueError`` with the allowed range),
resets only its own state, prints progress when it runs longer than a second or two, and
leaves the lab usable when interrupted.
"""
