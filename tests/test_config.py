"""LabConfig: defaults, environment, and one-line errors for every bad setting."""
from pathlib import Path

import pytest

from labapp.config import ConfigError, LabConfig, check_redis_url


def test_defaults_are_small_and_unique_per_process():
    cfg = LabConfig()
    assert (cfg.workers, cfg.worker_type, cfg.web_threads) == (2, "thread", 4)
    assert cfg.name.startswith("lab") and not cfg.external


@pytest.mark.parametrize("field,value,fragment", [
    ("workers", -1, "out of range"),
    ("workers", 17, "out of range"),
    ("workers", 2.5, "whole number"),
    ("workers", True, "whole number"),
    ("web_threads", 0, "out of range"),
    ("worker_type", "greenlet", "not known"),
    ("name", "Bad Name", "not allowed"),
    ("name", "", "not allowed"),
    ("web_port", 70000, "out of range"),
    ("redis_url", "valkey+unix:///tmp/x.sock", "redis-py"),
    ("redis_url", "http://localhost", "must start with"),
    ("redis_url", "redis://:notaport", "bad port"),
    ("task_modules", ("my tasks",), "importable"),
])
def test_bad_settings_raise_one_line(field, value, fragment):
    with pytest.raises(ConfigError) as info:
        LabConfig(**{field: value})
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_environment_is_read_and_arguments_win():
    env = {"LAB_WORKERS": "3", "LAB_WORKER_TYPE": "process", "REDIS_URL": "redis://127.0.0.1:6379/2"}
    cfg = LabConfig.from_env(env)
    assert (cfg.workers, cfg.worker_type, cfg.redis_url) == (3, "process", env["REDIS_URL"])
    assert LabConfig.from_env(env, workers=1).workers == 1


@pytest.mark.parametrize("var", ["LAB_WORKERS", "LAB_WEB_THREADS"])
def test_bad_environment_variable_says_what_to_do(var):
    with pytest.raises(ConfigError, match=f"{var}='many'.*unset {var}"):
        LabConfig.from_env({var: "many"})


def test_run_dir_too_long_for_a_unix_socket():
    with pytest.raises(ConfigError, match="LAB_RUN_DIR"):
        LabConfig(run_root=Path("/tmp/" + "x" * 120))


def test_external_url_needs_no_socket_path():
    cfg = LabConfig(run_root=Path("/tmp/" + "x" * 120), redis_url="redis://127.0.0.1:6379/0")
    assert cfg.external


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "unix:///tmp/r.sock?db=0",
                                 "rediss://h:6380"])
def test_good_urls_pass(url):
    assert check_redis_url(url) == url
