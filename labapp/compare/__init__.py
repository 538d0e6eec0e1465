"""Huey, RQ and Celery side by side (notebook 04): their minimal setups and how to run them.

The setups live in :mod:`labapp.compare.minimal` and import nothing of ``labapp``: each
worker runs the tool's own command line in that folder, as a user of the tool would. The
server is the lab's own, database :data:`DB`, named by ``REDIS_URL`` in each tool's spelling.
"""
from __future__ import annotations

from pathlib import Path

TOOLS = ("huey", "rq", "celery")
DB = 1  # the lab itself uses db 0 of the same server
MINIMAL = Path(__file__).resolve().with_name("minimal")


def redis_url(tool: str, socket_path: str) -> str:
    """``REDIS_URL`` for ``tool``: redis-py's ``unix://`` form, Celery's ``redis+socket://``."""
    if tool == "celery":
        return f"redis+socket://{socket_path}?virtual_host={DB}"
    return f"unix://{socket_path}?db={DB}"


def setup_path(tool: str) -> Path:
    """The minimal setup module of ``tool`` (``minimal/<tool>_tasks.py``)."""
    if tool not in TOOLS:
        raise ValueError(f"tool={tool!r}: choose from {TOOLS}")
    return MINIMAL / f"{tool}_tasks.py"
