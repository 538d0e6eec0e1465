"""The labapp command: --help everywhere, one-line errors, status/stop/doctor."""
import subprocess
import sys

import pytest

from labapp import procs
from labapp.cli import build_parser, main

COMMANDS = ["start", "status", "stop", "worker", "doctor", "grade", "build-exercises",
            "predictions"]


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "labapp", *args], capture_output=True, text=True,
                          timeout=60, **kw)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main(([command] if command else []) + ["--help"])
    assert info.value.code == 0
    assert "usage: labapp" in capsys.readouterr().out


def test_every_command_is_listed():
    subparsers = build_parser()._subparsers._group_actions[0].choices
    assert sorted(subparsers) == sorted(COMMANDS)


@pytest.mark.parametrize("args,fragment", [
    (["start", "-w", "99"], "out of range: use 0 to 16"),
    (["start", "-k", "fiber"], "invalid choice"),
    (["worker", "--name", "x", "--redis-url", "http://x"], "must start with redis://"),
    (["worker", "--name", "x"], "needs --redis-url"),
    (["nope"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_message(args, fragment):
    out = run(*args, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and fragment in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_environment_variable():
    out = run("status", env={"PATH": "/usr/bin:/bin", "LAB_WORKERS": "lots"})
    assert out.returncode == 2 and "LAB_WORKERS='lots'" in out.stderr


def test_worker_against_a_dead_server():
    out = run("worker", "--name", "x", "--redis-url", "redis://127.0.0.1:1/0")
    assert out.returncode == 2 and "no server answers" in out.stderr


def test_doctor_passes_here(run_root):
    out = run("--run-root", str(run_root), "doctor")
    assert out.returncode == 0, out.stdout
    assert "everything looks fine" in out.stdout


def test_status_and_stop(make_lab, run_root, capsys):
    lab = make_lab(workers=0, name="cli_seen")
    assert main(["--run-root", str(run_root), "status"]) == 0
    assert "cli_seen: running" in capsys.readouterr().out
    assert main(["--run-root", str(run_root), "stop", "cli_seen"]) == 0
    assert procs.wait_until(lambda: not lab.healthy(), 5)
    assert main(["--run-root", str(run_root), "stop", "ghost"]) == 1
    assert "no lab named 'ghost'" in capsys.readouterr().err
