"""Minimal Huey, RQ and Celery setups, one module each, for the tools comparison.

Each module is what a learner would write to use that tool: connect to the server, define
a no-op and a sleep task. The server comes from ``QL_COMPARE_SOCKET`` (a unix socket path;
database 1 of the lab's own server). Lines below the ``measurement only`` marker are
helpers for the experiment and are not counted as setup.
"""
from __future__ import annotations

import os

SOCKET_ENV = "QL_COMPARE_SOCKET"
DB = 1  # the lab itself uses db 0 of the same server
MARKER = "# --- measurement only"


def socket_path() -> str:
    """The server's unix socket, as set by the experiment (``QL_COMPARE_SOCKET``)."""
    path = os.environ.get(SOCKET_ENV)
    if not path:
        raise RuntimeError(f"{SOCKET_ENV} is not set: run labapp.experiments.tools(lab)")
    return path
