"""Shared look of the lab's plots: the Okabe-Ito palette, notebook-width figures, tidy axes.

Okabe & Ito's eight colours stay distinguishable for the common colour-vision deficiencies
(and in greyscale, together with the markers and line styles each plot adds).
"""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

#: Okabe-Ito colours, by name
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
#: how the prose names each colour (plain words a learner would use for what they see)
COLOUR_WORDS = {
    "#E69F00": "orange",
    "#56B4E9": "light blue",
    "#009E73": "green",
    "#F0E442": "yellow",
    "#0072B2": "blue",
    "#D55E00": "red-orange",
    "#CC79A7": "pink",
    "#000000": "black",
    "#7f7f7f": "grey",
}
#: the order colours are handed out in (yellow last: weak on white)
CYCLE = ["blue", "orange", "green", "vermillion", "purple", "sky", "black", "yellow"]
#: fixed colours for the things every plot talks about, so they match across notebooks
ROLE = {
    "inline": OKABE_ITO["vermillion"],
    "queued": OKABE_ITO["blue"],
    "queue": OKABE_ITO["blue"],
    "hello": OKABE_ITO["black"],
    "thread": OKABE_ITO["orange"],
    "done": OKABE_ITO["green"],
    "complete": OKABE_ITO["green"],
    "error": OKABE_ITO["vermillion"],
    "lost": OKABE_ITO["black"],
    "ideal": "#7f7f7f",
    "none": OKABE_ITO["vermillion"],
    "fixed": OKABE_ITO["orange"],
    "backoff": OKABE_ITO["blue"],
    "jitter": OKABE_ITO["purple"],
}
WIDTH, HEIGHT = 8.0, 4.0  # inches: a Jupyter cell's width at the default dpi
FONT_SIZE = 10


def colour(i: int) -> str:
    """The ``i``-th colour of the palette (wraps around)."""
    return OKABE_ITO[CYCLE[i % len(CYCLE)]]


def role(name: str, fallback: int = 0) -> str:
    """The colour reserved for ``name`` (``inline``, ``queued``, ``error`` …), else ``colour(fallback)``."""
    return ROLE.get(name, colour(fallback))


def colour_word(name: str) -> str:
    """The word for the colour of role ``name`` (or of a hex colour), e.g. ``inline`` → ``red-orange``."""
    hex_ = ROLE.get(name, name)
    return COLOUR_WORDS.get(hex_, COLOUR_WORDS.get(hex_.upper(), hex_))


def figure(ncols: int = 1, *, width: float = WIDTH, height: float = HEIGHT,
           width_ratios: list[float] | None = None) -> tuple[Figure, list[Any]]:
    """A new Figure (not registered with pyplot, so nothing leaks) and its ``ncols`` axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False, width_ratios=width_ratios)[0]
    for ax in axes:
        tidy(ax)
    return fig, list(axes)


def tidy(ax: Any) -> None:
    """Light grid behind the data, no top/right frame, readable tick labels."""
    ax.set_axisbelow(True)
    ax.grid(True, color="#dddddd", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=FONT_SIZE - 1)
    ax.title.set_fontsize(FONT_SIZE + 1)
    ax.xaxis.label.set_fontsize(FONT_SIZE)
    ax.yaxis.label.set_fontsize(FONT_SIZE)
