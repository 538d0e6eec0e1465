"""Browser-test fixtures and helpers, registered for the whole suite in ``conftest.py``.

Drives Debian's chromium (``make browser-deps``) through Playwright; no browser is
downloaded. Screenshots go to ``test-artifacts/`` (git-ignored) for a person to look at.
A test module sets ``NOTEBOOK`` to the notebook ``workspace``/``jupyter_lab`` serve a copy of.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.jupyter_proc import REPO, JupyterServer

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage"]
ARTIFACTS = REPO / "test-artifacts"
START_NOTEBOOK = "notebooks/00_start_here.ipynb"
IDLE = re.compile(r"\| Idle")
SECONDS = 1000  # Playwright timeouts are in milliseconds


@pytest.fixture
def chromium_path() -> str:
    """Debian's chromium; a missing browser fails the suite (it is never silently skipped)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium. Install it "
                    "with `make browser-deps` (or `sudo apt-get install chromium`).")
    return str(CHROMIUM)


@pytest.fixture
def workspace(tmp_path, request):
    """A copy of the test module's ``NOTEBOOK`` (default: the start notebook) to open, click and
    save; the repository's stays clean."""
    notebook = getattr(request.module, "NOTEBOOK", START_NOTEBOOK)
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / notebook, root / notebook)
    return root


@pytest.fixture
def jupyter_lab(tmp_path, workspace):
    """JupyterLab on a free loopback port with a token; stopped with every kernel afterwards."""
    # No LAB_AUTO_PREDICT: in the browser a person clicks, so the test clicks too.
    env = {"LAB_AUTO_PREDICT": "", "LAB_RUN_DIR": str(tmp_path / "labs")}
    server = JupyterServer(tmp_path / "jupyter", app="lab", env=env, root_dir=workspace)
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


def open_notebook(page, server, path: str) -> None:
    """Open ``path`` in JupyterLab and wait until its kernel is idle."""
    page.goto(f"{server.url}lab/tree/{path}?token={server.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60 * SECONDS)
    page.get_by_text(IDLE).wait_for(timeout=60 * SECONDS)
