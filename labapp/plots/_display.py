"""Show a ``Figure`` that is a notebook cell's last expression as a PNG.

The plots build ``matplotlib.figure.Figure`` objects without pyplot (so nothing leaks from one
cell to the next), which means IPython's inline backend never registers its PNG formatter for
them: without this, a figure would display as ``<Figure size 800x400 with 1 Axes>``.
"""
from __future__ import annotations



def enable_notebook_display() -> bool:
    """Register IPython's PNG formatter for matplotlib figures; False outside IPython."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    select_figure_formats(shell, {"png"}, bbox_inches="tight")
    return True
