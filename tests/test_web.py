"""The Flask app: endpoints, JSON errors for every kind of bad input, and a fuzz pass."""
import json
import os
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labapp import tasks


def test_healthz_and_hello(client, lab):
    # the test client runs the app in this process: its pid is ours
    assert client.get("/healthz").json == {"ok": True, "lab": lab.name, "pid": os.getpid()}
    assert client.get("/api/hello").json["message"] == "hello"


def test_enqueue_returns_202_and_the_task_completes(client, clean_lab):
    resp = client.post("/api/enqueue/sleep", json={"seconds": 0.05})
    assert resp.status_code == 202
    task_id = resp.json["id"]
    assert resp.json["status_url"] == f"api/tasks/{task_id}"  # relative: works behind a proxy
    assert clean_lab.wait(task_id, 10)
    status = client.get(f"/api/tasks/{task_id}").json
    assert status == {"id": task_id, "state": "complete", "result": 0.05}
    producers = {e.worker for e in clean_lab.events() if e.kind == "enqueued"}
    assert producers == {"notebook"}  # the test client runs the app in this process


def test_inline_runs_in_the_request(client):
    resp = client.post("/api/inline/sleep", json={"seconds": 0.05})
    assert resp.status_code == 200 and resp.json["result"] == 0.05
    assert resp.json["seconds"] >= 0.05


def test_inline_task_failure_is_json(client):
    resp = client.post("/api/inline/flaky", json={"key": "web_inline", "fail_times": 20})
    assert resp.status_code == 500 and "TransientError" in resp.json["error"]


def test_failed_task_status_shows_the_error(client, clean_lab):
    task_id = client.post("/api/enqueue/flaky", json={"key": "web_err", "fail_times": 1}).json["id"]
    assert clean_lab.wait(task_id, 10)
    body = client.get(f"/api/tasks/{task_id}").json
    assert body["state"] == "error" and "TransientError" in body["error"]


def test_stats_counts_move(client, clean_lab):
    before = client.get("/api/stats").json
    assert before["queued"] == 0 and before["counts"] == {}
    task_id = client.post("/api/enqueue/noop").json["id"]
    assert clean_lab.wait(task_id, 10)
    after = client.get("/api/stats").json
    assert after["counts"]["complete"] == 1 and after["counts"]["enqueued"] == 1


def test_monitor_and_index_use_relative_links(client):
    page = client.get("/monitor").get_data(as_text=True)
    assert 'fetch("api/stats")' in page and 'href="/' not in page
    index = client.get("/").get_data(as_text=True)
    assert 'href="monitor"' in index


@pytest.mark.parametrize("method,path,body,status,fragment", [
    ("post", "/api/enqueue/rm_rf", {}, 404, "unknown task"),
    ("post", "/api/enqueue/sleep", {"seconds": -1}, 400, "out of range"),
    ("post", "/api/enqueue/sleep", {"seconds": 31}, 400, "out of range"),
    ("post", "/api/enqueue/sleep", {"seconds": "1"}, 400, "must be a float"),
    ("post", "/api/enqueue/sleep", {"seconds": True}, 400, "must be a float"),
    ("post", "/api/enqueue/sleep", {"minutes": 1}, 400, "unknown parameter"),
    ("post", "/api/enqueue/sleep", [1, 2], 400, "JSON object"),
    ("post", "/api/enqueue/cpu", {"n": 10**12}, 400, "out of range"),
    ("post", "/api/enqueue/flaky", {"key": "../../etc"}, 400, "must match"),
    ("post", "/api/enqueue/noop", {"retries": 99}, 400, "out of range"),
    ("post", "/api/inline/sleep", {"seconds": 60}, 400, "out of range"),
    ("get", "/api/enqueue/sleep", None, 405, "Method Not Allowed"),
    ("get", "/api/tasks/no-such-id", None, 404, "no task"),
    ("get", "/api/tasks/" + "x" * 65, None, 400, "at most 64"),
    ("get", "/nowhere", None, 404, "Not Found"),
])
def test_bad_input_is_a_json_error(client, method, path, body, status, fragment):
    resp = getattr(client, method)(path, json=body) if body is not None else getattr(client, method)(path)
    assert resp.status_code == status
    assert fragment in resp.json["error"] and "Traceback" not in resp.get_data(as_text=True)


def test_invalid_json_and_oversized_body(client):
    resp = client.post("/api/enqueue/sleep", data=b"{not json", content_type="application/json")
    assert resp.status_code == 400 and "not valid JSON" in resp.json["error"]
    resp = client.post("/api/enqueue/sleep", data=b"x" * (20 * 1024), content_type="application/json")
    assert resp.status_code == 413 and "error" in resp.json


def test_real_http_server_answers_and_rejects(lab):
    req = urllib.request.Request(lab.url + "api/enqueue/sleep", data=b'{"seconds": "soon"}',
                                 method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 400 and "must be a float" in json.loads(info.value.read())["error"]
    assert info.value.headers["Server"] == "queue-lab"


@pytest.fixture
def idle_client(make_lab):
    """A client of a lab without workers: fuzzed tasks are queued, never run."""
    from labapp.web import create_app
    lab = make_lab(workers=0)
    return create_app({"LAB_NAME": lab.name, "LAB_REDIS_URL": lab.redis_url}).test_client()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(["seconds", "n", "key", "fail_times", "seq", "to", "retries",
                                     "retry_delay", "retry_backoff", "x"]), json_values, max_size=4),
    json_values)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(task=st.sampled_from(sorted(tasks.SPECS) + ["nope", "", "../x"]), body=bodies)
def test_fuzzed_enqueue_bodies_never_5xx(idle_client, task, body):
    resp = idle_client.post(f"/api/enqueue/{task}", data=json.dumps(body), content_type="application/json")
    assert resp.status_code in (202, 400, 404), resp.get_data(as_text=True)
    assert "error" in resp.json or resp.status_code == 202


def test_two_apps_in_one_process_each_enqueue_on_their_own_lab(client, lab, make_lab):
    from labapp.web import create_app
    other = make_lab(workers=0)
    other_client = create_app({"LAB_NAME": other.name, "LAB_REDIS_URL": other.redis_url}).test_client()
    assert other_client.get("/healthz").json["lab"] == other.name
    assert client.get("/healthz").json["lab"] == lab.name
    queued = other_client.post("/api/enqueue/noop", json={}).json["id"]
    done = client.post("/api/enqueue/sleep", json={"seconds": 0}).json["id"]
    assert lab.result(done, timeout=10) == 0
    assert other.queue_length() == 1 and other_client.get(f"/api/tasks/{queued}").json["state"] == "enqueued"
    assert client.get(f"/api/tasks/{queued}").status_code == 404


def test_app_without_a_lab_answers_503():
    from labapp.web import create_app
    app = create_app({"LAB_NAME": None, "LAB_REDIS_URL": None})
    resp = app.test_client().post("/api/enqueue/noop", json={})
    assert resp.status_code == 503 and "lab.restart()" in resp.json["error"]
