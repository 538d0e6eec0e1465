"""The checks' shared verdict helpers (pure): which learner input passes, which hint they give."""
import types

import pytest
from huey import MemoryHuey

from labapp.checks import _common as common
from labapp.checks._common import NotYet
from labapp.config import ConfigError


def _hint(fn, *args):
    with pytest.raises(NotYet) as info:
        fn(*args)
    return info.value.hint


def test_not_yet_carries_hint_and_details():
    e = NotYet("try again", measured=3)
    assert (str(e), e.hint, e.details) == ("try again", "try again", {"measured": 3})


def test_exercise_registers_the_check(monkeypatch):
    monkeypatch.setattr(common, "EXERCISES", {})

    def run(lab):
        return "ok", {}
    assert common.exercise("99", "99_x.ipynb", "check('99')")(run) is run
    assert common.EXERCISES == {"99": common.Exercise("99", "99_x.ipynb", "check('99')", run)}


@pytest.mark.parametrize("value, unsolved", [(None, True), (..., True), (0, False), ("", False),
                                             ([], False)])
def test_unsolved_placeholders(value, unsolved):
    assert common.unsolved(value) is unsolved


def test_require_function():
    assert common.require_function("f", len, "check(f)") is len
    assert _hint(common.require_function, "f", None, "check(f)") == (
        "f is not defined yet: write it in the '# Your code here' cell, run that cell, "
        "then run check(f)")
    assert _hint(common.require_function, "f", 3, "check(f)") == (
        "f should be a function, got int: pass the function itself, as in check(f)")


def test_call_passes_results_and_turns_errors_into_hints():
    assert common.call("f", lambda a, b: a + b, 2, 3) == 5

    def stub():
        raise NotImplementedError

    def broken():
        raise KeyError("k")

    def not_yet():
        raise NotYet("own hint")

    def interrupted():
        raise KeyboardInterrupt
    assert _hint(common.call, "f()", stub) == f"f() still raises NotImplementedError: {common.STUB_HINT}"
    assert _hint(common.call, "f()", broken) == "f() raised KeyError: 'k'"
    assert _hint(common.call, "f()", not_yet) == "own hint"
    with pytest.raises(KeyboardInterrupt):
        common.call("f()", interrupted)


class _Lab:
    """Just what load_module uses of a Lab."""

    def __init__(self, load=None, workers=2, worker_type="thread"):
        self._load = load
        self.config = types.SimpleNamespace(workers=workers, worker_type=worker_type)
        self.scaled: list[tuple[int, str]] = []

    def load_tasks(self, module):
        assert module == "mytasks"
        return self._load(module)

    def scale(self, count, worker_type="thread"):
        self.scaled.append((count, worker_type))
        self.config = types.SimpleNamespace(workers=count, worker_type=worker_type)


def test_load_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _hint(common.load_module, _Lab(), "mytasks") == (
        "there is no mytasks.py next to this notebook yet: run the %%writefile mytasks.py cell first")
    (tmp_path / "mytasks.py").write_text("")
    loaded = types.SimpleNamespace(remind=1)
    assert common.load_module(_Lab(lambda m: loaded), "mytasks", "remind") is loaded

    def bad_config(module):
        raise ConfigError("say what to do")

    def bad_import(module):
        raise SyntaxError("invalid syntax")
    assert _hint(common.load_module, _Lab(bad_config), "mytasks") == "say what to do"
    assert _hint(common.load_module, _Lab(bad_import), "mytasks") == (
        "importing mytasks.py failed with SyntaxError: invalid syntax")
    assert _hint(common.load_module, _Lab(lambda m: loaded), "mytasks", "remind", "other") == (
        "mytasks.py defines no other: write it in the %%writefile cell")


def test_require_task():
    huey = MemoryHuey("units")

    @huey.task()
    def job():
        return 1
    assert common.require_task("m", job, "job") is job
    assert _hint(common.require_task, "m", len, "job") == (
        "m.job is a plain builtin_function_or_method, not a task: decorate it with "
        "@huey.task() so calling it enqueues a job")


def _ev(task_id, kind, detail=""):
    return types.SimpleNamespace(task_id=task_id, kind=kind, detail=detail)


def test_event_helpers():
    evs = [_ev("a", "enqueued"), _ev("b", "enqueued"), _ev("a", "error", "E1"),
           _ev("a", "error", "E2"), _ev("a", "complete")]
    grouped = common.by_task(evs)
    assert grouped == {"a": [evs[0], evs[2], evs[3], evs[4]], "b": [evs[1]]}
    assert common.completed(grouped["a"]) and not common.completed(grouped["b"])
    assert common.first_error(grouped["a"]) == "E1"
    assert common.first_error(grouped["b"]) == ""


def test_failure_hint():
    assert common.failure_hint("NotImplementedError: stub") == (
        f"NotImplementedError (still the stub): {common.STUB_HINT}")
    assert common.failure_hint("ValueError: x") == "ValueError: x"
    assert common.failure_hint("") == "unknown error"


def test_token():
    a, b = common.token(), common.token()
    assert len(a) == 8 and int(a, 16) >= 0 and a != b


@pytest.mark.parametrize("seconds, fine, text", [
    (0.0126, True, "12.6 ms"), (0.0126, False, "13 ms"), (0.0994, True, "99.4 ms"),
    (0.0995, True, "100 ms"), (0.803, True, "803 ms"), (0.9994, True, "999 ms"),
    (0.9995, True, "1.00 s"), (2, True, "2.00 s"), (1.256, False, "1.26 s"),
    (float("nan"), True, "n/a")])
def test_one_duration_format(seconds, fine, text):
    from labapp.units import duration
    assert duration(seconds, fine=fine) == text
