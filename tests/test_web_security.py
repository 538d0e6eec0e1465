"""The Flask app against hostile pages: cross-site requests, DNS rebinding, malformed bodies.

Requests go to the lab's real waitress server with the exact headers Chromium sends, set by
hand with http.client (which, unlike a browser, lets a test choose Host and Origin).
"""
from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from labapp.web import create_app


def send(lab, method, path, body=b"", headers=None, host=None):
    """One HTTP request to the lab's server; returns (status, parsed JSON or text)."""
    port = urlsplit(lab.url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        raw = resp.read().decode()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw


def chromium(origin, site, mode="cors", content_type="application/json"):
    """The fetch metadata Chromium attaches to a request made by a page at ``origin``."""
    return {"Origin": origin, "Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode,
            "Sec-Fetch-Dest": "empty", "Content-Type": content_type,
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"}


SLEEP = b'{"seconds": 30}'


def test_cross_site_text_plain_post_is_refused(clean_lab):
    """``fetch(url, {method: "POST", mode: "no-cors", body})`` from any web page."""
    status, body = send(clean_lab, "POST", "/api/enqueue/sleep", SLEEP,
                        chromium("https://evil.example", "cross-site", "no-cors",
                                 "text/plain;charset=UTF-8"))
    assert status == 403 and "cross-site request refused" in body["error"]
    assert clean_lab.queue_length() == 0


def test_cross_site_form_post_without_fetch_metadata_is_refused(clean_lab):
    """An older browser (no Sec-Fetch-*): the Origin alone gives the page away."""
    status, body = send(clean_lab, "POST", "/api/enqueue/sleep", b"seconds=30",
                        {"Origin": "https://evil.example",
                         "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and clean_lab.queue_length() == 0


def test_cross_site_json_post_is_refused_too(clean_lab):
    status, _ = send(clean_lab, "POST", "/api/inline/cpu", b'{"n": 1000}',
                     chromium("http://localhost:8888", "same-site"))
    assert status == 403


@pytest.mark.parametrize("extra", [{}, {"X-Forwarded-Host": "127.0.0.1"},
                                   {"X-Forwarded-Prefix": "/proxy/1"}])
def test_dns_rebinding_host_is_refused(clean_lab, extra):
    """A page on rebind.evil.example whose name now points at 127.0.0.1: "same-origin"."""
    port = urlsplit(clean_lab.url).port
    host = f"rebind.evil.example:{port}"
    headers = {**chromium(f"http://{host}", "same-origin"), **extra}
    status, body = send(clean_lab, "POST", "/api/enqueue/sleep", SLEEP, headers, host=host)
    assert status == 400 and "not trusted" in body["error"] and "LAB_TRUSTED_HOSTS" in body["error"]
    status, _ = send(clean_lab, "GET", "/api/stats", headers=extra, host=host)
    assert status == 400
    assert clean_lab.queue_length() == 0


def test_the_labs_own_page_and_scripts_are_accepted(clean_lab):
    port = urlsplit(clean_lab.url).port
    status, body = send(clean_lab, "POST", "/api/enqueue/noop", b"{}",
                        chromium(f"http://127.0.0.1:{port}", "same-origin"))
    assert status == 202, body
    status, _ = send(clean_lab, "POST", "/api/enqueue/noop", b"{}",
                     {"Content-Type": "application/json"}, host=f"localhost:{port}")
    assert status == 202
    status, _ = send(clean_lab, "GET", "/monitor", headers=chromium("", "cross-site", "navigate"))
    assert status == 200  # following the notebook's link to the monitor page is fine
    assert clean_lab.wait(body["id"], 10)


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8",
                                          "multipart/form-data; boundary=x"])
def test_a_non_json_body_is_415(clean_lab, content_type):
    status, body = send(clean_lab, "POST", "/api/enqueue/sleep", SLEEP,
                        {"Content-Type": content_type})
    assert status == 415 and "application/json" in body["error"]


def test_a_form_label_passes_only_from_scripts(clean_lab):
    """urllib.request and curl -d label JSON bodies as forms; browsers must say JSON."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body = send(clean_lab, "POST", "/api/enqueue/noop", b"{}", form)
    assert status == 202, body
    port = urlsplit(clean_lab.url).port
    status, _ = send(clean_lab, "POST", "/api/enqueue/noop", b"{}",
                     {**form, "Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin",
                      "Sec-Fetch-Mode": "navigate"})
    assert status == 415  # the lab's own origin, but a form: refused
    status, _ = send(clean_lab, "POST", "/api/enqueue/noop", b"seconds=3", form)
    assert status == 400
    assert clean_lab.wait(body["id"], 10)


@pytest.mark.parametrize("raw", [
    b'{"seconds": ' + b"9" * 400 + b"}",         # overflows float()
    b'{"n": ' + b"9" * 5000 + b"}",              # beyond Python's int-from-string limit
    b"[" * 6000 + b"]" * 6000,                   # nesting beyond the recursion limit
    b'{"seconds": NaN}', b'{"seconds": Infinity}',
    b'{"seconds": 1, "seconds": 99}',
    b"\xff\xfe{}",
])
def test_malformed_bodies_are_4xx(clean_lab, raw):
    for task in ("sleep", "cpu"):
        status, body = send(clean_lab, "POST", f"/api/enqueue/{task}", raw,
                            {"Content-Type": "application/json"})
        assert 400 <= status < 500, (status, body)
        assert "error" in body
    assert clean_lab.queue_length() == 0


def test_requests_through_the_hub_proxy_are_accepted(lab):
    """On a hub the Host is the hub's domain; the proxy's own prefix header vouches for it."""
    config = {"TESTING": True, "LAB_NAME": lab.name, "LAB_REDIS_URL": lab.redis_url,
              "LAB_HUB_PREFIX": "/user/ada/"}
    client = create_app(config).test_client()
    proxied = {"Host": "hub.example.org", "X-Forwarded-Prefix": "/user/ada/proxy/5000"}
    resp = client.get("/healthz", headers=proxied, environ_overrides={"SERVER_PORT": "5000"})
    assert resp.status_code == 200
    resp = client.get("/healthz", headers={**proxied, "X-Forwarded-Prefix": "/user/eve/proxy/5000"},
                      environ_overrides={"SERVER_PORT": "5000"})
    assert resp.status_code == 400
    local = create_app({**config, "LAB_HUB_PREFIX": None}).test_client()
    assert local.get("/healthz", headers=proxied,
                     environ_overrides={"SERVER_PORT": "5000"}).status_code == 400


def test_trusted_hosts_can_be_extended(lab, monkeypatch):
    monkeypatch.setenv("LAB_TRUSTED_HOSTS", "lab.example.edu")
    client = create_app({"TESTING": True, "LAB_NAME": lab.name,
                         "LAB_REDIS_URL": lab.redis_url}).test_client()
    assert client.get("/healthz", headers={"Host": "lab.example.edu:80"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
