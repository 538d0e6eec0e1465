"""In a real browser, as a learner: notebook 07 run cell by cell, every Predict clicked.

Before a commit no reveal is on screen; after it the reveal names this run's measurement.
Screenshots of every Predict and figure go to ``test-artifacts/`` for a person to look at.
"""
from __future__ import annotations

import re

import pytest

from tests.browser_fixtures import IDLE
from tests.browser_fixtures import SECONDS
from tests.browser_fixtures import open_notebook
from tests.browser_fixtures import shot

NOTEBOOK = "notebooks/07_myth_busters.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


def test_beliefs_notebook_reveals_only_after_each_commit(jupyter_lab, browser):
    page = browser.new_page()
    open_notebook(page, jupyter_lab, NOTEBOOK)  # the copy browser_fixtures.workspace made
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
