"""Step 4: does Flask ship a queue? Its nearest built-ins, measured on a real server.

Flask has no task queue; the nearest things it offers run work *after* a response:
``flask.after_this_request`` (after the view, before the response leaves) and werkzeug's
``Response.call_on_close`` (after the body is sent, when the server closes the response).
:func:`after_response` serves :mod:`labapp.hooks_app` with waitress and a pool of two
threads, sends two requests that each leave ``seconds`` of work behind, and, as soon as both
answers are back, a third request: who waited for the work — the client, the next request,
or nobody? A thread started in the view is measured the same way. It also lists the names the
installed ``flask`` package offers that sound like a queue.

:func:`thread_vs_queue` then shows what the thread shortcut loses when the app restarts.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import flask

from labapp import procs
from labapp.demo_server import DemoServer
from labapp.demo_server import request
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range

if TYPE_CHECKING:
    from labapp.stack import Lab

MECHANISMS = ("after_this_request", "call_on_close", "thread")
BUILT_INS = ("after_this_request", "call_on_close")
WORDS = ("queue", "task", "worker", "job", "background", "celery")
THREADS = 2
HELD = 0.5   #: a mechanism holds the thread when someone waited at least half the work


def queue_like_names() -> list[str]:
    """Public names of ``flask`` and ``flask.Flask`` that mention a queue-ish word."""
    names = [n for n in dir(flask) if not n.startswith("_")]
    names += [f"Flask.{n}" for n in dir(flask.Flask) if not n.startswith("_")]
    return [n for n in names if any(word in n.lower() for word in WORDS)]


@dataclasses.dataclass
class Hook:
    """One mechanism: the two hook requests' response times and the third request's."""

    name: str
    seconds: float
    replies_s: list[float]     #: response time of each request that left work behind
    next_s: float              #: response time of the request sent once both had answered

    @property
    def client_waited_s(self) -> float:
        """How long the slower of the two clients waited for its answer."""
        return max(self.replies_s)

    @property
    def held_s(self) -> float:
        """How long the work kept the server's threads from others (client wait + next wait)."""
        return self.client_waited_s + self.next_s

    @property
    def holds_thread(self) -> bool:
        """True when the work held a request thread (someone waited ≥ half of it)."""
        return self.held_s >= HELD * self.seconds


@dataclasses.dataclass
class AfterResponseResult:
    """The hooks measured on a 2-thread waitress, plus the scan of ``flask``'s names."""

    flask_version: str
    names_scanned: int
    queue_names: list[str]
    hooks: dict[str, Hook]
    threads: int = THREADS

    @property
    def builtin_frees_thread(self) -> bool | None:
        """True if a Flask built-in ran the work without holding a request thread (None: none measured)."""
        measured = [self.hooks[m] for m in BUILT_INS if m in self.hooks]
        return None if not measured else any(not h.holds_thread for h in measured)

    @property
    def flask_has_queue(self) -> bool | None:
        """What this run supports: does Flask offer a way to run work in the background?"""
        frees = self.builtin_frees_thread
        if frees is None:
            return None
        return bool(self.queue_names) or frees

    @property
    def teaches_lesson(self) -> bool:
        """True when every built-in held a thread and the thread in the view did not."""
        thread = self.hooks.get("thread")
        return (self.flask_has_queue is False and thread is not None
                and not thread.holds_thread)

    def conclusions(self) -> list[str]:
        """What this run showed, in sentences built from its numbers."""
        found = ", ".join(self.queue_names) if self.queue_names else "none"
        out = [f"Flask {self.flask_version} offers {self.names_scanned} public names (module and "
               f"app class); those mentioning {', '.join(WORDS)}: {found}."]
        for h in self.hooks.values():
            who = []
            if h.client_waited_s >= HELD * h.seconds:
                who.append(f"the client waited {h.client_waited_s:.2f} s for its answer")
            else:
                who.append(f"the client had its answer in {h.client_waited_s:.2f} s")
            if h.next_s >= HELD * h.seconds:
                who.append(f"the next request waited {h.next_s:.2f} s for a free thread")
            else:
                who.append(f"the next request was served in {h.next_s:.2f} s")
            out.append(f"{h.name} with {h.seconds:g} s of work on {self.threads} threads: "
                       + " and ".join(who) + ".")
        if self.builtin_frees_thread is False:
            out.append("Both built-ins kept a request thread busy for the whole job: they move "
                       "work after the view, not out of the web server.")
        elif self.builtin_frees_thread:
            out.append("In this run a built-in freed the request thread: unexpected; run it "
                       "again on a quieter machine.")
        thread = self.hooks.get("thread")
        if thread is not None:
            out.append("The thread started in the view freed both the client and the server "
                       "(" + ("as expected" if not thread.holds_thread else
                              "not this time: the machine was busy") + "); the next cells show "
                       "what it loses.")
        return out

    def __repr__(self) -> str:
        rows = [f"Flask {self.flask_version}: {len(self.queue_names)} queue-like names; "
                f"waitress with {self.threads} threads"]
        for h in self.hooks.values():
            rows.append(f"  {h.name:<19} work {h.seconds:g} s · answers "
                        f"{', '.join(f'{s:.2f}' for s in h.replies_s)} s · next request "
                        f"{h.next_s:.2f} s · {'holds' if h.holds_thread else 'frees'} the thread")
        return "\n".join(rows)


