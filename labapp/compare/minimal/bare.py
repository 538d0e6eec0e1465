"""A plain benchmark a tool user would write: fill the queue, start one worker, time the drain.

    REDIS_URL=unix:///path/to/redis.sock?db=1 python bare.py huey --n 1000

It imports the tool and the task module next to it, nothing else: the lab's experiment
(``labapp.experiments.tools``) runs it beside its own measurement as a reference. It enqueues
``n`` no-ops, starts one worker with the tool's own command line, waits until the last task
finished (or ``--window`` seconds of work passed), reads the results, stops the worker and
prints one JSON line.
Throughput is measured on the worker's clock (each no-op returns ``time.time()``):
the median pace of ten slices between the first and the last finish (:func:`pace`).
For Celery, ``REDIS_URL`` is Celery's spelling (``redis+socket:///path?virtual_host=1``).
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SLICES = 10


def worker(tool, rq_worker="fork", url=None):
    """The worker command line a user of ``tool`` types (one task at a time, quiet logs)."""
    py = sys.executable
    if tool == "huey":
        return [py, "-m", "huey.bin.huey_consumer", "huey_tasks.huey", "-w", "1", "-q"]
    if tool == "rq":
        cls = "rq.SimpleWorker" if rq_worker == "simple" else "rq.Worker"
        return [py, "-m", "rq.cli", "worker", "--url", url or os.environ["REDIS_URL"], "-w", cls,
                "-q", "compare"]
    return [py, "-m", "celery", "-A", "celery_tasks", "worker", "-c", "1", "-l", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]


def submit(tool, module, task="noop", *args):
    """Enqueue ``task(*args)`` from the task module; returns the tool's handle."""
    fn = getattr(module, task)
    if tool == "huey":
        return fn(*args)
    if tool == "rq":
        return module.queue.enqueue(fn, *args)
    return fn.delay(*args)


def finished(tool, handle):
    """The task's return value (its finish time), or None while it has not finished."""
    if tool == "huey":
        return handle.get(preserve=True)
    if tool == "rq":
        return handle.return_value(refresh=True)
    return handle.result if handle.ready() else None


def pace(done):
    """Tasks per second from finish times: the median of ten equal slices of the drain.

    One hiccup of a busy machine spoils one slice, not the figure; the worker's start-up
    is before the first finish, so it is not in it.
    """
    done = sorted(done)
    steps = min(SLICES, len(done) - 1)
    if steps < 1:
        return float("nan")
    cuts = [round(i * (len(done) - 1) / steps) for i in range(steps + 1)]
    rates = [(b - a) / (done[b] - done[a]) for a, b in zip(cuts, cuts[1:])
             if done[b] > done[a]]
    return statistics.median(rates) if rates else float("nan")


def _stop_on_orphan(proc):
    """Stop the worker if whoever started this script goes away (a killed notebook kernel)."""
    parent = os.getppid()
    while os.getppid() == parent and proc.poll() is None:
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        os._exit(1)


def stop(proc):
    """Stop the worker and what it forked at once: the measurement is over."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def measure(tool, n, window, rq_worker="fork", timeout=60.0):
    """Drain ``n`` queued no-ops with one fresh worker; a dict of what was measured."""
    sys.path.insert(0, HERE)
    module = __import__(f"{tool}_tasks")
    handles = [submit(tool, module) for _ in range(n)]
    spawned = time.time()
    proc = subprocess.Popen(worker(tool, rq_worker), cwd=HERE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    threading.Thread(target=_stop_on_orphan, args=(proc,), daemon=True).start()
    try:
        for i, seconds in ((0, timeout), (-1, window)):  # the first result, then the last
            limit = time.time() + seconds
            while finished(tool, handles[i]) is None and time.time() < limit:
                time.sleep(0.02)
        cut = time.time()  # what finishes later ran while we read the results: not counted
        done = [t for t in (finished(tool, h) for h in handles) if t is not None and t <= cut]
        if not done:
            raise TimeoutError(f"{tool}: no task finished within {timeout} s")
    finally:
        stop(proc)
    return {"tool": tool, "rq_worker": rq_worker, "n": n, "finished": len(done),
            "rate": pace(done), "startup_s": min(done) - spawned,
            "done": sorted(done)}


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up when stopped
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tool", choices=("huey", "rq", "celery"))
    parser.add_argument("--n", type=int, default=1000, help="no-ops to queue (default 1000)")
    parser.add_argument("--window", type=float, default=1.0,
                        help="stop after this many seconds of work (default 1)")
    parser.add_argument("--rq-worker", choices=("fork", "simple"), default="fork")
    args = parser.parse_args()
    print(json.dumps(measure(args.tool, args.n, args.window, args.rq_worker)))
