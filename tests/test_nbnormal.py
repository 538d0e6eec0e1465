"""Notebooks are stored as JupyterLab keeps them, so opening one does not mark it modified.

The cause (seen in JupyterLab 4 with Chromium): when the kernel starts, JupyterLab replaces
``metadata.language_info`` with the kernel's full one; a notebook storing only
``{"name": "python"}`` is then "modified" on open and asks to be saved on close.
``python -m labapp.nbnormal notebooks/ exercises/ solutions/`` fixes a notebook.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from labapp import nbnormal

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for folder in ("notebooks", "exercises", "solutions")
                   for p in (ROOT / folder).glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_is_normalised(path):
    assert nbnormal.is_normal(path), f"run: python -m labapp.nbnormal {path.relative_to(ROOT)}"


def test_normalise_writes_what_jupyterlab_would_and_is_idempotent(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"language_info": {"name": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("1 + 1", outputs=[nbformat.v4.new_output(
        "execute_result", {"text/plain": "2"}, execution_count=1)], execution_count=1),
        nbformat.v4.new_markdown_cell("# hi")]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert not nbnormal.is_normal(path)
    assert nbnormal.main(["--check", str(tmp_path)]) == 1
    assert nbnormal.main([str(tmp_path)]) == 0
    stored = json.loads(path.read_text())
    info = stored["metadata"]["language_info"]
    assert {"codemirror_mode", "file_extension", "mimetype", "nbconvert_exporter",
            "pygments_lexer", "version"} <= set(info)
    assert stored["cells"][0]["outputs"] == [] and stored["cells"][0]["execution_count"] is None
    assert nbnormal.is_normal(path) and nbnormal.main(["--check", str(path)]) == 0
    before = path.read_bytes()
    nbnormal.main([str(path)])
    assert path.read_bytes() == before


def test_bad_path_is_one_clear_line(tmp_path):
    with pytest.raises(SystemExit, match="not a notebook or a folder"):
        nbnormal.main([str(tmp_path / "missing.ipynb")])
