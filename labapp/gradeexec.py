"""Run one submitted notebook for the grader: ``python -m labapp.gradeexec SETTINGS_JSON``.

The grader starts this inside the submission's sandbox (see :mod:`labapp.sandbox`). It
applies the resource limits, executes the learner's cells in a fresh kernel (armed by
:mod:`labapp.gradekernel` before the first cell), stops at the notebook's time budget, then runs
the grader's own check cell, keeps at most ``max_output`` bytes of output, lists processes the
notebook left behind and prints one result line (:data:`RESULT_PREFIX` + JSON) on stdout.
Nothing here is trusted by the grader beyond "this is what the run looked like": scores come
only from the record :mod:`labapp.gradekernel` signs.
"""
from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from labapp import gradekernel

RESULT_PREFIX = "\x1eQLG-RESULT "
LAB_COMMANDS = ("valkey-server", "huey_consumer", "labapp.web", "labapp worker")
LEFTOVER_WAIT = 5.0
CHECK_TIMEOUT = 120.0
KERNEL_START_TIMEOUT = 60
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error", "update_display_data"}


class CappedClient(NotebookClient):
    """A NotebookClient that keeps at most ``max_output`` bytes of outputs, then drops them."""

    def __init__(self, *args: Any, max_output: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_output = max_output
        self.kept = 0
        self.dropped = 0
        self.grade_records: list[Any] = []
        self.final_index: int | None = None

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        """Count output bytes; past the cap drop the output (one note says so)."""
        if msg.get("msg_type") in OUTPUT_TYPES:
            data = msg.get("content", {}).get("data") or {}
            if cell_index == self.final_index and gradekernel.MIME in data:
                if len(self.grade_records) < 5:  # the grader's record never counts to the cap
                    self.grade_records.append(data[gradekernel.MIME])
                return None
            size = len(json.dumps(msg.get("content", {}), default=str))
            if self.kept + size > self.max_output:
                if not self.dropped:
                    cell.outputs.append(nbformat.v4.new_output(
                        "stream", name="stderr", text=f"[the grader kept the first "
                        f"{self.max_output // 1000} kB of this notebook's output and dropped the "
                        "rest]\n"))
                self.dropped += size
                return None
            self.kept += size
        return super().process_message(msg, cell, cell_index)


def set_limits(limits: dict[str, int]) -> None:
    """Apply resource limits to this process and everything it starts."""
    names = {"as": resource.RLIMIT_AS, "nproc": resource.RLIMIT_NPROC,
             "fsize": resource.RLIMIT_FSIZE, "core": resource.RLIMIT_CORE}
    for name, value in limits.items():
        hard = resource.getrlimit(names[name])[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # only root may raise a hard limit
        resource.setrlimit(names[name], (value, value))


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Make orphaned descendants (daemons, double forks) children of this process (Linux)."""
    return _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def refuse_tracing() -> bool:
    """Keep the notebook (same uid) from tracing this runner or opening its /proc files."""
    return _prctl(4, 0)  # PR_SET_DUMPABLE = 0; the kernel's exec() makes it dumpable again


def leftovers(me: int, token: str) -> list[psutil.Process]:
    """Live descendants of this runner, and processes carrying the run's ``token``."""
    found = {}
    try:
        found = {p.pid: p for p in psutil.Process(me).children(recursive=True)}
    except psutil.Error:
        pass
    if token:  # without a subreaper (not Linux), a detached process is found by its tag
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid != me and proc.environ().get("LAB_GRADE_TOKEN") == token:
                    found[proc.pid] = proc
            except psutil.Error:
                continue
    alive = []
    for proc in found.values():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            continue
    return alive


def sweep(token: str) -> list[str]:
    """Wait for the kernel's processes to end, kill the rest; the non-lab ones, described."""
    me = os.getpid()
    deadline = time.monotonic() + LEFTOVER_WAIT
    while leftovers(me, token) and time.monotonic() < deadline:
        time.sleep(0.1)
    leaked = []
    for proc in leftovers(me, token):
        try:
            command = " ".join(proc.cmdline())
            proc.kill()
        except psutil.Error:
            continue
        if not any(part in command for part in LAB_COMMANDS):
            leaked.append(f"pid {proc.pid}: {command[:60]}")
    return leaked


def run(settings: dict[str, Any]) -> dict[str, Any]:
    """Execute the notebook as ``settings`` say; the result the grader reads."""
    work = Path(settings["work"])
    for sub in ("nb", "run", "home"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = nbformat.read(settings["notebook"], as_version=4)
    learner_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(
        gradekernel.final_cell_source(settings["exercises"], settings["nonce"])))
    home = str(work / "home")
    private = {"HOME": home, "IPYTHONDIR": f"{home}/.ipython", "MPLCONFIGDIR": f"{home}/.mpl",
               "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter-runtime",
               "JUPYTER_DATA_DIR": f"{home}/.jupyter-data", "PYTHONDONTWRITEBYTECODE": "1"}
    os.environ.update(private)  # this runner's own Jupyter files stay in the work folder too
    env = {**(settings.get("env") or os.environ), **private,
           "LAB_RUN_DIR": str(work / "run"), "LAB_AUTO_PREDICT": "1"}
    timeout = float(settings["timeout"])
    state: dict[str, Any] = {"cell": None, "deadline": None}

    def cell_timeout(cell: Any) -> int:
        if state["cell"] is not None and state["cell"] >= learner_cells:
            return int(settings.get("check_timeout", CHECK_TIMEOUT))
        if state["deadline"] is None:  # one budget for the learner's cells, from the first
            state["deadline"] = time.monotonic() + timeout
        return max(1, math.ceil(state["deadline"] - time.monotonic()))

    client = CappedClient(
        nb, kernel_name="python3", timeout_func=cell_timeout, allow_errors=True,
        interrupt_on_timeout=True, error_on_timeout={"ename": "CellTimeoutError",
                                                     "evalue": "timeout", "traceback": []},
        shutdown_kernel="immediate", startup_timeout=KERNEL_START_TIMEOUT, record_timing=False,
        max_output=int(settings["max_output"]),
        extra_arguments=[f"--IPKernelApp.exec_lines={gradekernel.exec_line(settings['key'])}"],
        resources={"metadata": {"path": str(work / "nb")}})
    client.final_index = learner_cells
    status, where = "", None
    start = time.monotonic()
    try:
        with client.setup_kernel(env=env, stdout=open(os.devnull, "wb"),
                                 stderr=open(os.devnull, "wb")):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if index < learner_cells and status == "timeout":
                    continue  # past the budget: skip to the grader's cell
                state["cell"] = index
                client.execute_cell(cell, index)
                if (index < learner_cells and state["deadline"] is not None
                        and time.monotonic() >= state["deadline"]) or any(
                        o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
                    if not status:
                        status, where = "timeout", index
    except DeadKernelError:
        status, where = "kernel died", state["cell"]
    except CellTimeoutError:
        status, where = "timeout", state["cell"]
    leaked = sweep(settings.get("token", ""))
    final = nb.cells.pop()  # the grader's cell: its record travels on its own
    final_errors = [f"{o.get('ename')}: {o.get('evalue')}"[:300] for o in final.get("outputs", [])
                    if o.get("output_type") == "error"]
    return {"status": status, "cell": where, "learner_cells": learner_cells,
            "dropped_bytes": client.dropped, "leaked": leaked, "records": client.grade_records,
            "final_errors": final_errors,
            "seconds": round(time.monotonic() - start, 2), "notebook": nb}


def main(argv: list[str] | None = None) -> int:
    """Entry point: one JSON argument (see :func:`labapp.grader.run_notebook`)."""
    settings = json.loads((argv or sys.argv[1:])[0])
    set_limits(settings.get("limits") or {})
    become_subreaper()
    refuse_tracing()
    try:
        result = run(settings)
    except Exception as exc:  # noqa: BLE001 - reported to the grader as one line
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
