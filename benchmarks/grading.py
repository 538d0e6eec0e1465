"""Grading throughput: notebooks graded per minute with ``--jobs 1`` and ``--jobs 2``.

    python benchmarks/grading.py [--timeout 20] [--json out.json]

The class: 12 mixed submissions, the six of ``tests/data/class`` (one loops until its
timeout, one kills its kernel, one leaves a process behind) and the first six solution
notebooks. Each is graded in its own sandbox when bubblewrap works here (the output says
which). Both runs grade the same class from scratch; the grades of the two runs must match.
A shared or busy machine lowers both figures; compare them within one run.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from labapp import grader
from labapp import sandbox

ROOT = Path(__file__).resolve().parents[1]


def make_class(folder: Path) -> int:
    """Copy the 12 submissions into ``folder``; returns how many."""
    sources = sorted((ROOT / "tests" / "data" / "class").glob("*.ipynb"))
    sources += sorted((ROOT / "solutions").glob("*.ipynb"))[:6]
    for path in sources:
        shutil.copy(path, folder / path.name)
    return len(sources)


def main(argv: list[str] | None = None) -> int:
    """Grade the class with 1 then 2 jobs; print notebooks per minute for each."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per notebook")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    boxed, why = sandbox.availability()
    print(f"sandbox: {'bubblewrap' if boxed else 'none (' + why + ')'}", flush=True)
    figures: dict[str, float] = {}
    csvs = {}
    with tempfile.TemporaryDirectory(prefix="qlg-bench-") as tmp:
        subs = Path(tmp) / "class"
        subs.mkdir()
        count = make_class(subs)
        for jobs in (1, 2):
            out = Path(tmp) / f"jobs{jobs}" / "grades.csv"
            start = time.monotonic()
            grader.grade(subs, out=out, timeout=args.timeout, progress=None, jobs=jobs,
                         resume=False)
            took = time.monotonic() - start
            figures[f"jobs{jobs}_per_min"] = round(count / took * 60, 2)
            figures[f"jobs{jobs}_s"] = round(took, 1)
            csvs[jobs] = out.read_text()
            print(f"--jobs {jobs}: {count} notebooks in {took:.0f} s = "
                  f"{count / took * 60:.1f} notebooks/min", flush=True)
    same = csvs[1] == csvs[2]
    print(f"speed-up with 2 jobs: {figures['jobs2_per_min'] / figures['jobs1_per_min']:.2f}x; "
          f"grades {'identical' if same else 'DIFFER'} between the two runs")
    if args.json:
        args.json.write_text(json.dumps({**figures, "notebooks": count, "identical": same,
                                         "sandbox": boxed}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
