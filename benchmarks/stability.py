"""How often each experiment, run exactly as its notebook runs it, teaches the notebook's lesson.

    python benchmarks/stability.py [--runs 5] [--only NAME ...] [--json benchmarks/stability.json]

Every experiment module that a notebook draws a lesson from exposes ``notebook_sized(lab)``
(or ``notebook_sized_<lesson>``), which runs it in the notebook's configuration, and its result
a ``teaches_<lesson>`` property (or ``teaches_lesson``). This script runs each of them
``--runs`` times on every CPU this process may use, then again in a child process pinned to
one CPU (``taskset -c 0``, as on Binder), and writes
``{"experiment": {"2cpu": fraction, "1cpu": fraction}}``. The goal is 1.0 everywhere a
notebook states a lesson. Each configuration starts its own lab (2 thread workers).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from labapp import Lab  # noqa: E402
from labapp.config import available_cpus  # noqa: E402

HERE = Path(__file__).resolve().parent
# name → (module, runner, lesson property). Add a row when a notebook states a new lesson.
LESSONS: dict[str, tuple[str, str, str]] = {}


def discover() -> dict[str, tuple[str, str, str]]:
    """Every ``notebook_sized*`` runner in ``labapp.experiments`` with its lesson property."""
    import labapp.experiments as pkg
    found = dict(LESSONS)
    for path in sorted(Path(pkg.__file__).parent.glob("[a-z]*.py")):
        module = importlib.import_module(f"labapp.experiments.{path.stem}")
        for attr in sorted(vars(module)):
            if attr == "notebook_sized" or attr.startswith("notebook_sized_"):
                lesson = attr.removeprefix("notebook_sized").lstrip("_")
                name = f"{path.stem}.{lesson}" if lesson else path.stem
                found.setdefault(name, (module.__name__, attr,
                                        f"teaches_{lesson}" if lesson else "teaches_lesson"))
    return found


def run_here(names: list[str], runs: int) -> dict[str, float | str]:
    """Run each lesson ``runs`` times in this process; the share of runs that taught it."""
    lessons = discover()
    out: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="qls-", dir="/tmp") as root:
        lab = Lab.start(workers=2, name=f"stab{os.getpid()}", run_root=root, quiet=True)
        try:
            for name in names or list(lessons):
                module, runner, prop = lessons[name]
                fn = getattr(importlib.import_module(module), runner)
                held, t0 = 0, time.perf_counter()
                try:
                    for _ in range(runs):
                        lab.reset()
                        result = fn(lab)
                        held += bool(getattr(result, prop if hasattr(result, prop) else "teaches_lesson"))
                except Exception as exc:  # noqa: BLE001 - report and go on with the others
                    out[name] = f"failed: {type(exc).__name__}: {exc}".splitlines()[0][:200]
                else:
                    out[name] = held / runs
                print(f"  [{available_cpus()} cpu] {name}: {out[name]} "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        finally:
            lab.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per experiment and CPU setting (default 5)")
    parser.add_argument("--only", nargs="*", default=[], metavar="NAME",
                        help="only these lessons (default: all; --list shows them)")
    parser.add_argument("--list", action="store_true", help="list the lessons and exit")
    parser.add_argument("--json", type=Path, default=HERE / "stability.json",
                        help="where to write the table (default benchmarks/stability.json)")
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)  # the pinned child
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    lessons = discover()
    if args.list:
        print("\n".join(lessons))
        return 0
    unknown = [n for n in args.only if n not in lessons]
    if unknown:
        parser.error(f"unknown lesson(s) {', '.join(unknown)}: see --list")
    if args.here:
        print(json.dumps(run_here(args.only, args.runs)))
        return 0
    if not shutil.which("taskset"):
        parser.error("the one-CPU runs need taskset (util-linux): install it and run again")
    print(f"{len(args.only or lessons)} lessons × {args.runs} runs on {available_cpus()} CPUs, "
          "then pinned to one CPU", flush=True)
    many = run_here(args.only, args.runs)
    child = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--here",
                            "--runs", str(args.runs), "--only", *args.only],
                           stdout=subprocess.PIPE, text=True, check=True)
    one = json.loads(child.stdout.strip().splitlines()[-1])
    table = {name: {"2cpu": many[name], "1cpu": one[name]} for name in many}
    args.json.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    width = max(map(len, table), default=10)
    print(f"\n{'lesson':<{width}}  2 cpu  1 cpu")
    for name, row in table.items():
        cells = [f"{v:5.0%}" if isinstance(v, float) else v for v in (row["2cpu"], row["1cpu"])]
        print(f"{name:<{width}}  {cells[0]}  {cells[1]}")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
