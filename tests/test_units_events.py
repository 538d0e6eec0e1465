"""Event records (pure): the fields written for each signal, and parsing them back."""
import os
import socket
import types

import psutil
import pytest

from labapp import events
from labapp.events import Busy, Event


def _task(**kw):
    base = dict(id="t1", name="sleep", retries=0, data=None)
    base.update(kw)
    return types.SimpleNamespace(**base)


def test_fields_of_a_plain_signal_are_exact(monkeypatch):
    monkeypatch.setenv("LAB_ROLE", "notebook")
    started = repr(psutil.Process().create_time())
    f = events.build_fields("complete", _task(retries=None), exc=ValueError("ignored"), now=3.25)
    assert f == {"k": "complete", "i": "t1", "n": "sleep", "w": "notebook",
                 "p": str(os.getpid()), "t": "3.25", "r": "0", "d": "",
                 "c": f"{started}|{socket.gethostname()}"}


def test_time_defaults_to_now(monkeypatch):
    monkeypatch.setattr(events.time, "time", lambda: 99.5)
    assert events.build_fields("executing", _task())["t"] == "99.5"


def test_error_without_exception_and_enqueued_without_data_have_no_detail():
    assert events.build_fields("error", _task(), exc=None, now=1.0)["d"] == ""
    assert events.build_fields("enqueued", _task(data=None), now=1.0)["d"] == ""
    f = events.build_fields("enqueued", _task(data=((1, "a"), {"k": None})), now=1.0)
    assert f["d"] == "1, 'a', k=None"


def test_long_exception_text_is_cut_at_the_limit():
    f = events.build_fields("error", _task(), exc=RuntimeError("y" * 300), now=1.0)
    assert f["d"] == ("RuntimeError: " + "y" * 300)[:120] and len(f["d"]) == 120


def test_short_keeps_120_characters_and_marks_a_cut():
    assert events._short("x" * 118) == "'" + "x" * 118 + "'"  # repr: exactly 120 characters
    assert events._short("x" * 119) == "'" + "x" * 118 + "…"  # 121: 119 kept, then the mark


def test_parse_builds_the_event_exactly():
    raw = {b"k": b"error", b"i": b"t9", b"n": b"flaky", b"w": b"worker-2", b"p": b"4321",
           b"t": b"17.5", b"r": b"3", b"d": b"Transient\xff"}
    assert events.parse(b"5-1", raw) == Event("5-1", "error", "t9", "flaky", "worker-2", 4321,
                                             17.5, 3, "Transient\ufffd")
    del raw[b"d"]
    assert events.parse("6-0", raw).detail == ""
    assert events.parse("6-0", raw).id == "6-0"


def test_parse_busy_with_and_without_process_tag():
    raw = {b"worker-1@12": b"t1|sleep|10.5|12",
           b"a@b@13": b"t2|cpu|11.0|13|1700.25|hostx",
           b"w@14": b"t3|noop|1.0|14|1.0"}  # a tag of one part: not a tag
    assert events.parse_busy(raw) == [
        Busy("worker-1", "t1", "sleep", 10.5, 12, None, None),
        Busy("a@b", "t2", "cpu", 11.0, 13, 1700.25, "hostx"),
        Busy("w", "t3", "noop", 1.0, 14, None, None)]


def test_lost_means_dead_here_never_unknown_elsewhere():
    me = psutil.Process()
    here = socket.gethostname()
    assert not Busy("w", "t", "n", 0.0, me.pid, me.create_time(), here).lost
    assert Busy("w", "t", "n", 0.0, me.pid, me.create_time() - 5, here).lost  # pid reused
    assert not Busy("w", "t", "n", 0.0, me.pid, 1.0, "another-host").lost
    assert not Busy("w", "t", "n", 0.0, me.pid).lost


@pytest.mark.parametrize("kind, retries, terminal", [
    ("expired", 1, True), ("canceled", 1, True), ("interrupted", 1, True), ("locked", 1, False), ("locked", 0, True),
    ("error", 1, False), ("timeout", 0, False), ("scheduled", 0, False)])
def test_terminal_kinds(kind, retries, terminal):
    assert Event("1-0", kind, "t", "n", "w", 1, 0.0, retries).terminal is terminal


def test_keys_are_exact():
    assert events.keys("demo") == {"stream": "lab.demo.events", "state": "lab.demo.state",
                                   "counts": "lab.demo.counts", "busy": "lab.demo.busy"}
