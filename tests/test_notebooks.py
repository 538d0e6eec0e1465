"""The curriculum notebooks: run headless (pinned to one CPU, as on Binder), measured,
linked, committed without outputs."""
import contextlib
import json
import os
import re
import threading
from pathlib import Path

import nbformat
import psutil
import pytest

from labapp import grader

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00_start_here", "01_what_is_a_task_queue", "02_why_in_flask",
            "03_workers_are_processes", "04_tools", "05_results_failures_retries",
            "06_scaling_and_monitoring", "07_myth_busters", "08_expert_zone",
            "09_when_not_to_use_and_pitfalls"]
# Notebooks whose curriculum rows ask for a predict → run → reveal block.
NEEDS_PREDICT = set(EXPECTED[3:])
ONE_CPU_EACH_S, ONE_CPU_TOTAL_S, RSS_LIMIT = 60, 300, 1.5 * 2**30  # Binder: ~1 CPU, 2 GB
_ONE_CPU_TOTAL = [0.0]
TIMES = ROOT / "test-artifacts" / "notebook-times.json"


def _source(path):
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)


def test_all_curriculum_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_structure(path):
    nb = nbformat.read(path, as_version=4)
    first_md = nb.cells[0]
    assert first_md.cell_type == "markdown" and first_md.source.lstrip().startswith("# ")
    assert re.search(r"(?i)time|minutes", first_md.source), "say how long it takes"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "Lab.start(" in code[0], "the first code cell starts (or reuses) the lab"
    assert code[-1].strip().endswith("lab.stop()"), "the last code cell stops the lab"
    src = _source(path)
    assert "import *" not in src and "%run" not in src
    if path.stem in NEEDS_PREDICT:
        assert "Predict(" in src


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_links_resolve(path):
    for target in re.findall(r"\]\(([^)#\s]+\.ipynb)", _source(path)):
        assert (path.parent / target).resolve().exists(), f"{path.name} links to missing {target}"


@contextlib.contextmanager
def one_cpu_and_peak_rss():
    """Pin this process (and so every child it starts) to one CPU, as on Binder, and sample
    the resident memory of all its children while the block runs; yields [peak bytes]."""
    me, peak, done = psutil.Process(), [0], threading.Event()
    old = os.sched_getaffinity(0)

    def sample() -> None:
        while not done.wait(0.25):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
    sampler = threading.Thread(target=sample, daemon=True)
    os.sched_setaffinity(0, {min(old)})
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        os.sched_setaffinity(0, old)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_headless_on_one_cpu_and_leaves_nothing(path):
    """Binder gives about 1 CPU and 2 GB: each notebook runs pinned to one CPU, ≤ 60 s, all
    of them ≤ 5 min, kernel + lab ≤ 1.5 GB, with no error and nothing left running."""
    # The grader's runner: a fresh kernel, folder and lab, LAB_AUTO_PREDICT=1, a leak sweep.
    with one_cpu_and_peak_rss() as peak:
        run = grader.run_notebook(path, timeout=120)
    assert run.problem != "leaked processes", run.reason
    assert not run.problem and not run.errors, run.reason or run.errors
    outputs = [o for c in run.notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs) or path.stem == "00_start_here", \
        "each curriculum notebook shows at least one measured figure"
    TIMES.parent.mkdir(exist_ok=True)
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[path.stem] = {"seconds_1cpu": round(run.seconds, 1), "peak_rss_mb": round(peak[0] / 2**20)}
    TIMES.write_text(json.dumps(times, indent=1, sort_keys=True))
    _ONE_CPU_TOTAL[0] += run.seconds
    assert run.seconds <= ONE_CPU_EACH_S, f"{path.name} took {run.seconds:.0f} s on one CPU"
    assert peak[0] <= RSS_LIMIT, f"{path.name}: kernel + lab peaked at {peak[0] / 2**20:.0f} MB"
    assert _ONE_CPU_TOTAL[0] <= ONE_CPU_TOTAL_S, \
        f"the notebooks so far took {_ONE_CPU_TOTAL[0]:.0f} s on one CPU"
