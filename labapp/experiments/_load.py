"""HTTP load generator: concurrent clients in their own process, so they never share the kernel's GIL.

Run as ``python -m labapp.experiments._load`` with a JSON spec on stdin::

    {"host": "127.0.0.1", "port": 8000, "deadline": 60,
     "phases": [{"name": "inline", "method": "POST", "path": "/api/inline/sleep",
                 "body": {"seconds": 0.2}, "clients": 8, "requests_per_client": 3}]}

Each client is a thread with its own keep-alive ``http.client`` connection, opened and
warmed up (one ``GET /api/hello``) before a barrier releases all clients at once, so the
measured requests include neither TCP connects nor first-request costs. Phases run one
after the other. stdout carries JSON lines: ``{"progress": k}`` after each request and
finally ``{"phases": [...]}`` with one sample per request:
``[client, seq, start (time.time()), latency (s, perf_counter), status, task id or null]``.

A phase may add ``"probe": {"path": "/api/hello", "interval": 0.05, "clients": 2}``: more
clients, released by the same barrier, send ``GET path`` again and again (``interval``
seconds apart) until the phase's clients are done. Their samples (clients ``-1``, ``-2`` …)
come back in the phase's ``"probe_samples"``: what the phase's load costs a visitor who
wants something else.
"""
from __future__ import annotations

import http.client
import json
import logging
import sys
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
MAX_CLIENTS = 64
MAX_REQUESTS = 10_000

_print_lock = threading.Lock()


def _emit(obj: dict[str, Any]) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def _request(conn: http.client.HTTPConnection, method: str, path: str,
             body: bytes | None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()  # read it all, or the connection cannot be reused


def _task_id(status: int, payload: bytes) -> str | None:
    if status != 202:
        return None
    try:
        return json.loads(payload).get("id")
    except ValueError:
        return None


class _Counter:
    """Requests finished so far across all clients (for the parent's progress line)."""

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def bump(self) -> int:
        with self.lock:
            self.value += 1
            return self.value


def run_phase(host: str, port: int, phase: dict[str, Any], deadline: float,
              counter: _Counter) -> list[list[Any]]:
    """Run one phase: ``clients`` threads × ``requests_per_client`` requests; returns samples."""
    clients = int(phase["clients"])
    per_client = int(phase["requests_per_client"])
    if not (1 <= clients <= MAX_CLIENTS and 1 <= clients * per_client <= MAX_REQUESTS):
        raise ValueError(f"phase {phase.get('name')!r}: 1-{MAX_CLIENTS} clients and at most "
                         f"{MAX_REQUESTS} requests")
    method, path = phase.get("method", "GET"), phase["path"]
    body = json.dumps(phase["body"]).encode() if phase.get("body") is not None else None
    probe = phase.get("probe")
    probes = int(probe.get("clients", 1)) if probe else 0
    if not 0 <= probes <= 8:
        raise ValueError(f"phase {phase.get('name')!r}: 0-8 probe clients")
    barrier = threading.Barrier(clients + probes)
    samples: list[list[Any]] = []
    probe_samples: list[list[Any]] = []
    lock = threading.Lock()
    load_done = threading.Event()

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=max(1.0, deadline - time.time()))
        try:
            _request(conn, "GET", "/api/hello", None)  # warm-up: connect + first request
            barrier.wait()
            for seq in range(per_client):
                if time.time() > deadline:
                    break
                start_wall, t0 = time.time(), time.perf_counter()
                try:
                    status, payload = _request(conn, method, path, body)
                except (OSError, http.client.HTTPException) as exc:
                    logger.warning("client %d request %d failed: %s", index, seq, exc)
                    status, payload = 0, b""
                    conn.close()  # a fresh connection for the next request
                latency = time.perf_counter() - t0
                with lock:
                    samples.append([index, seq, start_wall, latency, status,
                                    _task_id(status, payload)])
                _emit({"progress": counter.bump()})
        except threading.BrokenBarrierError:
            pass
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("client %d could not connect: %s", index, exc)
            barrier.abort()  # let the other clients go instead of waiting forever
        finally:
            conn.close()

    def prober(index: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=max(1.0, deadline - time.time()))
        every = float(probe.get("interval", 0.05))
        seq = 0
        try:
            _request(conn, "GET", "/api/hello", None)
            barrier.wait()
            while not load_done.is_set() and time.time() < deadline:
                start_wall, t0 = time.time(), time.perf_counter()
                try:
                    status, _ = _request(conn, "GET", probe["path"], None)
                except (OSError, http.client.HTTPException) as exc:
                    logger.warning("probe %d request %d failed: %s", index, seq, exc)
                    status = 0
                    conn.close()
                with lock:
                    probe_samples.append([index, seq, start_wall, time.perf_counter() - t0,
                                          status, None])
                seq += 1
                load_done.wait(every)
        except threading.BrokenBarrierError:
            pass
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("probe could not connect: %s", exc)
            barrier.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,), name=f"client-{i}", daemon=True)
               for i in range(clients)]
    probe_threads = [threading.Thread(target=prober, args=(-1 - i,), name=f"probe-{i}",
                                      daemon=True) for i in range(probes)]
    for t in threads + probe_threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.time()) + CONNECT_TIMEOUT)
    load_done.set()
    for t in probe_threads:
        t.join(max(0.0, deadline - time.time()) + CONNECT_TIMEOUT)
    with lock:
        phase["probe_samples"] = sorted(probe_samples, key=lambda s: s[2])
        return sorted(samples, key=lambda s: (s[2], s[0]))


def main() -> int:
    """Read the spec from stdin, run every phase, print the samples as JSON."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="load %(levelname)s %(message)s")
    spec = json.loads(sys.stdin.read())
    deadline = time.time() + float(spec.get("deadline", 60))
    counter = _Counter()
    phases = []
    for phase in spec["phases"]:
        samples = run_phase(spec.get("host", "127.0.0.1"), int(spec["port"]), phase,
                            deadline, counter)
        phases.append({"name": phase["name"], "samples": samples,
                       "probe_samples": phase.get("probe_samples", [])})
    _emit({"phases": phases})
    return 0


if __name__ == "__main__":
    sys.exit(main())
