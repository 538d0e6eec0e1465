"""Runtime numbers of the lab: start/stop time, enqueue vs hello latency, event overhead, RSS.

    python benchmarks/runtime.py [--starts 10] [--tasks 2000] [--json out.json]

Ratios are measured in one run on this machine; the goals come from the runtime issue:
start ≤ 1.5 s (median), stop ≤ 1.0 s, enqueue p50 ≤ hello p50 + 1 ms, events ≤ 15 % of
no-op throughput, stack RSS ≤ 300 MB.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from labapp import Lab
from labapp import procs
from labapp import tasks


def time_starts(n: int, run_root: Path) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for i in range(n):
        t0 = time.perf_counter()
        lab = Lab.start(workers=2, name=f"bench{i}", run_root=run_root, quiet=True)
        starts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lab.stop()
        stops.append(time.perf_counter() - t0)
    return starts, stops


def http_p50(lab: Lab, method: str, path: str, n: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", lab.port)
    samples = []
    body = b"{}" if method == "POST" else None
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        samples.append(time.perf_counter() - t0)
    conn.close()
    return statistics.median(samples) * 1000


def drain_rate(lab: Lab, n: int) -> float:
    """Push ``n`` no-op messages in one round trip and time the workers emptying the queue."""
    huey = lab.huey
    messages = [huey.serialize_task(tasks.TASKS["noop"].s()) for _ in range(n)]
    conn = huey.storage.conn
    conn.lpush(huey.storage.queue_key, *messages)
    t0 = time.perf_counter()
    procs.wait_until(lambda: conn.llen(huey.storage.queue_key) == 0, 120, interval=0.001,
                     max_interval=0.002)
    return n / (time.perf_counter() - t0)


def event_overhead(n: int, run_root: Path, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Median drain rate and consumer CPU per task, with the event recorder off and on.

    Rounds alternate off/on so a busy neighbour on the machine hits both modes alike; CPU
    time per task is reported too because it moves far less with such noise than wall time.
    """
    rates: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        for mode in ("off", "on"):
            os.environ["LAB_EVENTS"] = mode
            lab = Lab.start(workers=2, name=f"ev_{mode}", run_root=run_root, quiet=True)
            try:
                drain_rate(lab, 200)  # warm up connections and imports
                consumer = psutil.Process(lab.status()["consumer"])
                before = sum(consumer.cpu_times()[:2])
                rates[mode].append(drain_rate(lab, n))
                cpu[mode].append((sum(consumer.cpu_times()[:2]) - before) / n * 1e6)
            finally:
                lab.stop()
    os.environ.pop("LAB_EVENTS", None)
    return {mode: {"rate": statistics.median(rates[mode]), "cpu_us": statistics.median(cpu[mode])}
            for mode in rates}


def stack_rss(lab: Lab) -> float:
    st = lab.status()
    pids = {st["broker"], st["web"], *procs.group_pids(st["consumer"])}
    return sum(psutil.Process(p).memory_info().rss for p in pids) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=10, help="lab starts to time (default 10)")
    parser.add_argument("--tasks", type=int, default=2000, help="no-op tasks per drain (default 2000)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    opts = parser.parse_args()
    if not 1 <= opts.starts <= 100 or not 100 <= opts.tasks <= 100_000:
        parser.error("--starts must be 1-100 and --tasks 100-100000")
    with tempfile.TemporaryDirectory(prefix="qlb-", dir="/tmp") as tmp:
        root = Path(tmp)
        starts, stops = time_starts(opts.starts, root)
        lab = Lab.start(workers=2, name="bench_http", run_root=root, quiet=True)
        try:
            lab.restart_workers()
            http_p50(lab, "GET", "/api/hello", 100)  # warm up
            hello = http_p50(lab, "GET", "/api/hello", 1000)
            enqueue = http_p50(lab, "POST", "/api/enqueue/noop", 1000)
            rss = stack_rss(lab)
        finally:
            lab.stop()
        rates = event_overhead(opts.tasks, root)
    overhead = 1 - rates["on"]["rate"] / rates["off"]["rate"]
    cpu_overhead = rates["on"]["cpu_us"] / rates["off"]["cpu_us"] - 1
    rows = [
        ("lab start, median of %d" % opts.starts, f"{statistics.median(starts):.3f} s", "≤ 1.5 s"),
        ("lab stop, median", f"{statistics.median(stops):.3f} s", "≤ 1.0 s"),
        ("GET /api/hello p50", f"{hello:.2f} ms", ""),
        ("POST /api/enqueue/noop p50", f"{enqueue:.2f} ms", ""),
        ("enqueue − hello p50", f"{enqueue - hello:.2f} ms", "≤ 1.0 ms"),
        (f"no-op drain, events off ({opts.tasks} tasks, 2 thread workers)",
         f"{rates['off']['rate']:.0f} tasks/s", ""),
        ("no-op drain, events on", f"{rates['on']['rate']:.0f} tasks/s", ""),
        ("event overhead (throughput lost)", f"{overhead:.1%}", "≤ 15 %"),
        ("consumer CPU per task, events off / on",
         f"{rates['off']['cpu_us']:.0f} / {rates['on']['cpu_us']:.0f} µs", ""),
        ("event overhead (consumer CPU)", f"{cpu_overhead:.1%}", ""),
        ("stack RSS (server + web + consumer)", f"{rss:.0f} MB", "≤ 300 MB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'this run':>14}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>14}  {goal}")
    if opts.json:
        opts.json.write_text(json.dumps({
            "start_median_s": statistics.median(starts), "stop_median_s": statistics.median(stops),
            "hello_p50_ms": hello, "enqueue_p50_ms": enqueue, "events_off_per_s": rates["off"]["rate"],
            "events_on_per_s": rates["on"]["rate"], "event_overhead": overhead,
            "event_cpu_overhead": cpu_overhead, "rss_mb": rss}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
