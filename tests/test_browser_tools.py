"""Notebook 04 in a real browser, clicked as a learner: both Predicts, the plots, the shortcut.

Screenshots go to ``test-artifacts/browser-04-*.png`` for a person to look at.
"""
from __future__ import annotations

import pytest

from tests.browser_fixtures import IDLE
from tests.browser_fixtures import SECONDS
from tests.browser_fixtures import open_notebook
from tests.browser_fixtures import shot

# ``jupyter_lab`` serves a copy of it: its thread_app.py and sent.txt stay out of the repo.
NOTEBOOK = "notebooks/04_tools.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]


def run_cell(page, index: int, wait_s: float = 60) -> None:
    """Select code cell ``index`` (counting all cells) and run it; wait until the kernel is idle."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    cell.click()
    page.keyboard.press("Control+Enter")
    page.wait_for_timeout(300)
    page.get_by_text(IDLE).wait_for(timeout=wait_s * SECONDS)


def commit(page, nth: int, answer: str, reveal_s: float):
    predict = page.locator(".ql-predict").nth(nth)
    predict.scroll_into_view_if_needed()
    assert predict.locator(".ql-reveal").count() == 0 or not predict.locator(
        ".ql-reveal").inner_text().strip(), "the reveal is on screen before the commit"
    predict.get_by_text(answer, exact=True).click()
    predict.get_by_role("button", name="Commit and run").click()
    predict.locator(".ql-reveal").filter(has_text="this run").first.wait_for(
        timeout=reveal_s * SECONDS)
    return predict


def test_notebook_04_as_a_learner(jupyter_lab, browser):
    page = browser.new_page()
    open_notebook(page, jupyter_lab, NOTEBOOK)
    cells = page.locator(".jp-Notebook .jp-Cell")
    sources = [cells.nth(i).inner_text() for i in range(cells.count())]
    code = [i for i, s in enumerate(sources) if "Lab.start(" in s or "Predict(" in s
            or "plot_" in s or "compare.TOOLS" in s or "thread_vs_queue" in s]
    for i in code[:2]:  # start the lab, show the first Predict
        run_cell(page, i)
    predict = commit(page, 0, "no, you add a library and a broker", 60)
    text = predict.inner_text()
    assert "matches" in text and "call_on_close" in text
    shot(predict, "browser-04-predict-flask")
    run_cell(page, code[2])  # the hooks plot
    shot(cells.nth(code[2]), "browser-04-hooks-plot")
    run_cell(page, code[3])  # the three setups
    run_cell(page, code[4])  # the second Predict
    predict = commit(page, 1, "Huey", 240)
    shot(predict, "browser-04-predict-tools")
    run_cell(page, code[5], wait_s=30)  # table and plot
    shot(cells.nth(code[5]), "browser-04-tools-plot")
    writefile = next(i for i, s in enumerate(sources) if "%%writefile" in s)
    run_cell(page, writefile)
    run_cell(page, code[6], wait_s=60)  # the thread shortcut and the queue
    assert "of 5 emails sent" in cells.nth(code[6]).inner_text()
    shot(cells.nth(code[6]), "browser-04-thread")
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).count() == 0, "a cell printed an error"
