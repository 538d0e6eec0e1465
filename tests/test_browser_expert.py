"""Notebook 08 in a real browser: the lock Predict shows nothing of the answer until a commit.

Runs a copy of the notebooks (JupyterLab autosaves outputs into the files it opens).
Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import re
import shutil

import pytest

from tests.helpers import poll
from tests.jupyter_proc import REPO, JupyterServer
from tests.browser_fixtures import ARTIFACTS, SECONDS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def lab_copy(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    env = {"LAB_AUTO_PREDICT": "", "LAB_RUN_DIR": str(tmp_path / "labs")}
    server = JupyterServer(tmp_path / "jupyter", app="lab", env=env, root_dir=root)
    with server:
        yield server
    assert not server.survivors(), f"the Jupyter server or a kernel survived: {server.survivors()}"


def _run(page, cell) -> None:
    """Run one cell in place, as Ctrl+Enter does, and wait until its prompt shows a number."""
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    prompt = cell.locator(".jp-InputArea-prompt")
    poll(lambda: re.search(r"\[\d+\]", prompt.inner_text()), 90, interval=0.2,
         what="the cell's prompt number (the cell finished)")


def test_lock_predict_reveals_only_after_the_commit(lab_copy, browser):
    page = browser.new_page()
    page.goto(f"{lab_copy.url}lab/tree/notebooks/08_expert_zone.ipynb?token={lab_copy.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60 * SECONDS)
    page.get_by_text(re.compile(r"\| Idle")).wait_for(timeout=60 * SECONDS)
    cells = page.locator(".jp-Notebook .jp-Cell")
    code = [cells.nth(i) for i in range(cells.count())
            if "jp-CodeCell" in (cells.nth(i).get_attribute("class") or "")]
    lock_cell = next(c for c in code if "lock_race" in c.locator(".jp-InputArea-editor").inner_text())
    for cell in code[:2]:  # start the lab, import Predict
        _run(page, cell)
    _run(page, lock_cell)
    predict = lock_cell.locator(".ql-predict")
    predict.wait_for(timeout=10 * SECONDS)
    before = predict.inner_text()
    assert "TaskLockedException" not in before and "supports" not in before
    assert predict.locator(".ql-reveal").count() == 0
    predict.get_by_text("It waits for the lock, then runs", exact=True).click()
    predict.get_by_role("button", name="Commit and run").click()
    reveal = predict.locator(".ql-reveal", has_text="lock_task")
    reveal.wait_for(timeout=60 * SECONDS)
    text = reveal.inner_text()
    assert "your prediction" in text.lower()
    assert re.search(r"TaskLockedException|did not overlap|update\(s\) lost", text)
    ARTIFACTS.mkdir(exist_ok=True)
    predict.screenshot(path=str(ARTIFACTS / "browser-08-lock-predict.png"))
    _run(page, code[-1])  # lab.stop()
    assert browser.console_errors == [], "console errors:\n" + "\n".join(browser.console_errors)
