"""Headline figures of the experiments, measured side by side in one run on this machine.

    python benchmarks/experiments.py [--quick] [--json benchmarks/results.json]
                                     [--png benchmarks/experiments.png]

Starts its own lab (2 thread workers, private server), runs: inline vs queued request
latency at d = 0.2 s with 8 concurrent clients on a 2-thread web pool; enqueue vs hello p50
from one sequential client; I/O drain rate vs the ideal W/d for W in 1, 2, 4, 8; Huey/RQ/Celery
no-op throughput; and the enqueue throughput cost of AOF ``appendfsync always``. Prints a
table, writes the numbers as JSON and the four panels as a PNG. A part that cannot run
(a missing module, an error) is reported as "not available" with the reason.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from matplotlib.figure import Figure  # noqa: E402

from labapp import Lab  # noqa: E402
from labapp.experiments.latency import latency  # noqa: E402
from labapp.experiments.scaling import ScalingResult  # noqa: E402
from labapp.experiments.scaling import scaling  # noqa: E402
from labapp.plots._style import colour  # noqa: E402
from labapp.plots._style import role  # noqa: E402
from labapp.plots._style import tidy  # noqa: E402

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
GOALS = {"inline_over_queued_p50": (">=", 50.0), "enqueue_minus_hello_p50_ms": ("<=", 1.0),
         "io_scaling_efficiency": (">=", 0.9), "aof_always_throughput_ratio": (None, None),
         "tools_throughput_per_s": (None, None)}


def attempt(name: str, fn: Callable[[], Any], notes: dict[str, str]) -> Any:
    """Run one part; on failure record "not available: <reason>" instead of stopping the run."""
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - one missing part must not sink the others
        notes[name] = f"not available: {type(exc).__name__}: {exc}".splitlines()[0][:300]
        logger.debug("%s failed:\n%s", name, traceback.format_exc())
        print(f"  {name}: {notes[name]}", flush=True)
        return None
    print(f"  {name}: done in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def run_all(lab: Lab, quick: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Measure every headline figure; returns (results.json values, raw results, notes)."""
    notes: dict[str, str] = {}
    values: dict[str, Any] = {}
    raw: dict[str, Any] = {}

    raw["latency"] = attempt("latency", lambda: latency(
        lab, duration=0.2, clients=8, requests_per_client=3 if quick else 5, web_threads=2), notes)
    if raw["latency"] is not None:
        values["inline_over_queued_p50"] = raw["latency"].speedup

    raw["handoff"] = attempt("enqueue_vs_hello", lambda: latency(
        lab, duration=0.0, clients=1, requests_per_client=200 if quick else 1000,
        modes=("hello", "queued"), web_threads=lab.config.web_threads), notes)
    if raw["handoff"] is not None:
        r = raw["handoff"]
        values["enqueue_minus_hello_p50_ms"] = (r.p50("queued") - r.p50("hello")) * 1e3

    def io_scaling() -> ScalingResult:
        # One call per W, so each worker count drains the same 20 tasks per worker.
        per_worker = 10 if quick else 20
        runs = [scaling(lab, workers=(w,), kind="io", duration=0.05, tasks=per_worker * w)
                for w in (1, 2, 4, 8)]
        return ScalingResult("io", "thread", 0.05, runs[0].cores,
                             tuple(r.runs[0] for r in runs))
    raw["scaling"] = attempt("io_scaling", io_scaling, notes)
    if raw["scaling"] is not None:
        values["io_scaling_efficiency"] = {str(w): e for w, e in
                                           raw["scaling"].efficiency.items()}

    def run_tools() -> Any:
        from labapp.experiments.tools import tools
        return tools(lab, window=0.5 if quick else 1.0)
    raw["tools"] = attempt("tools", run_tools, notes)
    if raw["tools"] is not None:
        values["tools_throughput_per_s"] = dict(raw["tools"].throughput_per_s)

    def run_durability() -> Any:  # last: it crashes the lab's server on purpose
        from labapp.experiments.durability import durability
        return durability(lab, n=200 if quick else 1000, rabbitmq=False)
    raw["durability"] = attempt("durability", run_durability, notes)
    if raw["durability"] is not None:
        t = raw["durability"].throughput_per_s
        values["aof_always_throughput_ratio"] = t["aof_always"] / t["memory"]
    for key in GOALS:
        values.setdefault(key, None)
    return values, raw, notes


def verdict(key: str, value: Any) -> str:
    """"ok", "MISSED" or "" (no goal) for one value against its goal."""
    op, goal = GOALS[key]
    if op is None or value is None:
        return ""
    vals = list(value.values()) if isinstance(value, dict) else [value]
    good = all((v >= goal) if op == ">=" else (v <= goal) for v in vals)
    return "ok" if good else "MISSED"


