"""A hostile page in the learner's real browser cannot drive the lab; the lab's own page can.

The hostile page is served (by Playwright's router) at ``http://localhost:9/``: another site
than the lab at ``http://127.0.0.1:<port>/``, and on loopback too, so Chromium's private
network rules do not block the requests before they reach the lab.
"""
from __future__ import annotations

import pytest

from tests.browser_fixtures import ARTIFACTS, SECONDS, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]

EVIL = "http://localhost:9/"


def evil_page(lab_url: str) -> str:
    """A page with a text/plain form (its body is ``{"seconds": 10, "to": "a@b=c"}``, valid
    JSON) and a no-cors fetch: both "simple" requests a browser sends without a preflight."""
    return f"""<!doctype html><title>cute cats</title>
<form id="f" method="POST" action="{lab_url}api/enqueue/send_email" enctype="text/plain">
<input name='{{"seconds": 10, "to": "a@b' value='c"}}'></form>
<script>
  // what any page can do without asking: a "simple" cross-site request
  fetch("{lab_url}api/enqueue/sleep", {{method: "POST", mode: "no-cors",
                                        body: '{{"seconds": 30}}'}}).catch(() => {{}});
</script>"""


def test_a_hostile_page_cannot_enqueue(clean_lab, browser):
    page = browser.new_page()
    page.route(EVIL + "**", lambda route: route.fulfill(status=200, content_type="text/html",
                                                         body=evil_page(clean_lab.url)))
    page.goto(EVIL + "cats.html")
    page.wait_for_load_state("networkidle")
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    text = page.locator("body").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    shot(page, "browser-cross-site-refused")
    assert "cross-site request refused" in text, text  # the lab answered, and said no
    assert clean_lab.queue_length() == 0 and clean_lab.events() == []


def test_the_labs_own_monitor_page_still_works(clean_lab, browser):
    page = browser.new_page()
    page.goto(clean_lab.url + "monitor")
    handle = clean_lab.enqueue("sleep", seconds=0.05)
    assert clean_lab.wait(handle, 10)
    page.wait_for_function("document.body.innerText.includes('complete')", timeout=10 * SECONDS)
    text = page.locator("body").inner_text()
    assert "live · updated" in text and "not reachable" not in text
    shot(page, "browser-monitor-own-origin")
