"""Notebook 02 in a real browser, as a learner: the Predict shows nothing of the answer until
the learner commits; then the verdict and the measured sentences appear, and the plot's legend
sits below the curves. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import re

import pytest

from tests.jupyter_proc import JupyterServer
from tests.browser_fixtures import ARTIFACTS
from tests.browser_fixtures import IDLE
from tests.browser_fixtures import SECONDS
from tests.browser_fixtures import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]
NOTEBOOK = "notebooks/02_why_in_flask.ipynb"


@pytest.fixture
def jupyter_lab(tmp_path):
    """JupyterLab with every cell rendered (no windowing), so the test can reach each one."""
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = {"LAB_AUTO_PREDICT": "", "LAB_RUN_DIR": str(tmp_path / "labs"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings")}
    with JupyterServer(tmp_path / "jupyter", app="lab", env=env) as server:
        yield server
    assert not server.survivors(), f"a kernel or lab survived: {server.survivors()}"


def run_next(page) -> None:
    page.keyboard.press("Shift+Enter")
    page.wait_for_timeout(300)
    page.get_by_text(IDLE).wait_for(timeout=60 * SECONDS)


def test_nb02_predict_reveals_only_after_the_commit(jupyter_lab, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page()
    page.goto(f"{jupyter_lab.url}lab/tree/{NOTEBOOK}?token={jupyter_lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60 * SECONDS)
    page.get_by_text(IDLE).wait_for(timeout=60 * SECONDS)
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputArea").click()
    page.keyboard.press("Escape")
    while not page.locator(".ql-predict").count():  # Shift+Enter down to the Predict
        run_next(page)
    predict = page.locator(".ql-predict")
    predict.scroll_into_view_if_needed()
    before = predict.inner_text()
    assert "Commit and run" in before
    assert not re.search(r"match|supports|\d+ ms|waiting for a free", before), before
    assert predict.locator(".ql-reveal").count() == 0 or not predict.locator(".ql-reveal").inner_text()
    shot(predict, "browser-02-predict-before")

    predict.get_by_text("about 0.8 s", exact=True).click()
    predict.get_by_role("button", name="Commit and run").click()
    predict.locator(".ql-reveal", has_text="request thread").wait_for(timeout=60 * SECONDS)
    page.get_by_text(IDLE).wait_for(timeout=60 * SECONDS)
    reveal = predict.locator(".ql-reveal").inner_text()
    assert re.search(r"matches this run|does not match", reveal), reveal
    assert "everybody wait" in reveal or "did not hold it up" in reveal
    assert "you said" not in reveal.lower()
    shot(predict, "browser-02-predict-after")

    # The plot cell reads question.result: the committed answer stands, no second run.
    predict.locator("xpath=ancestor::div[contains(@class,'jp-Cell')]").first \
        .locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    run_next(page)  # the markdown below the widget
    run_next(page)  # the plot
    plot = page.locator(".jp-Cell", has=page.locator("img")).last
    plot.scroll_into_view_if_needed()
    assert "red-orange, solid: inline" in plot.inner_text()
    shot(plot, "browser-02-latency-plot")
    assert "no prediction recorded" not in predict.inner_text().lower()
