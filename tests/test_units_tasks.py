"""Task argument validation (pure): exact messages, edges of every bound, known results."""
import pytest

from labapp import tasks
from labapp.tasks import Param


def test_known_results_of_the_pure_tasks():
    # i*i % 7 for i = 0..9: 0 1 4 2 2 4 1 0 1 4 -> 19 (worked out by hand)
    assert tasks.TASKS["cpu"].call_local(n=10) == 19
    assert tasks.TASKS["cpu"].call_local(n=1) == 0
    assert tasks.TASKS["send_email"].call_local(to="a@b", seconds=0) == "sent to a@b"


def test_none_means_every_default():
    assert tasks.validate("record", None) == ({"seq": 0, "seconds": 0.0}, {})


def test_unknown_task_lists_the_choices_sorted():
    with pytest.raises(LookupError) as info:
        tasks.validate("nope", {})
    names = ", ".join(sorted(tasks.SPECS))
    assert str(info.value) == f"unknown task 'nope': choose one of {names}"
    assert names.startswith("cpu, flaky, flaky_jitter, noop, record")


def test_unknown_parameter_lists_the_allowed_ones():
    with pytest.raises(ValueError) as info:
        tasks.validate("sleep", {"zz": 1, "aa": 2})
    assert str(info.value) == ("sleep: unknown parameter 'aa' "
                               "(allowed: seconds, retries, retry_delay, retry_backoff)")


def test_not_an_object_message():
    with pytest.raises(ValueError) as info:
        tasks.validate("noop", [1])
    assert str(info.value) == "noop: send a JSON object of parameters, e.g. {}"


@pytest.mark.parametrize("task, params, message", [
    ("sleep", {"seconds": "1"}, "sleep: seconds must be a float, got str"),
    ("sleep", {"seconds": 30.5}, "sleep: seconds=30.5 is out of range (0.0 to 30.0)"),
    ("sleep", {"seconds": 10 ** 400}, "sleep: seconds is out of range (0.0 to 30.0)"),
    ("cpu", {"n": True}, "cpu: n must be a int, got bool"),
    ("noop", {"retries": 11}, "noop: retries=11 is out of range (0 to 10)"),
    ("noop", {"retry_delay": "x"}, "noop: retry_delay must be a float, got str"),
    ("flaky", {"key": "a b"}, r"flaky: key must match [A-Za-z0-9_.:-]{1,64}"),
])
def test_rejection_messages_name_task_field_and_range(task, params, message):
    with pytest.raises(ValueError) as info:
        tasks.validate(task, params)
    assert str(info.value) == message


@pytest.mark.parametrize("task, field, low, high", [
    ("sleep", "seconds", 0.0, 30.0), ("cpu", "n", 1, 50_000_000), ("flaky", "fail_times", 0, 20),
    ("noop", "retries", 0, 10), ("noop", "retry_backoff", 0.0, 4.0)])
def test_bounds_are_inclusive(task, field, low, high):
    for value in (low, high):
        args, options = tasks.validate(task, {field: value})
        assert {**args, **options}[field] == value


def test_ints_become_floats_for_float_fields():
    args, _ = tasks.validate("sleep", {"seconds": 2})
    assert args == {"seconds": 2.0} and type(args["seconds"]) is float


def test_a_string_without_pattern_is_bounded_to_200_chars():
    p = Param(str, "")
    assert p.check("t", "s", "x" * 200) == "x" * 200
    with pytest.raises(ValueError, match=r"^t: s must match None$"):
        p.check("t", "s", "x" * 201)


def test_signature_carries_arguments_and_options():
    sig = tasks.signature("flaky", {"key": "k1", "retries": 2, "retry_delay": 1})
    assert sig.name.endswith("flaky")
    assert sig.kwargs == {"key": "k1", "fail_times": 1}
    assert (sig.retries, sig.retry_delay) == (2, 1.0)
