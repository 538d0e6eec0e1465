"""Task specs (pure): what HTTP bodies and lab.enqueue may ask for."""
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
    assert tasks.TASKS["cpu"].call_local(n=10) == sum(i * i % 7 for i in range(10))
    assert tasks.TASKS["sleep"].call_local(seconds=0) == 0
