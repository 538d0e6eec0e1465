"""Mutation score per pure-logic module, from ``mutmut results`` (run ``mutmut run`` first).

Usage: ``.venv/bin/python benchmarks/mutation_score.py`` (prints a Markdown table), or
``... --survivors`` to list the surviving mutants of the scored functions.
Scope: what issue 15 calls the pure logic. Whole modules for config, backoff, stats and the
checks' shared helpers; only the argument validation of ``tasks`` and the pure record
builders/parsers of ``events`` (the rest of those modules talks to a live server).
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

SCOPE = {
    "labapp.config": None,  # None: every function of the module
    "labapp.backoff": None,
    "labapp.tasks": {"validate", "Param.check", "signature"},
    "labapp.events": {"keys", "Event.terminal", "_short", "build_fields", "_decode", "parse",
                      "parse_busy"},
    "labapp.stats": None,
    "labapp.checks._common": None,
}
survivors: list[str] = []
LINE = re.compile(r"^\s*(?P<mod>[\w.]+)\.x_?(?P<fn>[^\s]+?)__mutmut_\d+: (?P<status>.+)$")


def scored(root: Path) -> dict[str, Counter]:
    out = subprocess.run([str(root / ".venv/bin/mutmut"), "results", "--all", "true"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    tally: dict[str, Counter] = defaultdict(Counter)
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        fn = m["fn"].replace("ǁ", ".").strip(".")
        scope = SCOPE.get(m["mod"], ())
        if scope is None or fn in scope:
            tally[m["mod"]][m["status"]] += 1
            if m["status"] != "killed":
                survivors.append(line.strip())
    return tally


def main() -> None:
    tally = scored(Path(__file__).resolve().parents[1])
    if "--survivors" in sys.argv:
        print("\n".join(survivors))
        return
    print("| module | mutants | killed | survived | no tests | timeouts | score |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mod in SCOPE:
        c = tally[mod]
        total = sum(v for k, v in c.items())
        killed = c["killed"]
        print(f"| {mod} | {total} | {killed} | {c['survived']} | {c['no tests']} | {c['timeout']} "
              f"| {100 * killed / total:.0f} % |" if total else f"| {mod} | 0 | | | | | |")


if __name__ == "__main__":
    main()