def after_response(seconds: float = 1.0, mechanisms: Sequence[str] = MECHANISMS,
                   timeout: float = 30.0) -> AfterResponseResult:
    """Serve :mod:`labapp.hooks_app` on 2 waitress threads and measure each mechanism."""
    check_range("seconds", seconds, 0.2, 5.0)
    mechanisms = tuple(mechanisms)
    if not mechanisms or any(m not in MECHANISMS for m in mechanisms):
        raise ValueError(f"mechanisms={mechanisms!r}: choose from {MECHANISMS}")
    hooks: dict[str, Hook] = {}
    with tempfile.TemporaryDirectory(prefix="ql-hooks-") as tmp, \
            DemoServer("labapp.hooks_app:app", cwd=tmp, threads=THREADS,
                       log=Path(tmp) / "hooks.log") as server, \
            Progress("after-response hooks", len(mechanisms)) as progress:
        request(server.url + "fast", timeout=timeout)   # warm: the first request imports more
        for name in mechanisms:
            hooks[name] = _measure(server.url, name, seconds, timeout)
            progress.update(1, name)
            procs.wait_until(lambda: _idle(server.url, seconds), 2 * seconds + 1)  # work over
    return AfterResponseResult(flask_version=importlib.metadata.version("flask"),
                               names_scanned=len([n for n in dir(flask) if not n.startswith("_")])
                               + len([n for n in dir(flask.Flask) if not n.startswith("_")]),
                               queue_names=queue_like_names(), hooks=hooks)


def notebook_sized_hooks(lab: Lab | None = None) -> AfterResponseResult:
    """Step 4's measurement exactly as notebook 04 runs it (the lab is not needed)."""
    return after_response()


def _measure(url: str, name: str, seconds: float, timeout: float) -> Hook:
    replies: list[float] = [0.0] * THREADS

    def call(i: int) -> None:
        replies[i] = request(f"{url}{name}/{seconds}", timeout=timeout).seconds

    callers = [threading.Thread(target=call, args=(i,)) for i in range(THREADS)]
    for c in callers:
        c.start()
    for c in callers:
        c.join(timeout)
    return Hook(name, seconds, replies, request(url + "fast", timeout=timeout).seconds)


def _idle(url: str, seconds: float) -> bool:
    """True when a request is served at once (no hook is holding a thread any more)."""
    return request(url + "fast").seconds < 0.5 * seconds


# ---------------------------------------------------------------------- the thread shortcut
#: The app notebook 04 writes to ``thread_app.py`` (tests check the two stay the same).
THREAD_APP = '''"""The shortcut: the view starts a thread for the slow work (written by 04_tools.ipynb)."""
import threading
import time

from flask import Flask

app = Flask(__name__)


def send_email(to):
    time.sleep(1)  # the slow part: talking to the mail server
    with open("sent.txt", "a") as sent:  # proof that the email went out
        sent.write(to + "\\n")


@app.post("/signup/<to>")
def signup(to):
    threading.Thread(target=send_email, args=(to,)).start()
    return {"ok": True}, 202
'''


