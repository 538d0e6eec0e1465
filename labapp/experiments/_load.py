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
    """Run one phase: ``clients`` threads × ``requests_per_client`` requests; returns samples.

    The probes' samples go to ``phase["probe_samples"]``.
    """
    samples, phase["probe_samples"] = _Phase(host, port, phase, deadline, counter).run()
    return samples


class _Phase:
    """One phase's clients and probe clients, released together by one barrier."""

    def __init__(self, host: str, port: int, phase: dict[str, Any], deadline: float,
                 counter: _Counter) -> None:
        self.host, self.port, self.deadline, self.counter = host, port, deadline, counter
        self.clients = int(phase["clients"])
        self.per_client = int(phase["requests_per_client"])
        if not (1 <= self.clients <= MAX_CLIENTS
                and 1 <= self.clients * self.per_client <= MAX_REQUESTS):
            raise ValueError(f"phase {phase.get('name')!r}: 1-{MAX_CLIENTS} clients and at most "
                             f"{MAX_REQUESTS} requests")
        self.method, self.path = phase.get("method", "GET"), phase["path"]
        self.body = json.dumps(phase["body"]).encode() if phase.get("body") is not None else None
        self.probe = phase.get("probe") or {}
        self.probes = int(self.probe.get("clients", 1)) if self.probe else 0
        if not 0 <= self.probes <= 8:
            raise ValueError(f"phase {phase.get('name')!r}: 0-8 probe clients")
        self.barrier = threading.Barrier(self.clients + self.probes)
        self.samples: list[list[Any]] = []
        self.probe_samples: list[list[Any]] = []
        self.lock = threading.Lock()
        self.load_done = threading.Event()

    def run(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """Run the clients and probes; their samples, each list in start order."""
        threads = [threading.Thread(target=self.client, args=(i,), name=f"client-{i}",
                                    daemon=True) for i in range(self.clients)]
        probe_threads = [threading.Thread(target=self.prober, args=(-1 - i,), name=f"probe-{i}",
                                          daemon=True) for i in range(self.probes)]
        for t in threads + probe_threads:
            t.start()
        for t in threads:
            t.join(max(0.0, self.deadline - time.time()) + CONNECT_TIMEOUT)
        self.load_done.set()
        for t in probe_threads:
            t.join(max(0.0, self.deadline - time.time()) + CONNECT_TIMEOUT)
        with self.lock:
            return (sorted(self.samples, key=lambda s: (s[2], s[0])),
                    sorted(self.probe_samples, key=lambda s: s[2]))

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port,
                                          timeout=max(1.0, self.deadline - time.time()))

    def client(self, index: int) -> None:
        """``per_client`` requests back to back on one warmed-up connection."""
        conn = self._connect()
        try:
            _request(conn, "GET", "/api/hello", None)  # warm-up: connect + first request
            self.barrier.wait()
            for seq in range(self.per_client):
                if time.time() > self.deadline:
                    break
                start_wall, t0 = time.time(), time.perf_counter()
                try:
                    status, payload = _request(conn, self.method, self.path, self.body)
                except (OSError, http.client.HTTPException) as exc:
                    logger.warning("client %d request %d failed: %s", index, seq, exc)
                    status, payload = 0, b""
                    conn.close()  # a fresh connection for the next request
                latency = time.perf_counter() - t0
                with self.lock:
                    self.samples.append([index, seq, start_wall, latency, status,
                                         _task_id(status, payload)])
                _emit({"progress": self.counter.bump()})
        except threading.BrokenBarrierError:
            pass
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("client %d could not connect: %s", index, exc)
            self.barrier.abort()  # let the other clients go instead of waiting forever
        finally:
            conn.close()

    def prober(self, index: int) -> None:
        """``GET`` the probe path every ``interval`` seconds until the clients are done."""
        conn = self._connect()
        every = float(self.probe.get("interval", 0.05))
        seq = 0
        try:
            _request(conn, "GET", "/api/hello", None)
            self.barrier.wait()
            while not self.load_done.is_set() and time.time() < self.deadline:
                start_wall, t0 = time.time(), time.perf_counter()
                try:
                    status, _ = _request(conn, "GET", self.probe["path"], None)
                except (OSError, http.client.HTTPException) as exc:
                    logger.warning("probe %d request %d failed: %s", index, seq, exc)
                    status = 0
                    conn.close()
                with self.lock:
                    self.probe_samples.append([index, seq, start_wall,
                                               time.perf_counter() - t0, status, None])
                seq += 1
                self.load_done.wait(every)
        except threading.BrokenBarrierError:
            pass
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("probe could not connect: %s", exc)
            self.barrier.abort()
        finally:
            conn.close()


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
