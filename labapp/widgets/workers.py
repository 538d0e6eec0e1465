"""WorkerControl: how many workers, threads or processes, and a button that kills one."""
from __future__ import annotations

import html
import logging
import signal
import threading
import time
from typing import TYPE_CHECKING

import ipywidgets as w
import redis

from labapp.stack import LabError
from labapp.stack import running_labs
from labapp.widgets.base import CSS
from labapp.widgets.base import EXPECTED_ERRORS
from labapp.widgets.base import LabStopped
from labapp.widgets.base import LabWidget
from labapp.widgets.base import current_lab
from labapp.widgets.base import error_html
from labapp.widgets.base import explain_error
from labapp.widgets.base import plural
from labapp.widgets.base import on_lab_stop

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)


class WorkerControl(LabWidget):
    """Choose how many workers run and of which type, kill one, and see their PIDs.

    From code: set ``control.workers.value`` / ``control.worker_type.value`` and call
    ``control.apply_button.click()``; ``control.kill_button.click()`` kills the worker chosen
    in ``control.target``.
    """

    def __init__(self, lab: Lab, max_workers: int = 8) -> None:
        self.lab = lab
        self.workers = w.IntSlider(value=min(lab.config.workers, max_workers), min=0,
                                   max=max_workers, description="workers",
                                   continuous_update=False)
        self.worker_type = w.ToggleButtons(options=["thread", "process"],
                                           value=lab.config.worker_type,
                                           tooltips=["N threads in one consumer process",
                                                     "N separate worker processes"],
                                           style={"button_width": "80px"})
        self.apply_button = w.Button(description="Apply", button_style="primary", icon="check",
                                     tooltip="restart the workers with these settings")
        self.target = w.Dropdown(description="worker", options=[],
                                 layout=w.Layout(width="200px"))
        self.kill_button = w.Button(description="Kill a worker", button_style="danger",
                                    icon="skull", tooltip="SIGKILL, as a crash would")
        self.message = w.HTML()
        self.table = w.HTML()
        self.apply_button.on_click(lambda _b: self.apply())
        self.kill_button.on_click(lambda _b: self.kill())
        super().__init__([w.HTML(CSS),
                          w.HBox([self.workers, self.worker_type, self.apply_button]),
                          w.HBox([self.target, self.kill_button]),
                          self.message, self.table])
        self.add_class("ql-box")
        self.add_class("ql-workers")
        self.refresh()
        self._watch(lab)

    def _watch(self, lab: Lab) -> None:
        try:
            on_lab_stop(current_lab(lab), self._lab_stopped)
        except LabStopped:
            pass

    def _lab_stopped(self) -> None:
        """The lab stopped (``lab.stop()``, a restart): say so instead of the last action."""
        try:
            self.lab = current_lab(self.lab)   # restarted under the same name: follow it
        except LabStopped:
            self._stopped_line()
        else:
            self.message.value = ('<span class="ql-muted">the lab was restarted: its workers '
                                  "are listed below</span>")
            self._watch(self.lab)
        self.refresh()

    def _stopped_line(self) -> None:
        self.message.value = ('<span class="ql-muted">the lab is stopped: run '
                              "<code>lab = Lab.start()</code> again, then click Apply</span>")

    def apply(self) -> bool:
        """Restart the workers with the chosen count and type (graceful); True on success."""
        try:
            self.lab = lab = current_lab(self.lab)
            self.message.value = '<span class="ql-muted">restarting the workers…</span>'
            t0 = time.perf_counter()
            lab.scale(self.workers.value, self.worker_type.value)
        except EXPECTED_ERRORS + (LabStopped,) as exc:
            self.message.value = error_html(explain_error(exc, "click Apply again"))
            return False
        took = time.perf_counter() - t0
        self.message.value = (f'<span class="ql-ok">restarted: '
                              f"{plural(self.workers.value, self.worker_type.value + ' worker')} "
                              f"(took {took:.1f} s, {time.strftime('%H:%M:%S')})</span>")
        self.refresh()
        self._watch(lab)
        return True

    def kill(self) -> int | None:
        """SIGKILL the chosen worker; returns the pid killed (None after an error)."""
        try:
            self.lab = lab = current_lab(self.lab)
            st = lab.status()
            names, before = st["worker_names"], st["workers"]
            if not names:
                raise LabError("no worker is running: move the slider above 0 and click Apply")
            index = names.index(self.target.value) if self.target.value in names else 0
            pid = lab.kill_worker(index, signal.SIGKILL)
        except EXPECTED_ERRORS + (LabStopped,) as exc:
            self.message.value = error_html(explain_error(exc, "click Kill again"))
            return None
        if lab.config.worker_type == "thread":
            self.message.value = error_html(
                f"killed pid {pid}: thread workers share that one process, so all "
                f"{len(before)} died. Queued tasks wait in the broker; click Apply to start "
                "workers again")
        else:
            self.message.value = (f'<span class="ql-ok">killed {html.escape(names[index])} '
                                  f"(pid {pid}); waiting for Huey's consumer to start a "
                                  "replacement…</span>")
        threading.Thread(target=self._follow, args=(lab, before, pid, time.monotonic()),
                         name="ql-worker-control", daemon=True).start()
        self.refresh()
        return pid

    def _follow(self, lab: Lab, before: list[int], pid: int, t0: float,
                timeout: float = 5.0) -> None:
        """Refresh until the worker PIDs changed (a replacement started) or ``timeout``;
        then say what happened, with the time it took."""
        deadline = t0 + timeout
        try:
            now: list[int] = before
            while time.monotonic() < deadline and lab in running_labs():
                now = lab.status()["workers"]
                if pid not in now and len(now) >= len(before):   # replaced, not just gone
                    break
                time.sleep(0.2)  # a few polls for at most 5 s after a click
            took = time.monotonic() - t0
            if lab.config.worker_type == "process" and lab in running_labs():
                new = sorted(set(now) - set(before))
                if new:
                    self.message.value = (f'<span class="ql-ok">killed pid {pid}; Huey\'s '
                                          f"consumer started a replacement (pid "
                                          f"{', '.join(map(str, new))}) {took:.1f} s later</span>")
                else:
                    self.message.value = error_html(
                        f"killed pid {pid}; no replacement worker within {timeout:.0f} s: "
                        "look at lab.logs('worker'), or click Apply to restart the workers")
            self.refresh()
        except Exception:  # noqa: BLE001 - best effort display refresh
            logger.debug("WorkerControl refresh after kill failed", exc_info=True)

    @property
    def pids(self) -> list[int]:
        """PIDs of the running workers (thread workers all show their consumer's pid)."""
        try:
            return current_lab(self.lab).status()["workers"]
        except (LabStopped, redis.RedisError):
            return []

    def refresh(self) -> None:
        """Redraw the list of workers and their PIDs."""
        try:
            lab = current_lab(self.lab)
            st = lab.status()
        except LabStopped:
            self.table.value = ""   # one line says it, in the message
            if "ql-error" not in self.message.value:
                self._stopped_line()
            self.target.options = []
            return
        except redis.RedisError as exc:
            self.table.value = error_html(explain_error(exc, "click Apply"))
            self.target.options = []
            return
        names, pids = st["worker_names"], st["workers"]
        keep = self.target.value if self.target.value in names else (names[0] if names else None)
        if tuple(names) != tuple(self.target.options):
            self.target.options = names
        self.target.value = keep
        if not names:
            self.table.value = ('<span class="ql-muted">no worker running: tasks wait in the '
                                "queue until you start some</span>")
            return
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td><code>{p}</code></td></tr>"
                       for n, p in zip(names, pids))
        where = (f"threads inside consumer pid {st['consumer']}" if st["worker_type"] == "thread"
                 else f"processes forked by consumer pid {st['consumer']}")
        self.table.value = (f"<div>{html.escape(plural(len(names), st['worker_type'] + ' worker'))} running "
                            f"({html.escape(where)}) · Flask pid {st['web']} · broker pid "
                            f"{st['broker']}</div><table class='ql-table'><tr><th>worker</th>"
                            f"<th>pid</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        return (f"<WorkerControl {self.workers.value} {self.worker_type.value} workers "
                f"selected · running pids {self.pids}>")