def table(values: dict[str, Any], notes: dict[str, str]) -> str:
    """The results as a fixed-width text table."""
    source = {"inline_over_queued_p50": "latency", "enqueue_minus_hello_p50_ms": "enqueue_vs_hello",
              "io_scaling_efficiency": "io_scaling", "tools_throughput_per_s": "tools",
              "aof_always_throughput_ratio": "durability"}
    lines = [f"{'metric':<29} {'measured':<40} {'goal':<8} verdict", "-" * 88]
    for key, (op, goal) in GOALS.items():
        v = values[key]
        if v is None:
            shown = notes.get(source[key], "not available")[:40]
        elif isinstance(v, dict):
            fmt = "{:.0%}" if key == "io_scaling_efficiency" else "{:.0f}/s"
            shown = " ".join(f"{k}:{fmt.format(x)}" for k, x in v.items())
        elif key == "inline_over_queued_p50":
            shown = f"{v:.0f}x"
        elif key == "enqueue_minus_hello_p50_ms":
            shown = f"{v:.2f} ms"
        else:
            shown = f"{v:.2f} (AOF keeps {v:.0%})"
        goal_text = "" if op is None else f"{op} {goal:g}"
        lines.append(f"{key:<29} {shown:<40} {goal_text:<8} {verdict(key, v)}")
    return "\n".join(lines)


def figure(raw: dict[str, Any], values: dict[str, Any]) -> Figure:
    """Four panels: latency p50s, I/O scaling vs ideal, tools throughput, AOF cost."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax in axes:
        tidy(ax)
    ax = axes[0]
    bars = []
    for res, modes in ((raw.get("latency"), ("inline", "queued")),
                       (raw.get("handoff"), ("hello", "queued"))):
        if res is not None:
            tag = f"{res.clients} client{'s' * (res.clients > 1)}"
            bars += [(f"{m}\n{tag}", res.p50(m) * 1e3, role(m)) for m in modes]
    _bars(ax, bars, "p50 latency (ms, log scale)", "request latency, client-side", log=True)
    ax = axes[1]
    sc = raw.get("scaling")
    if sc is not None:
        ax.plot(sc.workers, [sc.ideal(w) for w in sc.workers], "--", color=role("ideal"),
                label="ideal W/d")
        ax.plot(sc.workers, [sc.throughput[w] for w in sc.workers], "o-", color=colour(0),
                label="measured (sleep 50 ms)")
        for w in sc.workers:
            ax.annotate(f"{sc.efficiency[w]:.0%}", (w, sc.throughput[w]), xytext=(6, -12),
                        textcoords="offset points", fontsize=9)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sc.workers, [str(w) for w in sc.workers])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=9)
    ax.set_xlabel("thread workers (W)")
    ax.set_ylabel("throughput (tasks/s)")
    ax.set_title("I/O-bound drain rate vs workers")
    tools_tp = values.get("tools_throughput_per_s") or {}
    _bars(axes[2], [(k, v, colour(i)) for i, (k, v) in enumerate(tools_tp.items())],
          "no-op tasks/s", "same task, same server: Huey, RQ, Celery")
    dur = raw.get("durability")
    tp = dur.throughput_per_s if dur is not None else {}
    _bars(axes[3], [(k.replace("_", " "), v, colour(i)) for i, (k, v) in enumerate(tp.items())],
          "enqueued tasks/s", "enqueue throughput: in memory vs AOF fsync always")
    return fig


def _bars(ax: Any, bars: list[tuple[str, float, str]], ylabel: str, title: str,
          log: bool = False) -> None:
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if not bars:
        ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
        return
    drawn = ax.bar(range(len(bars)), [b[1] for b in bars], color=[b[2] for b in bars])
    ax.bar_label(drawn, labels=[f"{b[1]:,.0f}" if b[1] >= 100 else f"{b[1]:.3g}" for b in bars],
                 padding=2, fontsize=9)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars])
    ax.grid(False, axis="x")
    if log:
        ax.set_yscale("log")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller samples (about 1 minute)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json",
                        help="where to write the numbers (default: %(default)s)")
    parser.add_argument("--png", type=Path, default=HERE / "experiments.png",
                        help="where to write the figure (default: %(default)s)")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qlb-", dir="/tmp") as root:
        lab = Lab.start(workers=2, web_threads=4, name="bench_experiments", run_root=root,
                        quiet=True)
        try:
            print(f"lab up: {lab.summary()}", flush=True)
            values, raw, notes = run_all(lab, opts.quick)
        finally:
            lab.stop()
    took = time.perf_counter() - t0
    print()
    print(table(values, notes))
    details: dict[str, Any] = {}
    if raw.get("latency") is not None:
        details["latency_ms"] = {r["what"]: {k: v for k, v in r.items() if k != "what"}
                                 for r in raw["latency"].table()}
    if raw.get("handoff") is not None:
        details["handoff_p50_ms"] = {m: raw["handoff"].p50(m) * 1e3 for m in ("hello", "queued")}
    if raw.get("scaling") is not None:
        details["io_throughput_per_s"] = {str(w): t for w, t in raw["scaling"].throughput.items()}
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}
    out = {**clean, "details": details, "notes": notes, "quick": opts.quick,
           "seconds": round(took, 1), "machine": {"cpus": os.cpu_count(),
                                                  "python": platform.python_version(),
                                                  "platform": platform.platform()},
           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    opts.json.write_text(json.dumps(out, indent=2) + "\n")
    figure(raw, values).savefig(opts.png, dpi=90)
    print(f"\nwrote {opts.json} and {opts.png} ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
