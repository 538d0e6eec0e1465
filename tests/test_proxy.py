"""The Flask app behind jupyter-server-proxy, as on Binder: pages, links and the API under /proxy/<port>/."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import pytest

from tests.helpers import poll
from tests.jupyter_proc import JupyterServer


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """A real ``jupyter server`` with jupyter-server-proxy, stopped (kernels and all) afterwards."""
    server = JupyterServer(tmp_path_factory.mktemp("jupyter-proxy"), app="server")
    with server:
        yield server
    assert len(server.stopped_family) >= 1 and not server.survivors(), \
        f"the Jupyter server or a kernel survived: {server.survivors()}"


@pytest.fixture
def proxied(jupyter, lab):
    """The shared lab's Flask app as the browser sees it through the proxy (ends in ``/``)."""
    return f"{jupyter.url}proxy/{lab.port}/"


class Links(HTMLParser):
    """Every href/src/action in a page, plus the URLs its scripts fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src", "action") and value and not value.startswith(("data:", "#")):
                self.found.append(value)

    def handle_data(self, data):
        self.found.extend(re.findall(r"fetch\(\s*[\"'`]([^\"'`]+)[\"'`]", data))


def links_of(page: str) -> list[str]:
    parser = Links()
    parser.feed(page)
    return parser.found


def test_healthz_monitor_and_stats_through_the_proxy(jupyter, proxied, lab):
    health = jupyter.get(proxied.removeprefix(jupyter.url) + "healthz")
    assert health.status_code == 200
    assert health.json()["ok"] is True and health.json()["lab"] == lab.name
    assert health.json()["pid"] == lab.status()["web"]       # the lab's Flask process answered
    page = jupyter.get(proxied.removeprefix(jupyter.url) + "monitor")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert f"lab {lab.name}" in page.text
    stats = jupyter.get(proxied.removeprefix(jupyter.url) + "api/stats")
    assert stats.status_code == 200
    assert {"queued", "counts", "busy", "stuck", "throughput_per_s"} <= set(stats.json())


def test_the_proxy_needs_the_token(jupyter, proxied):
    import requests
    resp = requests.get(proxied + "healthz", timeout=10, allow_redirects=False)
    assert resp.status_code in (302, 403)      # Jupyter's login, not the lab


@pytest.mark.parametrize("page", ["", "monitor"])
def test_every_link_in_the_pages_works_under_the_prefix(jupyter, proxied, page):
    url = proxied + page
    body = jupyter.get(url.removeprefix(jupyter.url)).text
    links = links_of(body)
    assert links, f"no links found in /{page}"
    prefix = urlparse(proxied).path
    for link in links:
        target = urljoin(url, link)
        assert urlparse(target).path.startswith(prefix), \
            f"/{page}: link {link!r} leaves the proxy prefix ({target})"
        resp = jupyter.get(target.removeprefix(jupyter.url))
        assert resp.status_code == 200, f"/{page}: {link!r} → {resp.status_code}"


def test_enqueue_through_the_proxy_and_follow_the_status(jupyter, proxied, clean_lab):
    base = proxied.removeprefix(jupyter.url)
    resp = jupyter.post(base + "api/enqueue/sleep", json={"seconds": 0.05})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    # status_url is relative to the app's root: the page that made the call resolves it there
    status_path = urljoin(base, body["status_url"])
    assert status_path.startswith(base)
    status = poll(lambda: (s := jupyter.get(status_path).json())["state"] == "complete" and s,
                  10, what="the task's state complete")
    assert status == {"id": body["id"], "state": "complete", "result": 0.05}
    bad = jupyter.post(base + "api/enqueue/sleep", json={"seconds": 99})
    assert bad.status_code == 400 and "out of range" in bad.json()["error"]


def test_public_url_uses_the_hub_prefix(lab, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert lab.public_url == f"/user/ada/proxy/{lab.port}/"
    assert f"/user/ada/proxy/{lab.port}/monitor" in lab._repr_html_()
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX")
    assert lab.public_url == lab.url
