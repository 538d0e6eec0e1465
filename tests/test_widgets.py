"""Widgets driven through their Python API (no browser) on real labs: what a learner sees changes."""
from __future__ import annotations

import html
import re
import threading
import time

import pytest

from labapp import stats
from labapp import widgets
from labapp.widgets import EnqueuePanel, Monitor, Predict, StackDiagram, WorkerControl
from tests.helpers import poll


def shown(widget) -> str:
    """The text a learner reads in an HTML widget (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


# --------------------------------------------------------------------------- EnqueuePanel
def test_enqueue_panel_shows_a_task_go_from_pending_to_complete(clean_lab):
    panel = EnqueuePanel(clean_lab, "sleep", seconds=0.3)
    assert "no task enqueued yet" in panel.table.value
    panel.button.click()
    (task_id,) = panel.ids
    assert panel.states[task_id] in ("pending", "executing")
    seen = set()

    def finished():
        seen.add(panel.states[task_id])
        return panel.states[task_id] == "complete"
    poll(finished, 10, 0.02)
    assert "executing" in seen or "pending" in seen
    assert panel.wait(5)
    row = panel.table.value
    assert "ql-state-complete" in row and task_id[:8] in row and "worker-" in row
    assert "executing +" in row and "complete +" in row      # the timeline
    kinds = [e.kind for e in clean_lab.events() if e.task_id == task_id]
    assert kinds == ["enqueued", "executing", "complete"]
    assert "1 enqueued, 1 complete" in repr(panel)


def test_enqueue_panel_count_and_failing_task(clean_lab):
    panel = EnqueuePanel(clean_lab, "flaky", key="widget_fail", fail_times=5)
    panel.count.value = 3
    ids = panel.enqueue()
    assert len(ids) == 3
    assert panel.wait(15)
    states = panel.states
    assert list(states.values()).count("error") == 3 - list(states.values()).count("complete")
    assert "error" in states.values()          # the first attempts fail (fail_times=5)
    assert "TransientError" in panel.table.value


def test_enqueue_panel_rebuilds_inputs_for_the_task(clean_lab):
    panel = EnqueuePanel(clean_lab)
    panel.task.value = "cpu"
    assert list(panel.inputs) == ["n"] and panel.inputs["n"].value == 1_000_000
    panel.task.value = "noop"
    assert panel.inputs == {} and panel.params() == {}


@pytest.mark.parametrize("setup,fragment", [
    (lambda p: setattr(p.inputs["seconds"], "value", 999.0), "out of range"),
    (lambda p: setattr(p.inputs["seconds"], "value", -1.0), "out of range"),
    (lambda p: setattr(p.count, "value", 0), "count=0 must be from 1"),
    (lambda p: setattr(p.count, "value", 10_000), "must be from 1 to 100"),
    (lambda p: setattr(p.options["retries"], "value", 99), "out of range"),
])
def test_enqueue_panel_bad_input_shows_one_line_in_place(clean_lab, setup, fragment):
    panel = EnqueuePanel(clean_lab, "sleep", seconds=0.1)
    setup(panel)
    cursor = clean_lab.cursor()
    assert panel.button.click() is None and panel.ids == []
    assert "ql-error" in panel.message.value and fragment in panel.message.value
    assert "click Enqueue again" in shown(panel.message)
    assert "Traceback" not in panel.message.value and "<br" not in panel.message.value
    assert clean_lab.events(since=cursor) == []      # nothing was sent


def test_enqueue_panel_bad_text_parameter(clean_lab):
    panel = EnqueuePanel(clean_lab, "flaky")
    panel.inputs["key"].value = "../etc/passwd"
    assert panel.enqueue() == []
    assert "must match" in shown(panel.message)


def test_enqueue_panel_unknown_task_and_parameter_explained(clean_lab):
    panel = EnqueuePanel(clean_lab, "sleeep")
    assert panel.task.value == "sleep" and "unknown task 'sleeep'" in shown(panel.message)
    panel = EnqueuePanel(clean_lab, "sleep", minutes=3)
    assert "has no parameter 'minutes'" in shown(panel.message)
    panel = EnqueuePanel(clean_lab, "sleep", seconds="two")
    assert "seconds='two' is not a float" in shown(panel.message)
    assert panel.inputs["seconds"].value == 1.0


def test_widgets_explain_a_stopped_lab_and_follow_a_restart(make_lab):
    lab = make_lab(workers=1)
    panel, control = EnqueuePanel(lab, "noop"), WorkerControl(lab)
    lab.stop()
    assert panel.enqueue() == []
    assert "is stopped" in shown(panel.message) and "Lab.start()" in shown(panel.message)
    assert control.apply() is False and "is stopped" in shown(control.message)
    assert control.kill() is None and "is stopped" in shown(control.message)
    again = lab.restart(quiet=True)          # re-running the first cell: same name, new Lab
    assert again is not lab
    ids = panel.enqueue()
    assert ids and panel.wait(10) and panel.states[ids[0]] == "complete"
    assert panel.lab is again
    again.stop()


def test_enqueue_panel_timeline_shows_every_retry(clean_lab):
    panel = EnqueuePanel(clean_lab, "flaky", key="widget_retry", fail_times=2, retries=2)
    (task_id,) = panel.enqueue()
    assert panel.wait(15) and panel.states[task_id] == "complete"
    timeline = shown(panel.table)
    assert timeline.count("executing +") == 3, timeline      # three attempts, each shown
    assert "error (2 retries left)" in timeline and "error (1 retry left)" in timeline
    assert re.search(r"pending → executing \+\d+ ms → error \(2 retries left\)", timeline)


def test_enqueue_panel_shows_a_task_whose_worker_died_as_lost(make_lab):
    lab = make_lab(workers=1, worker_type="process")
    panel = EnqueuePanel(lab, "sleep", seconds=20)
    (task_id,) = panel.enqueue()
    poll(lambda: panel.states[task_id] == "executing", 10)
    lab.kill_worker(0)
    assert panel.wait(10), "a lost task counts as finished: it will never run again"
    assert panel.states[task_id] == "lost"
    text = shown(panel.table)
    assert "executing +" in text and "noticed lost +" in text and "worker process died" in text
    assert task_id in lab.lost_tasks()


def test_enqueue_panel_after_a_restart_has_no_blank_rows(make_lab):
    lab = make_lab(workers=0)                     # the task waits in the queue
    panel = EnqueuePanel(lab, "sleep", seconds=20)
    (old,) = panel.enqueue()
    lab.stop()
    poll(lambda: panel.states[old] == "lost", 10)
    assert "the lab stopped before 1 of these tasks finished" in shown(panel.message)
    again = lab.restart(quiet=True)
    try:
        again.scale(1)
        panel.inputs["seconds"].value = 0.1
        panel.count.value = 2
        new = panel.enqueue()
        assert panel.wait(10) and [panel.states[i] for i in new] == ["complete", "complete"]
        assert panel.states[old] == "lost"          # the old lab's task stays lost
        rows = re.findall(r'<tr class="ql-task".*?</tr>', panel.table.value)
        assert len(rows) == 3
        for row in rows:
            cells = [shown_text(c) for c in re.findall(r"<td>(.*?)</td>", row)]
            assert all(cells[:4]) and cells[4].startswith("pending"), cells   # nothing blank
    finally:
        again.stop()


def shown_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


# --------------------------------------------------------------------------- WorkerControl
def test_worker_control_says_so_when_the_lab_stops(make_lab):
    lab = make_lab(workers=1)
    control = WorkerControl(lab)
    assert "1 thread worker running" in shown(control.table)      # singular
    control.workers.value = 3
    control.worker_type.value = "process"
    assert control.apply()
    lab.stop()
    poll(lambda: "the lab is stopped" in shown(control.message), 10)
    assert "running" not in shown(control.message) and shown(control.table) == ""
    assert control.target.options == ()


def test_worker_control_scales_switches_type_and_kills(make_lab):
    lab = make_lab(workers=1)
    control = WorkerControl(lab)
    assert control.pids == lab.status()["workers"] and len(control.pids) == 1
    assert "worker-1" in control.table.value
    control.workers.value = 3
    control.worker_type.value = "process"
    control.apply_button.click()
    assert len(control.pids) == 3 and len(set(control.pids)) == 3   # separate processes
    assert lab.config.workers == 3 and lab.config.worker_type == "process"
    assert "restarted: 3 process workers" in shown(control.message)
    assert "3 process workers running" in shown(control.table)
    assert all(str(pid) in control.table.value for pid in control.pids)
    assert control.target.options == ("worker-1", "worker-2", "worker-3")

    before = control.pids
    control.target.value = "worker-2"
    control.kill_button.click()
    assert "killed worker-2" in shown(control.message)
    poll(lambda: "started a replacement" in shown(control.message), 10)   # measured, then said
    poll(lambda: len(control.pids) == 3 and control.pids != before, 10)   # huey replaced it
    after = control.pids
    assert before[1] not in after and before[0] in after and before[2] in after
    poll(lambda: str(after[1]) in control.table.value, 10)   # the display caught up


def test_worker_control_killing_thread_workers_says_all_died(make_lab):
    lab = make_lab(workers=2)
    control = WorkerControl(lab)
    consumer = lab.status()["consumer"]
    assert control.kill() == consumer
    assert "all 2 died" in shown(control.message) and "Apply" in shown(control.message)
    poll(lambda: control.pids == [], 10)
    assert control.apply() and len(control.pids) == 2


def test_worker_control_with_no_worker_explains(make_lab):
    lab = make_lab(workers=0)
    control = WorkerControl(lab)
    assert "no worker running" in control.table.value
    assert control.kill() is None
    assert "move the slider above 0" in shown(control.message)


# --------------------------------------------------------------------------- Monitor
def test_monitor_counts_move_and_it_stops_with_the_lab(make_lab):
    lab = make_lab(workers=2)
    monitor = Monitor(lab)
    try:
        assert monitor.running and monitor.snapshot["counts"] == {}
        assert "worker-1" in monitor.html.value and "idle" in monitor.html.value
        handles = lab.enqueue_many("sleep", 4, seconds=0.4)
        poll(lambda: len(monitor.snapshot["busy"]) == 2, 10)      # both workers busy
        assert "ql-state-running" in monitor.html.value
        poll(lambda: monitor.snapshot["counts"].get("complete") == 4, 15)
        assert lab.wait(handles, 1)
        assert 'data-metric="complete"><b>4</b>' in monitor.html.value
        assert "complete 4" in repr(monitor)
    finally:
        lab.stop()
    poll(lambda: not monitor._thread.is_alive(), 10)
    assert not monitor.running and "lab stopped" in shown(monitor.status)


def test_monitor_rates_use_the_time_actually_observed(make_lab):
    lab = make_lab(workers=2)
    monitor = Monitor(lab, start=False)
    handles = lab.enqueue_many("sleep", 40, seconds=0.02)
    assert lab.wait(handles, 30)
    snap = monitor.refresh()
    assert snap["done_recent"] == 40
    span = snap["rate_span_s"]
    assert 0 < span < stats.WINDOW, span                 # a burst, not the whole window
    assert snap["throughput_per_s"] == pytest.approx(40 / span, rel=0.02)
    note = shown(monitor.html)
    assert f"40 tasks finished ÷ {span:.1f} s of activity" in note
    assert "over the last 10 s" not in note


def test_observed_span_is_the_active_part_of_the_window():
    now = 1_000.0
    entry = lambda t: (f"{int(t * 1000)}-0".encode(), {})   # noqa: E731
    recent = [entry(now - 2.0), entry(now - 3.0)]           # newest first
    assert stats.observed_span(recent, now, working=False) == pytest.approx(1.0)
    assert stats.observed_span(recent, now, working=True) == pytest.approx(3.0)
    old = [entry(now - 1.0), entry(now - 60.0)]             # began before the window
    assert stats.observed_span(old, now, working=True) == pytest.approx(stats.WINDOW)
    assert stats.observed_span([], now, working=True) == 0.0


def test_monitor_is_throttled_and_idle_costs_nothing(make_lab):
    lab = make_lab(workers=2)
    monitor = Monitor(lab, interval=0.1, idle_wait=0.5)     # asks for 10 Hz: gets 2 Hz
    try:
        assert monitor.interval == widgets.MONITOR_MIN_INTERVAL
        start, t0 = monitor.updates, time.monotonic()
        handles = lab.enqueue_many("sleep", 120, seconds=0.02)   # > 1 s of steady events
        assert lab.wait(handles, 30)
        busy = time.monotonic() - t0
        redraws = monitor.updates - start
        assert busy > 1.0
        assert redraws <= busy / widgets.MONITOR_MIN_INTERVAL + 1.5, f"{redraws} in {busy:.1f} s"
        assert redraws >= 2                                       # but it did follow along
        # Idle: it sleeps in blocking reads of idle_wait (0.5 s), so at most ~2 redraws/s.
        poll(lambda: monitor.snapshot["counts"].get("complete") == 120, 10)
        idle_start, t1 = monitor.updates, time.monotonic()
        threading.Event().wait(2.0)      # measuring an idle period needs the time to pass
        idle = monitor.updates - idle_start
        assert idle <= (time.monotonic() - t1) / 0.5 + 1.5, f"{idle} redraws while idle"
    finally:
        monitor.stop()
    poll(lambda: not monitor._thread.is_alive(), 5)


def test_monitor_flags_a_lost_task(make_lab):
    lab = make_lab(workers=1, worker_type="process")
    monitor = Monitor(lab)
    try:
        handle = lab.enqueue("sleep", seconds=20)
        poll(lambda: monitor.snapshot["busy"], 10)
        lab.kill_worker(0)
        poll(lambda: monitor.snapshot["stuck"], 10)
        assert monitor.snapshot["stuck"][0]["task_id"] == handle.id
        assert monitor.snapshot["stuck"][0]["state"] == "lost"
        assert "ql-state-lost" in monitor.html.value and "ql-bad" in monitor.html.value
    finally:
        monitor.stop()


def test_a_new_monitor_replaces_the_old_one(make_lab):
    lab = make_lab(workers=1)
    first = Monitor(lab)
    second = Monitor(lab)
    assert not first.running and "newer Monitor" in shown(first.status)
    assert second.running
    second.stop()
    assert not second.running


# --------------------------------------------------------------------------- Predict
def _predict(lab, calls, qid="test.who"):
    def run():
        calls.append(1)
        handle = lab.enqueue("sleep", seconds=0.05)
        lab.wait(handle, 10)
        return next(e.worker for e in lab.events() if e.kind == "executing" and e.task_id == handle.id)

    return Predict("Who runs the task?", ["Flask", "a worker"], run=run, qid=qid,
                   truth=lambda worker: "a worker" if worker.startswith("worker-") else "Flask",
                   explain=lambda worker: f"measured: <b>{worker}</b> ran it",
                   default="a worker", auto=False)


def test_predict_shows_nothing_of_the_answer_before_the_commit(clean_lab):
    calls: list[int] = []
    p = _predict(clean_lab, calls)
    assert p.reveal_box.value == "" and p.message.value == "" and calls == []
    assert "pick an answer" in repr(p) and "worker-" not in repr(p)


def test_predict_commit_runs_and_judges_from_the_measurement(clean_lab):
    calls: list[int] = []
    p = _predict(clean_lab, calls)
    p.button.click()                               # nothing picked yet
    assert "pick an answer first" in shown(p.message) and calls == []
    p.choice.value = "a worker"
    p.choice.value = "Flask"                       # the learner changes their mind once
    p.button.click()
    assert calls == [1] and p.committed and p.answer == "Flask"
    assert p.choice.disabled and p.button.disabled
    assert "does not match your prediction" in p.reveal_box.value
    assert "This run supports <b>a worker</b>" in p.reveal_box.value
    assert "measured: <b>worker-" in p.reveal_box.value
    assert p.result.startswith("worker-") and calls == [1]     # no second run
    rec = p.record
    assert rec["qid"] == "test.who" and rec["answer"] == "Flask" and rec["measured"] == "a worker"
    assert rec["matched"] is False and rec["changed_selection"] is True and rec["selections"] == 2
    assert rec["auto"] is False and rec["committed_at"] <= rec["revealed_at"]
    assert rec in widgets.predict.RECORDS


def test_predict_a_matching_answer_is_told_so(clean_lab):
    p = _predict(clean_lab, [])
    assert p.commit("a worker") is True
    assert "Your prediction matches this run" in p.reveal_box.value
    assert p.record["matched"] is True and p.record["changed_selection"] is False


def test_predict_result_before_a_commit_records_no_prediction(clean_lab):
    calls: list[int] = []
    before = len(widgets.predict.RECORDS)
    p = _predict(clean_lab, calls)
    assert p.result.startswith("worker-") and calls == [1]
    assert p.answer is None and not p.committed and p.record is None
    assert "No prediction recorded" in p.reveal_box.value and "you predicted" not in p.reveal_box.value.lower()
    assert "no prediction recorded" in repr(p) and "your answer" not in repr(p)
    assert p.choice.disabled and p.button.disabled
    assert p.commit("Flask") is False and "re-run this cell" in shown(p.message)
    assert len(widgets.predict.RECORDS) == before


def test_predict_a_commit_after_the_reveal_was_seen_is_marked(clean_lab):
    first = _predict(clean_lab, [], qid="test.again")
    first.commit("Flask")
    again = _predict(clean_lab, [], qid="test.again")                # the learner re-runs the cell
    again.commit("a worker")
    assert first.record["after_reveal"] is False and again.record["after_reveal"] is True


def test_predict_auto_commits_on_display_only_when_asked(clean_lab, monkeypatch):
    calls: list[int] = []

    def run():
        calls.append(1)
        return 42
    monkeypatch.delenv(widgets.AUTO_ENV, raising=False)
    quiet = Predict("Q?", ["a", "b"], run=run, qid="test.q", truth=lambda r: "b",
                    explain=lambda r: f"got {r}", default="b")
    quiet._repr_mimebundle_()
    assert calls == [] and not quiet.committed     # nobody asked: nothing is committed
    monkeypatch.setenv(widgets.AUTO_ENV, "1")
    p = Predict("Q?", ["a", "b"], run=run, qid="test.q", truth=lambda r: "b",
                explain=lambda r: f"got {r}", default="b")
    assert calls == []                                # constructing does not run it
    bundle = p._repr_mimebundle_()
    assert calls == [1] and p.answer == "b" and "got 42" in bundle["text/plain"]
    assert "committed automatically" in bundle["text/plain"] and p.record["auto"] is True
    p._repr_mimebundle_()
    assert calls == [1]                               # displaying again does not re-run


def test_predict_failure_is_one_line_and_can_be_retried(clean_lab):
    attempts: list[int] = []

    def run():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("seconds=99 is out of range\nsecond line")
        return "ok"
    p = Predict("Q?", ["a", "b"], run=run, qid="test.q", truth=lambda r: None,
                explain=lambda r: r, auto=False)
    assert p.commit("a") is False
    assert "the experiment failed" in shown(p.message) and "second line" not in p.message.value
    assert "ql-error" in p.message.value and "Traceback" not in p.message.value
    assert p.button.description == "Run again" and not p.button.disabled
    p.button.click()
    assert p.result == "ok" and p.reveal_box.value.endswith("ok</div>") and len(attempts) == 2
    assert "settles neither answer" in p.reveal_box.value and p.record["matched"] is None


def test_predict_result_raises_a_clear_error_when_the_experiment_keeps_failing():
    def run():
        raise ConnectionError("no server")
    p = Predict("Q?", ["a", "b"], run=run, qid="test.q", truth=lambda r: None,
                explain=lambda r: r, auto=False)
    with pytest.raises(RuntimeError, match="failed: the queue's server is not reachable"):
        _ = p.result
    assert "failed:" in repr(p)


def test_predict_rejects_bad_definitions():
    ok = dict(run=lambda: 1, qid="test.q", truth=lambda r: "a", explain=lambda r: "")
    with pytest.raises(ValueError, match="not one of the choices"):
        Predict("Q?", ["a", "b"], default="c", **ok)
    with pytest.raises(ValueError, match="at least two"):
        Predict("Q?", ["a"], **ok)
    with pytest.raises(ValueError, match="qid="):
        Predict("Q?", ["a", "b"], **{**ok, "qid": "Bad Id!"})


# --------------------------------------------------------------------------- StackDiagram
def test_stack_diagram_shows_the_real_processes(lab):
    diagram = StackDiagram(lab)
    st = lab.status()
    text, page = repr(diagram), diagram._repr_html_()
    for pid in (st["web"], st["broker"], *st["workers"]):
        assert str(pid) in text and str(pid) in page
    assert lab.huey.storage.queue_key in text and lab.huey.storage.queue_key in page


# --------------------------------------------------------------------------- glyphs
def test_shown_text_uses_only_glyphs_of_dejavu_sans():
    """Debian's Chromium has no emoji font and matplotlib draws with DejaVu Sans: every
    non-ASCII character the widgets, the prediction summary, the plots, the web pages and
    the notebooks' cells show must exist in DejaVu Sans (else: a box)."""
    import json
    from pathlib import Path

    import matplotlib
    from matplotlib.ft2font import FT2Font

    root = Path(__file__).resolve().parents[1]
    font = FT2Font(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"))
    have = set(font.get_charmap())
    texts = {f.relative_to(root).as_posix(): f.read_text()
             for f in [*sorted((root / "labapp" / "widgets").glob("*.py")),
                       *sorted((root / "labapp" / "plots").glob("*.py")),
                       root / "labapp" / "predictions.py",
                       *sorted((root / "labapp" / "templates").glob("*.html"))]}
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            texts[f"{nb.name} cell {i}"] = "".join(cell["source"])
    assert len(texts) > 50 and "monitor.html" in " ".join(texts) and "latency.py" in " ".join(texts)
    missing = {(where, ch) for where, text in texts.items()
               for ch in text if ord(ch) > 127 and ord(ch) not in have}
    assert not missing, f"characters DejaVu Sans lacks (they render as boxes): {sorted(missing)}"
    assert 0x274C not in have   # the check can fail: an emoji cross (❌) is not in the font


# --------------------------------------------------------------------------- notebook 00's runs
def _who(pid, answered=0.004, seconds=0.5):
    from labapp.experiments.first_look import WhoRunsResult
    return WhoRunsResult(seconds=seconds, answered_s=answered, finished=True, pid=pid,
                         worker="worker-1" if pid == 30 else "web", web_pid=10, kernel_pid=20,
                         worker_pids=(30,))


def test_who_runs_conclusions_follow_the_numbers():
    ok = _who(30)
    assert ok.ran_in == "a worker" and ok.teaches_lesson
    assert "so a worker did the work" in " ".join(ok.conclusions())
    assert "did not wait for the work" in " ".join(ok.conclusions())
    web = _who(10)                                          # the opposite numbers flip it
    assert web.ran_in == "the Flask app" and not web.teaches_lesson
    assert "so the Flask app did the work" in " ".join(web.conclusions())
    slow = _who(30, answered=0.9)
    assert not slow.teaches_lesson and "no faster than the 0.5 s task" in " ".join(slow.conclusions())
    assert _who(None).ran_in is None and "no worker started" in _who(None).conclusions()[0]


def test_burst_conclusions_follow_the_numbers():
    from labapp.experiments.first_look import BurstResult
    parallel = BurstResult(0.5, 2, ((0, 0, 0.5), (0, 0, 0.5), (0, 0.5, 1.0), (0, 0.5, 1.0)), True)
    assert parallel.max_running == 2 and parallel.took_s == 1.0 and parallel.longest_wait_s == 0.5
    assert "At most 2 ran at the same moment" in " ".join(parallel.conclusions())
    serial = BurstResult(0.5, 2, ((0, 0, 0.5), (0, 0.5, 1.0), (0, 1.0, 1.5)), True)
    text = " ".join(serial.conclusions())
    assert serial.max_running == 1 and "Fewer tasks ran at once than there are workers" in text


def test_notebook_runs_measure_on_a_live_lab(clean_lab):
    from labapp.experiments import first_look
    who = first_look.notebook_sized(clean_lab)
    assert who.ran_in == "a worker" and who.pid in who.worker_pids and who.finished
    run = first_look.burst(clean_lab, count=4, seconds=0.1)
    assert len(run.spans) == 4 and 1 <= run.max_running <= 2 and run.finished


def test_predict_recommit_after_a_kernel_restart_is_marked_from_the_saved_notebook(
        clean_lab, tmp_path, monkeypatch):
    import nbformat

    from labapp import predictions
    first = _predict(clean_lab, [], qid="test.saved")
    first.commit("Flask")
    saved = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('Predict(..., qid="test.saved")')
    cell.outputs = [nbformat.v4.new_output("display_data", predictions.bundle(first._payload()))]
    saved.cells = [cell]
    path = tmp_path / "07_myth_busters.ipynb"
    nbformat.write(saved, path)
    monkeypatch.setattr(widgets.predict, "_REVEALED", set())      # a new kernel ...
    monkeypatch.setattr(widgets.predict, "RECORDS", [])
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))              # ... for the same notebook
    again = _predict(clean_lab, [], qid="test.saved")
    again.commit("a worker")
    assert again.record["after_reveal"] is True and again.record["notebook"] == path.name
    history = again._payload()["records"]
    assert [r["answer"] for r in history] == ["Flask", "a worker"]   # both kept in the output
    again.forget()
    assert again.record is None and widgets.predict.RECORDS == []
    assert again._payload()["records"] == [] and "forgotten" in shown(again.message)


def test_burst_without_workers_says_what_to_do(make_lab):
    from labapp.experiments import first_look
    lab = make_lab(workers=0)
    with pytest.raises(ValueError, match="no worker is running.*lab.scale"):
        first_look.burst(lab)
    assert lab.queue_length() == 0                      # nothing was enqueued
