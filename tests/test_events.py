"""Events: the pure record builder, the stream reader, and batched writes from workers."""
import types

import pytest

from labapp import events


def _task(**kw):
    base = dict(id="t1", name="sleep", retries=2, data=((0.5,), {"note": "x" * 300}))
    base.update(kw)
    return types.SimpleNamespace(**base)


def test_build_fields_enqueued_shows_arguments_shortened(monkeypatch):
    monkeypatch.setenv("LAB_ROLE", "web")
    f = events.build_fields("enqueued", _task(), now=12.5)
    assert f["k"] == "enqueued" and f["w"] == "web" and f["t"] == "12.5" and f["r"] == "2"
    assert f["d"].startswith("0.5, note='xxx") and len(f["d"]) <= events.DETAIL_MAX


def test_build_fields_error_has_the_exception(monkeypatch):
    monkeypatch.setenv("LAB_ROLE", "worker")
    f = events.build_fields("error", _task(retries=0), exc=ValueError("boom"), now=1.0)
    assert f["d"] == "ValueError: boom" and f["w"] == "mainprocess"  # not a Worker thread


@pytest.mark.parametrize("kind,retries,terminal", [
    ("complete", 0, True), ("error", 0, True), ("error", 2, False), ("executing", 0, False),
    ("revoked", 0, True), ("enqueued", 3, False), ("retrying", 1, False)])
def test_terminal(kind, retries, terminal):
    e = events.Event("1-0", kind, "t", "sleep", "worker-1", 1, 0.0, retries)
    assert e.terminal is terminal


def test_keys_are_prefixed_with_the_lab_name():
    assert all(k.startswith("lab.demo.") for k in events.keys("demo").values())


def test_read_since_cursor_and_block(broker):
    import redis
    conn = redis.Redis.from_url(broker.url)
    assert events.last_id(conn, "x") == "0-0"
    batch = [{"k": "enqueued", "i": f"t{i}", "n": "noop", "w": "notebook",
              "p": "1", "t": str(float(i)), "r": "0", "d": ""} for i in range(3)]
    assert events.write(conn, "x", batch) == 3
    every = events.read(conn, "x")
    assert [e.task_id for e in every] == ["t0", "t1", "t2"]
    assert [e.task_id for e in events.read(conn, "x", since=every[0].id)] == ["t1", "t2"]
    assert events.read(conn, "x", since=every[-1].id, block=0.05) == []
    assert events.states(conn, "x", ["t1", "zz"]) == {"t1": "enqueued", "zz": None}
    events.write(conn, "x", [dict(batch[0], k="executing", w="worker-1"),
                             dict(batch[1], k="error", r="2"), dict(batch[2], k="error", r="0")])
    assert events.states(conn, "x", ["t0", "t1", "t2"]) == {"t0": "executing", "t1": "retrying",
                                                           "t2": "error"}
    assert conn.hgetall(events.keys("x")["busy"]) == {b"worker-1@1": b"t0|noop|0.0|1"}
    events.clear(conn, "x")
    assert events.read(conn, "x") == []


def test_worker_events_are_batched_but_keep_their_times(clean_lab):
    handles = clean_lab.enqueue_many("noop", 200)
    assert clean_lab.wait(handles, 20)
    evs = clean_lab.events()
    by_task = {}
    for e in evs:
        by_task.setdefault(e.task_id, {})[e.kind] = e
    assert len(by_task) == 200
    for kinds in by_task.values():
        assert kinds["enqueued"].time <= kinds["executing"].time <= kinds["complete"].time
        assert kinds["executing"].worker in ("worker-1", "worker-2")
        assert kinds["complete"].pid == clean_lab.status()["consumer"]
