"""In a real browser, as a learner: notebook 07 run cell by cell, every Predict clicked.

Before a commit no reveal is on screen; after it the reveal names this run's measurement.
Screenshots of every Predict and figure go to ``test-artifacts/`` for a person to look at.
"""
from __future__ import annotations

import re
import shutil

import pytest

from tests.test_browser import IDLE
from tests.test_browser import REPO
from tests.test_browser import SECONDS
from tests.test_browser import browser  # noqa: F401 - fixture
from tests.test_browser import chromium_path  # noqa: F401 - fixture
from tests.test_browser import jupyter_lab  # noqa: F401 - fixture
from tests.test_browser import shot

NOTEBOOK = "notebooks/07_myth_busters.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def workspace(tmp_path):
    """A copy of notebook 07 for ``jupyter_lab`` to serve (the repository's stays clean)."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / NOTEBOOK, root / NOTEBOOK)
    return root


def test_beliefs_notebook_reveals_only_after_each_commit(jupyter_lab, browser):  # noqa: F811
    page = browser.new_page()
    page.goto(f"{jupyter_lab.url}lab/tree/{NOTEBOOK}?token={jupyter_lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60 * SECONDS)
    page.get_by_text(IDLE).wait_for(timeout=60 * SECONDS)
    cells = page.locator(".jp-Notebook .jp-Cell")
    reveals = []
    for i in range(cells.count() - 1):  # not the last cell: it stops the lab
        cell = cells.nth(i)
        if "jp-CodeCell" not in (cell.get_attribute("class") or ""):
            continue
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Enter")
        page.wait_for_timeout(300)  # let the kernel report busy before waiting for idle
        page.get_by_text(IDLE).wait_for(timeout=60 * SECONDS)
        assert not cell.locator(".jp-OutputArea-output[data-mime-type="
                                "'application/vnd.jupyter.stderr']").count(), f"cell {i}"
        if cell.locator(".jp-RenderedImage").count():
            shot(cell, f"browser-07-figure-cell{i}")
        predict = cell.locator(".ql-predict")
        if not predict.count():
            continue
        assert cell.locator(".ql-reveal").count() == 0, f"cell {i}: reveal before the commit"
        predict.locator("input[type=radio]").first.check()
        predict.get_by_role("button", name="Commit and run").click()
        cell.locator(".ql-reveal").wait_for(timeout=60 * SECONDS)
        page.get_by_text(IDLE).wait_for(timeout=60 * SECONDS)
        text = cell.locator(".ql-reveal").inner_text()
        assert re.search(r"matches this run|does not match your prediction", text), text
        assert "No prediction recorded" not in text
        shot(cell, f"browser-07-predict-{len(reveals)}")
        reveals.append(text)
    assert len(reveals) == 5  # beliefs 1, 2, 3 (twice) and 4
    assert "none of them started" in reveals[-1]
