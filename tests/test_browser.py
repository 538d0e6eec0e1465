"""End to end in a real browser: JupyterLab, the start notebook, its widgets and the proxied /monitor.

Drives Debian's chromium (``make browser-deps``) through Playwright; no browser is
downloaded. Screenshots go to ``test-artifacts/`` (git-ignored) for a person to look at.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.jupyter_proc import REPO, JupyterServer

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage"]
ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK = "notebooks/00_start_here.ipynb"
IDLE = re.compile(r"\| Idle")
SECONDS = 1000  # Playwright timeouts are in milliseconds

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def chromium_path() -> str:
    """Debian's chromium; a missing browser fails the suite (it is never silently skipped)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium. Install it "
                    "with `make browser-deps` (or `sudo apt-get install chromium`).")
    return str(CHROMIUM)


@pytest.fixture
def jupyter_lab(tmp_path):
    """JupyterLab on a free loopback port with a token; stopped with every kernel afterwards."""
    # No LAB_AUTO_PREDICT: in the browser a person clicks, so the test clicks too.
    env = {"LAB_AUTO_PREDICT": "", "LAB_RUN_DIR": str(tmp_path / "labs")}
    server = JupyterServer(tmp_path / "jupyter", app="lab", env=env)
    with server:
        yield server
    assert len(server.stopped_family) >= 2 and not server.survivors(), \
        f"the Jupyter server or a kernel survived: {server.survivors()}"


@pytest.fixture
def browser(chromium_path, tmp_path):
    """A chromium context with a fresh profile, and a list collecting console errors."""
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium_path, args=FLAGS,
            headless=True, viewport={"width": 1280, "height": 900})
        context.console_errors = []  # type: ignore[attr-defined]

        def watch(page):
            def on_console(msg):
                if msg.type == "error":
                    context.console_errors.append(f"{page.url}: {msg.text}")
            page.on("console", on_console)
            page.on("pageerror", lambda exc: context.console_errors.append(f"{page.url}: {exc}"))
        context.on("page", watch)
        try:
            yield context
        finally:
            context.close()


def shot(target, name: str) -> None:
    """Save a screenshot of a page or element under test-artifacts/."""
    target.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_start_notebook_in_jupyterlab(jupyter_lab, browser):
    page = browser.new_page()
    page.goto(f"{jupyter_lab.url}lab/tree/{NOTEBOOK}?token={jupyter_lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60 * SECONDS)
    page.get_by_text(IDLE).wait_for(timeout=60 * SECONDS)

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

    # Predict: pick an answer, commit, read the reveal.
    predict = page.locator(".ql-predict")
    predict.scroll_into_view_if_needed()
    predict.get_by_text("a worker", exact=True).click()
    predict.get_by_role("button", name="Commit and run").click()
    predict.locator(".ql-reveal", has_text="Right!").wait_for(timeout=20 * SECONDS)
    shot(predict, "browser-00-predict")

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
    assert "2 thread workers" in workers.inner_text()
    shot(workers, "browser-00-workers")

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
    shot(page, "browser-00-stopped")

    assert browser.console_errors == [], "console errors:\n" + "\n".join(browser.console_errors)