@dataclasses.dataclass
class ThreadRestartResult:
    """Emails sent by the thread-in-the-view app without and with a restart, and by the queue."""

    n: int
    seconds: float
    thread_plain: int
    thread_restart: int
    queued: int | None = None
    waited_s: float = math.nan   #: how long the restarted run waited for emails

    @property
    def teaches_lesson(self) -> bool:
        """True when the restart lost thread jobs that the queue kept."""
        return (self.thread_plain == self.n and self.thread_restart < self.n
                and (self.queued is None or self.queued == self.n))

    def conclusions(self) -> list[str]:
        """What this run showed, in sentences built from its numbers."""
        waited = f" (waited {self.waited_s:.1f} s)" if self.waited_s == self.waited_s else ""
        out = [f"Thread in the view, no restart: {self.thread_plain} of {self.n} emails sent; "
               f"restarted right after the signups: {self.thread_restart} of {self.n}{waited}."]
        if self.thread_plain < self.n:
            out.append(f"Even without a restart {self.n - self.thread_plain} never arrived: look "
                       "at thread_app.log, the app may be broken.")
        if self.thread_restart < self.n:
            out.append(f"The restart lost {self.n - self.thread_restart} without a trace: no "
                       "error, no log line, nothing left to retry.")
        else:
            out.append("The restart lost nothing this time: every email finished before the "
                       "process stopped (make the emails slower in thread_app.py and try again).")
        if self.queued is not None:
            out.append(f"Through the queue, with the web app and the workers restarted: "
                       f"{self.queued} of {self.n} sent.")
        return out

    def __repr__(self) -> str:
        return " ".join(self.conclusions())


def signups(server: DemoServer, n: int = 5, restart: bool = False, wait: float = 30.0,
            proof: os.PathLike[str] | str = "sent.txt") -> tuple[int, float]:
    """POST ``n`` signups to ``server`` (restarting it right after if asked).

    Waits until all ``n`` lines are in ``proof`` or ``wait`` seconds passed (a lost email
    never arrives, so proving a loss takes the whole wait). Returns the emails sent and the
    seconds from the first signup until the last line arrived (or the wait ended).
    """
    check_range("n", n, 1, 50, integer=True)
    proof = Path(proof)
    proof.unlink(missing_ok=True)
    server.start()
    t0 = time.monotonic()
    for i in range(n):
        reply = request(f"{server.url}signup/user{i}@example.com", "POST")
        if reply.status >= 400:
            raise RuntimeError(f"{server.app} refused the signup: {reply.status} {reply.body}")
    if restart:
        server.restart()
    sent = lambda: len(proof.read_text().split()) if proof.exists() else 0  # noqa: E731
    procs.wait_until(lambda: sent() >= n, wait)
    took = time.monotonic() - t0
    server.stop()
    return sent(), took


def queued_signups(lab: Lab, n: int = 5, seconds: float = 1.0, timeout: float = 30.0) -> int:
    """The same signups through the lab's queue, then restart its web app and workers (gracefully).

    Returns how many ``send_email`` tasks completed.
    """
    check_range("n", n, 1, 50, integer=True)
    cursor = lab.cursor()
    for i in range(n):
        reply = request(lab.url + "api/enqueue/send_email", "POST",
                        {"to": f"user{i}@example.com", "seconds": seconds})
        if reply.status >= 400:
            raise RuntimeError(f"the lab refused the signup: {reply.status} {reply.body}")
    lab.restart_web()
    lab.restart_workers()
    ids = [e.task_id for e in lab.events(since=cursor) if e.kind == "enqueued"]
    lab.wait(ids, timeout=timeout)
    return sum(e.kind == "complete" for e in lab.events(since=cursor))


def thread_vs_queue(lab: Lab, server: DemoServer, n: int = 5, seconds: float = 1.0,
                    proof: os.PathLike[str] | str = "sent.txt") -> ThreadRestartResult:
    """The thread-in-the-view app (``server``) without and with a restart, then the queue.

    The restarted run waits twice as long as all emails took without a restart (plus half a
    second), so a slower ``send_email`` in the app is waited for too. ``seconds`` is how long
    each queued ``send_email`` takes.
    """
    with Progress("thread vs queue", 3) as progress:
        plain, took = signups(server, n, restart=False, proof=proof)
        progress.update(1, "thread, no restart")
        restarted, _ = signups(server, n, restart=True, wait=2 * took + 0.5, proof=proof)
        progress.update(1, "thread, restart")
        queued = queued_signups(lab, n, seconds)
        progress.update(1, "queue")
    return ThreadRestartResult(n, seconds, plain, restarted, queued, waited_s=2 * took + 0.5)


def notebook_sized_thread_restart(lab: Lab) -> ThreadRestartResult:
    """The thread shortcut and the queue exactly as notebook 04 runs them (in a temp folder)."""
    with tempfile.TemporaryDirectory(prefix="ql-thread-") as tmp:
        Path(tmp, "thread_app.py").write_text(THREAD_APP)
        return thread_vs_queue(lab, DemoServer("thread_app:app", cwd=tmp), n=5, seconds=1,
                               proof=Path(tmp) / "sent.txt")
