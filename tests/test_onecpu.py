"""Binder's one core: every curriculum notebook runs pinned to one CPU (``taskset -c 0``).

Binder gives a learner about 1 CPU and 2 GB. Each notebook runs in a child process pinned to
CPU 0 (the kernel and every lab process inherit the affinity); the test samples the resident
memory of that whole process tree while it runs. Bounds: no error, each notebook ≤ 60 s,
all of them ≤ 5 min, peak RSS of kernel + lab ≤ 1.5 GB.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EACH_S, TOTAL_S, RSS_BYTES = 60, 300, 1.5 * 2**30
TIMES = ROOT / "test-artifacts" / "notebook-times-1cpu.json"
RUNNER = """
import json, sys, time
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
start = time.monotonic()
NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
errors = [o.get("ename", "") + ": " + o.get("evalue", "")[:200]
          for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
print(json.dumps({"seconds": time.monotonic() - start, "errors": errors}))
"""
_total = {"seconds": 0.0}

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which("taskset"), reason="needs taskset (util-linux)")]


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_on_one_cpu(path):
    with tempfile.TemporaryDirectory(prefix="ql1-", dir="/tmp") as work:
        env = {**os.environ, "LAB_AUTO_PREDICT": "1", "LAB_RUN_DIR": f"{work}/run"}
        proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", RUNNER, str(path), work],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        ps, peak, done = psutil.Process(proc.pid), [0], threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                peak[0] = max(peak[0], _tree_rss(ps))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            out, err = proc.communicate(timeout=180)
        finally:
            done.set()
            sampler.join()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err[-2000:]
    run = json.loads(out.strip().splitlines()[-1])
    _total["seconds"] += run["seconds"]
    TIMES.parent.mkdir(exist_ok=True)
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[path.stem] = {"seconds": round(run["seconds"], 1), "peak_rss_mb": round(peak[0] / 2**20)}
    TIMES.write_text(json.dumps(times, indent=1, sort_keys=True))
    assert not run["errors"], run["errors"]
    assert run["seconds"] <= EACH_S, f"{path.name} took {run['seconds']:.0f} s on one CPU"
    assert peak[0] <= RSS_BYTES, f"{path.name}: kernel + lab peaked at {peak[0] / 2**20:.0f} MB"
    assert _total["seconds"] <= TOTAL_S, f"notebooks so far took {_total['seconds']:.0f} s on one CPU"
