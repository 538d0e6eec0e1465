"""StackDiagram: the lab's processes, drawn from the running system."""
from __future__ import annotations

import html
import os
from typing import TYPE_CHECKING

from labapp.widgets.base import current_lab

if TYPE_CHECKING:
    from labapp.stack import Lab


def _kinds(worker_type: str) -> str:
    return "processes" if worker_type == "process" else f"{worker_type}s"


class StackDiagram:
    """The lab's parts as they run now: producer → broker (the queue) → workers, with real PIDs."""

    def __init__(self, lab: Lab) -> None:
        self.lab = current_lab(lab)
        st = self.lab.status()
        huey = self.lab.huey
        self.status = st
        self.queue_key: str = huey.storage.queue_key
        self.queue_length: int = self.lab.queue_length()
        self.kernel_pid = os.getpid()

    def __repr__(self) -> str:
        st = self.status
        workers = ", ".join(f"{n} (pid {p})" for n, p in zip(st["worker_names"], st["workers"]))
        return "\n".join([
            f"notebook kernel (pid {self.kernel_pid}) ─┐",
            f"Flask app 'web' (pid {st['web']}, {st['url']}) ─┴─ enqueue ─► "
            f"broker (pid {st['broker']}, {st['redis_url']})",
            f"    queue {self.queue_key!r}: {self.queue_length} waiting ─► "
            f"workers: {workers or 'none'} ({_kinds(st['worker_type'])} of consumer pid "
            f"{st['consumer']})",
            "    ◄── results and events go back through the broker",
        ])

    def _repr_html_(self) -> str:
        st = self.status
        e = html.escape

        def box(color: str, body: str) -> str:
            return (f"<div style='border:2px solid {color};border-radius:8px;padding:5px 9px;"
                    f"margin:3px 0;background:#fff'>{body}</div>")

        def column(width: int, boxes: str, caption: str) -> str:
            return (f"<div style='width:{width}px;flex:none;display:flex;flex-direction:column;"
                    f"justify-content:center'>{boxes}<div style='color:#666;font-size:12px'>"
                    f"{caption}</div></div>")

        def arrow(label: str) -> str:
            return ("<div style='flex:none;align-self:center;text-align:center;color:#555;"
                    f"padding:0 4px'>{label}<div style='font-size:22px;line-height:1'>⟶</div></div>")

        wrap = "style='word-break:break-all'"
        workers = "".join(box("#2ca02c", f"<b>{e(n)}</b> · pid <code>{p}</code>")
                          for n, p in zip(st["worker_names"], st["workers"])) or \
            "<div style='color:#777'>no worker running</div>"
        producers = (box("#1f77b4", f"<b>notebook</b> (this kernel)<br>pid <code>{self.kernel_pid}</code>")
                     + box("#1f77b4", f"<b>Flask app</b> (web)<br>pid <code>{st['web']}</code><br>"
                                      f"<code {wrap}>{e(st['url'])}</code>"))
        broker = box("#ff7f0e", f"<b>broker</b> (Valkey, speaks Redis)<br>pid "
                                f"<code>{e(str(st['broker']))}</code><br><code {wrap}>"
                                f"{e(st['redis_url'])}</code><br>queue <code {wrap}>"
                                f"{e(self.queue_key)}</code>: <b>{self.queue_length}</b> waiting")
        return (
            "<div class='ql-diagram' style='font-family:system-ui,sans-serif;font-size:13px;"
            "display:flex;align-items:stretch;gap:2px;overflow-x:auto'>"
            + column(215, producers, "producers: they enqueue")
            + arrow("enqueue")
            + column(280, broker, "holds tasks, results and events")
            + arrow("dequeue")
            + column(185, workers, f"workers: {_kinds(st['worker_type'])} of consumer pid "
                                   f"<code>{st['consumer']}</code>")
            + "</div><div style='font-size:12px;color:#666;margin-top:4px'>Results and events "
            "flow back into the broker; the notebook and the Flask app read them from there.</div>")

