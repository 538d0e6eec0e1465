"""End to end in a real browser: JupyterLab, the start notebook, its widgets and the proxied /monitor.

Drives Debian's chromium (``make browser-deps``) through Playwright; no browser is
downloaded. Screenshots go to ``test-artifacts/`` (git-ignored) for a person to look at.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from labapp import predictions
from tests.browser_fixtures import IDLE, SECONDS, open_notebook, shot

NOTEBOOK = "notebooks/00_start_here.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


def is_dirty(page) -> bool:
    """JupyterLab marks a notebook with unsaved changes on its tab (the dot instead of x)."""
    return page.locator(".jp-mod-dirty").count() > 0


def save(page) -> None:
    page.keyboard.press("Control+s")
    page.wait_for_function("document.querySelectorAll('.jp-mod-dirty').length === 0",
                           timeout=15 * SECONDS)


def test_start_notebook_in_jupyterlab(jupyter_lab, browser, workspace):
    page = browser.new_page()
    open_notebook(page, jupyter_lab, NOTEBOOK)
    # The kernel's start rewrites nothing in a normalised notebook: not "modified" on open.
    page.wait_for_timeout(2 * SECONDS)   # JupyterLab applies the kernel's info asynchronously
    assert not is_dirty(page), "opening the notebook marked it modified (run labapp.nbnormal)"

    # Run every cell except the last one, which stops the lab.
    page.locator(".jp-Notebook .jp-Cell").last.click()
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item[data-command='notebook:run-all-above']").click()
    page.wait_for_selector(".ql-workers", timeout=60 * SECONDS)
    page.get_by_text(IDLE).wait_for(timeout=30 * SECONDS)
    notebook_text = page.locator(".jp-Notebook").inner_text()
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).count() == 0, "a cell printed an error"
    status = re.search(r"web http://127\.0\.0\.1:(\d+)/ \(pid (\d+).*workers \(pids ([\d, ]+)\)",
                       notebook_text)
    assert status, f"the first code cell did not print the lab's status line:\n{notebook_text[:3000]}"
    port, web_pid = status.group(1), status.group(2)
    first = page.locator(".jp-CodeCell").first
    first.scroll_into_view_if_needed()
    shot(first, "browser-00-start")
    diagram = page.locator(".ql-diagram")
    diagram.scroll_into_view_if_needed()
    assert web_pid in diagram.inner_text()
    shot(diagram, "browser-00-diagram")

    # Predict: nothing of the answer is on screen before the commit; the reveal comes after it.
    predict = page.locator(".ql-predict")
    predict.scroll_into_view_if_needed()
    before = page.locator(".jp-Notebook").inner_text()
    assert "ran the 0.5 s task" not in before and "This run supports" not in before
    assert predict.locator(".ql-reveal").count() == 0
    shot(predict.locator("xpath=ancestor::div[contains(@class,'jp-Cell')][1]"), "browser-00-predict-before")
    predict.get_by_text("a worker", exact=True).click()
    page.wait_for_timeout(0.5 * SECONDS)  # the kernel would answer by now if a click revealed it
    assert predict.locator(".ql-reveal").count() == 0, "picking an answer revealed it"
    predict.get_by_role("button", name="Commit and run").click()
    reveal = predict.locator(".ql-reveal", has_text="Your prediction matches this run")
    reveal.wait_for(timeout=20 * SECONDS)
    assert "ran the 0.5 s task, so a worker did the work" in reveal.inner_text()
    shot(predict.locator("xpath=ancestor::div[contains(@class,'jp-Cell')][1]"), "browser-00-predict")
    # The commit is saved with the notebook.
    page.get_by_text("Prediction saved with this notebook").wait_for(timeout=10 * SECONDS)
    save(page)
    (record,) = predictions.saved_records(workspace / NOTEBOOK)
    assert record["qid"] == "nb00.who-runs" and record["answer"] == "a worker"
    assert record["auto"] is False and record["matched"] is True
    assert record["notebook"] == "00_start_here.ipynb"

    # The enqueue panel: one task goes pending → executing → complete in front of us.
    panel = page.locator(".ql-enqueue")
    panel.scroll_into_view_if_needed()
    panel.get_by_role("button", name="Enqueue").click()
    panel.locator(".ql-state-executing").wait_for(timeout=10 * SECONDS)
    panel.locator(".ql-state-complete").wait_for(timeout=15 * SECONDS)
    assert re.search(r"pending → executing \+\d+ ms → complete \+1\.\d\d s", panel.inner_text())
    shot(panel, "browser-00-enqueue")

    # The proxied /monitor page follows the same lab.
    monitor = browser.new_page()
    base = f"{jupyter_lab.url}proxy/{port}/"
    monitor.goto(base + "monitor")
    monitor.get_by_text("live · updated").wait_for(timeout=15 * SECONDS)
    before = int(monitor.locator("#m-complete").inner_text())
    assert before >= 1
    count = panel.locator(".widget-text", has_text="count").locator("input")
    count.fill("4")
    count.press("Enter")
    panel.get_by_role("button", name="Enqueue").click()
    monitor.wait_for_function("document.getElementById('m-running').textContent === '2'",
                              timeout=15 * SECONDS)
    assert monitor.locator("#busy tbody tr", has_text="sleep").count() == 2
    shot(monitor, "browser-monitor-busy")
    monitor.wait_for_function(
        f"Number(document.getElementById('m-complete').textContent) >= {before + 4}",
        timeout=20 * SECONDS)
    shot(monitor, "browser-monitor-done")
    widget_complete = page.locator(".ql-monitor [data-metric='complete'] b")
    page.wait_for_function(
        "n => Number(document.querySelector(\".ql-monitor [data-metric='complete'] b\")"
        ".textContent) >= n", arg=before + 4, timeout=10 * SECONDS)
    assert int(widget_complete.inner_text()) >= before + 4
    page.locator(".ql-monitor").scroll_into_view_if_needed()
    shot(page.locator(".ql-monitor"), "browser-00-monitor-widget")
    workers = page.locator(".ql-workers")
    workers.scroll_into_view_if_needed()
    assert "2 thread workers running" in workers.inner_text()
    shot(workers, "browser-00-workers")

    # Process workers; kill the one running a long task: the panel shows the task as lost and
    # the control says when the replacement started.
    workers.get_by_role("button", name="process").click()
    workers.get_by_role("button", name="Apply").click()
    workers.get_by_text("restarted: 2 process workers").wait_for(timeout=30 * SECONDS)
    seconds = panel.locator(".widget-text", has_text="seconds").locator("input")
    seconds.fill("20")
    seconds.press("Enter")
    count.fill("1")
    count.press("Enter")
    panel.get_by_role("button", name="Enqueue").click()
    row = panel.locator("tr.ql-task").first
    row.locator(".ql-state-executing").wait_for(timeout=15 * SECONDS)
    runner = row.locator("td").nth(3).inner_text().strip()
    workers.locator("select").select_option(runner)
    workers.get_by_role("button", name="Kill a worker").click()
    row.locator(".ql-state-lost").wait_for(timeout=15 * SECONDS)
    assert "worker process died" in row.inner_text()
    workers.get_by_text("started a replacement").wait_for(timeout=15 * SECONDS)
    shot(panel, "browser-00-enqueue-lost")
    shot(workers, "browser-00-workers-replaced")

    # Links on our pages stay under the proxy prefix.
    monitor.get_by_role("link", name="lab home").click()
    monitor.wait_for_url(base)
    monitor.get_by_role("link", name="Live monitor").click()
    monitor.wait_for_url(base + "monitor")
    monitor.get_by_text("live · updated").wait_for(timeout=15 * SECONDS)
    monitor.close()  # before the lab stops, so its failed polls are not counted

    # The last cell stops the lab; the widgets then say so in place.
    page.locator(".jp-Notebook .jp-Cell").last.click()
    page.keyboard.press("Control+Enter")   # run in place (Shift+Enter would add a cell)
    page.locator(".ql-monitor", has_text="lab stopped").wait_for(timeout=20 * SECONDS)
    panel.get_by_role("button", name="Enqueue").click()
    panel.locator(".ql-error", has_text="is stopped").wait_for(timeout=10 * SECONDS)
    workers.locator(".ql-muted", has_text="the lab is stopped").wait_for(timeout=10 * SECONDS)
    assert "running" not in workers.inner_text().split("the lab is stopped")[0]
    shot(workers, "browser-00-workers-stopped")
    shot(page, "browser-00-stopped")

    assert browser.console_errors == [], "console errors:\n" + "\n".join(browser.console_errors)


TWO_PREDICTIONS = [
    "from labapp.widgets import Predict\n"
    "first = Predict('Two plus two?', ['4', '5'], run=lambda: 4, qid='test.sum',\n"
    "                truth=lambda r: str(r), explain=lambda r: f'measured {r}')\n"
    "first",
    "second = Predict('Is 3 odd?', ['yes', 'no'], run=lambda: 3, qid='test.odd',\n"
    "                 truth=lambda r: 'yes' if r % 2 else 'no', explain=lambda r: f'measured {r}')\n"
    "second",
]


def test_two_commits_saved_and_read_back_by_labapp_predictions(jupyter_lab, browser, workspace):
    import nbformat

    from labapp import nbnormal
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in TWO_PREDICTIONS]
    learner = workspace / "class" / "kim"
    learner.mkdir(parents=True)
    nbformat.write(nbnormal.normalise(nb), learner / "quiz.ipynb")
    page = browser.new_page()
    open_notebook(page, jupyter_lab, "class/kim/quiz.ipynb")
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    boxes = page.locator(".ql-predict")
    boxes.nth(1).wait_for(timeout=30 * SECONDS)
    for box, answer, verdict in ((boxes.nth(0), "5", "does not match"),
                                 (boxes.nth(1), "yes", "matches")):
        box.get_by_text(answer, exact=True).click()
        box.get_by_role("button", name="Commit and run").click()
        box.locator(".ql-reveal", has_text=verdict).wait_for(timeout=20 * SECONDS)
    page.get_by_text("Prediction saved with this notebook").nth(1).wait_for(timeout=10 * SECONDS)
    shot(page, "browser-two-predictions")
    save(page)
    out = workspace / "report"
    done = subprocess.run([sys.executable, "-m", "labapp", "predictions", str(workspace / "class"),
                           "--out", str(out), "--names"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    md = (out / "misconceptions.md").read_text()
    assert "| 5 | 1 | 100.0 % | 0 of 1 | kim |" in md         # test.sum: answered 5, measured 4
    assert "| yes | 1 | 100.0 % | 1 of 1 | kim |" in md       # test.odd: answered yes, matched
    saved = json.loads((learner / "quiz.ipynb").read_text())
    assert sum(predictions.MIME in o.get("data", {}) for c in saved["cells"] for o in c["outputs"]) == 2

    # The learner forgets one: after saving, only the other stays in the file.
    boxes.nth(0).get_by_role("button", name="Forget my prediction").click()
    boxes.nth(0).get_by_text("prediction forgotten").wait_for(timeout=10 * SECONDS)
    save(page)
    assert [r["qid"] for r in predictions.saved_records(learner / "quiz.ipynb")] == ["test.odd"]
    assert browser.console_errors == [], "console errors:\n" + "\n".join(browser.console_errors)
