"""Race plot (08): how often B read A's output before A had written it, per strategy."""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from labapp.plots._style import figure
from labapp.plots._style import role

LABELS = {
    "independent": "independent\n(either order)",
    "a_first": "A enqueued\nfirst",
    "pipeline": "pipeline\nA.then(B)",
    "wait_result": "B waits for\nA's result",
}


def plot_race(result: Any) -> Figure:
    """Bars: repetitions where B found A's output missing, per strategy (0 is correct)."""
    fig, (ax,) = figure()
    strategies = list(result.strategies)
    failures, reps = result.failures, result.repetitions
    x = list(range(len(strategies)))
    colours = [role("error") if failures[s] else role("done") for s in strategies]
    bars = ax.bar(x, [failures[s] for s in strategies], color=colours, width=0.6)
    top = max(reps.values())
    for bar, s in zip(bars, strategies):
        ax.annotate(f"{failures[s]}/{reps[s]}" + ("" if failures[s] else "  ✓"),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=10)
    ax.set_xticks(x, [LABELS.get(s, s) for s in strategies])
    ax.set_ylim(0, top * 1.15)
    ax.set_ylabel(f"B missed A's output (of {top} runs)")
    ax.set_title(f"dependent tasks A → B on {result.workers} workers "
                 f"(A works {result.a_seconds * 1e3:g} ms)")
    return fig
