"""Retry timeline (05): each strategy's attempts over time, failures and the waits between them."""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from labapp.plots._style import figure
from labapp.plots._style import role

HERD_HEIGHT = 0.64  # share of a row that the clients of one strategy fan out over


def plot_retries(result: Any) -> Figure:
    """One row per strategy: ✕ for a failed attempt, ● for success, each wait an arrow with its
    measured length in seconds.

    When several clients ran each strategy (``clients > 1``), a row shows every client on its
    own thin line, so retries that land in the same scheduler tick line up vertically; the
    number above each column counts the retries that started in that tick.
    """
    names = list(dict.fromkeys(r.name for r in result.runs))
    herd = getattr(result, "clients", 1) > 1
    fig, (ax,) = figure(height=max(2.6, 1.4 + (1.3 if herd else 0.8) * len(names)))
    origin = min(r.enqueued for r in result.runs if r.enqueued == r.enqueued)
    right = 0.0
    for y, name in enumerate(names):
        runs = [r for r in result.runs if r.name == name]
        right = max(right, _draw_strategy(ax, runs, y, origin, role(name, y), herd))
        if herd:
            _note_herd(ax, result, name, runs, y, origin, role(name, y))
        else:
            run = runs[0]
            last = run.attempts[-1].end - origin if run.attempts else 0.0
            ax.text(last, y + 0.22, f"  {run.final_state}", ha="left", va="top", fontsize=9,
                    color=role("error") if run.final_state != "complete" else role("complete"))
    ax.set_yticks(range(len(names)), [_label(result.runs_of(n)) for n in names])
    ax.set_ylim(len(names) - 0.5, -0.6 - (0.15 if herd else 0.0))
    ax.set_xlim(-0.2, max(1.0, right) * (1.25 if herd else 1.08) + 0.3)
    ax.set_xlabel("time since the task was enqueued (s)" if not herd else
                  "time since the tasks were enqueued (s)")
    if herd:
        ax.set_title(f"{result.clients} clients fail {result.fail_times}x at the same moment: "
                     f"how many retry in each tick?\n(coloured numbers; delays are rounded up "
                     f"to the scheduler's {result.tick:g} s tick)")
    else:
        ax.set_title(f"a task that fails {result.fail_times}x · delays are rounded up to the "
                     f"scheduler's {result.tick:g} s tick")
    _legend(ax, herd)
    ax.grid(False, axis="y")
    return fig


def _draw_strategy(ax: Any, runs: list[Any], y: float, origin: float, c: str,
                   herd: bool) -> float:
    """One strategy's row: its waits (or one thin line per client) and a marker per attempt.

    Returns where its last attempt ended (seconds since ``origin``), for the x range.
    """
    right = 0.0
    step = HERD_HEIGHT / max(len(runs) - 1, 1)
    for i, run in enumerate(runs):
        row = y + (i - (len(runs) - 1) / 2) * step if herd else y
        if herd:
            _draw_client(ax, run, row, origin, c)
        else:
            _draw_waits(ax, run, row, origin, c)
        for a in run.attempts:
            failed = a.outcome != "complete"
            ax.plot(a.start - origin, row, marker="X" if failed else "o",
                    markersize=7 if herd else 11,
                    color=role("error") if failed else role("complete"),
                    markeredgecolor="black", markeredgewidth=0.5 if herd else 0.6,
                    linestyle="none", zorder=3)
            right = max(right, a.end - origin)
    return right


def _note_herd(ax: Any, result: Any, name: str, runs: list[Any], y: float, origin: float,
               c: str) -> None:
    """Above the row, the retries per scheduler tick; at its end, how many completed."""
    top = y - HERD_HEIGHT / 2 - 0.08
    for t, n in result.bursts(name):  # relative to result.origin, the same time 0
        ax.text(t + result.origin - origin, top, f"{n}", ha="center", va="bottom",
                fontsize=9, fontweight="bold", color=c)
    last = max(r.attempts[-1].end for r in runs if r.attempts) - origin
    done = sum(r.completed for r in runs)
    ax.text(last, y, f"   {done}/{len(runs)} complete\n   at most "
            f"{result.peak(name)} retries\n   in one tick", ha="left", va="center",
            fontsize=8.5, color="black")


def _legend(ax: Any, herd: bool) -> None:
    legend = [Line2D([], [], marker="X", color=role("error"), markeredgecolor="black",
                     linestyle="none", markersize=9, label="attempt failed"),
              Line2D([], [], marker="o", color=role("complete"), markeredgecolor="black",
                     linestyle="none", markersize=9, label="attempt succeeded")]
    if herd:
        legend.append(Line2D([], [], color="#7f7f7f", linewidth=1.2, label="one line per client"))
        ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3,
                  fontsize=9, frameon=False)
    else:
        ax.legend(handles=legend, loc="upper right", fontsize=9)


def _draw_waits(ax: Any, run: Any, y: float, origin: float, c: str) -> None:
    for i, (a, gap) in enumerate(zip(run.attempts, run.gaps)):  # a wait follows each failure
        x0, x1 = a.end - origin, a.end + gap - origin
        ax.annotate("", xy=(x1, y), xytext=(x0, y),
                    arrowprops={"arrowstyle": "->", "color": c, "linewidth": 1.5})
        # Alternate above/below: two short waits side by side would otherwise run together.
        above = i % 2 == 0
        ax.text((x0 + x1) / 2, y - 0.16 if above else y + 0.16, f"{gap:.1f} s",
                ha="center", va="bottom" if above else "top", fontsize=8.5, color="black")


def _draw_client(ax: Any, run: Any, y: float, origin: float, c: str) -> None:
    if run.attempts:
        ax.plot([run.attempts[0].start - origin, run.attempts[-1].end - origin], [y, y],
                color=c, linewidth=1.2, alpha=0.8, zorder=2)


def _label(runs: list[Any]) -> str:
    run = runs[0]
    clients = f"\n{len(runs)} clients" if len(runs) > 1 else ""
    if run.name == "none":
        return "no retries" + clients
    if run.name == "fixed":
        return f"fixed\n{run.retry_delay:g} s" + clients
    if run.name == "backoff":
        return f"backoff\n{run.retry_delay:g} s × {run.retry_backoff:g}" + clients
    if run.name == "jitter":
        return (f"backoff + jitter\n{run.retry_delay:g} s × {run.retry_backoff:g} "
                f"± {run.jitter:.0%}" + clients)
    return run.name + clients
