"""Task specs and helpers (pure): what HTTP bodies and lab.enqueue may ask for; backoff."""

import pytest

from labapp import tasks


def test_defaults_fill_in():
    args, options = tasks.validate("sleep", {})
    assert args == {"seconds": 1.0} and options == {}


def test_ints_are_accepted_for_floats_and_options_pass():
    args, options = tasks.validate("flaky", {"fail_times": 2, "retries": 3, "retry_delay": 1})
    assert args == {"key": "flaky", "fail_times": 2}
    assert options == {"retries": 3, "retry_delay": 1.0}


@pytest.mark.parametrize("task,params,error,fragment", [
    ("nope", {}, LookupError, "unknown task"),
    ("sleep", "1", ValueError, "JSON object"),
    ("sleep", {"seconds": None}, ValueError, "must be a float"),
    ("cpu", {"n": 1.5}, ValueError, "must be a int"),
    ("cpu", {"n": 0}, ValueError, "out of range"),
    ("send_email", {"to": "not-an-address"}, ValueError, "must match"),
    ("record", {"seq": -1}, ValueError, "out of range"),
    ("noop", {"retry_backoff": 10}, ValueError, "out of range"),
])
def test_rejections(task, params, error, fragment):
    with pytest.raises(error, match=fragment):
        tasks.validate(task, params)


def test_every_demo_task_has_a_spec_and_a_docstring():
    assert set(tasks.TASKS) == set(tasks.SPECS)
    for name, wrapper in tasks.TASKS.items():
        assert wrapper.func.__doc__, name


def test_call_local_runs_pure_tasks():
    assert tasks.TASKS["cpu"].call_local(n=10) == 19  # i*i % 7 for i < 10: 0+1+4+2+2+4+1+0+1+4
    assert tasks.TASKS["sleep"].call_local(seconds=0) == 0


def test_flaky_jitter_spec_is_bounded_and_hides_the_context_argument():
    args, options = tasks.validate("flaky_jitter", {"fail_times": 2, "jitter": 1})
    assert args == {"key": "flaky", "fail_times": 2, "max_retries": 3, "base": 1.0,
                    "factor": 2.0, "jitter": 1.0, "seed": 0} and options == {}
    assert tasks.TASKS["flaky_jitter"].context  # Huey hands it its Task as ``task``
    with pytest.raises(ValueError, match="out of range"):
        tasks.validate("flaky_jitter", {"jitter": 2})
    with pytest.raises(ValueError, match="unknown parameter 'task'"):
        tasks.validate("flaky_jitter", {"task": None})
