"""Write notebooks the way JupyterLab keeps them, so opening one does not mark it modified.

When a kernel starts, JupyterLab replaces the notebook's ``metadata.language_info`` with the
kernel's own (``codemirror_mode``, ``file_extension``, ``mimetype``, ``nbconvert_exporter``,
``pygments_lexer``, ``version``) and ``metadata.kernelspec`` with the kernel's name; a
notebook that stores less (e.g. ``{"name": "python"}``) is then "modified" on open and asks
to be saved on close. :func:`normalise` stores exactly what ipykernel reports, fills the
fields nbformat 4.5 requires of every cell, and clears outputs.

``language_info.version`` is the Python version of the kernel: on another Python, JupyterLab
still rewrites that one field. Run ``python -m labapp.nbnormal notebooks/ exercises/`` in the
environment learners use (e.g. Binder's ``postBuild``) to match it there.

Command line: ``python -m labapp.nbnormal [--check] PATH...`` (folders: every ``*.ipynb`` in them).
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def language_info() -> dict[str, Any]:
    """``language_info`` as ipykernel sends it to JupyterLab (this interpreter's version)."""
    from ipykernel.ipkernel import IPythonKernel
    return copy.deepcopy(dict(IPythonKernel.language_info))


def normalise(nb: nbformat.NotebookNode, version: str | None = None) -> nbformat.NotebookNode:
    """A copy of ``nb`` as JupyterLab would hold it after opening (without outputs).

    :param version: the Python version to store (default: this interpreter's, as ipykernel says).
    """
    out = copy.deepcopy(nb)
    out.nbformat, out.nbformat_minor = 4, max(int(out.get("nbformat_minor", 5)), 5)
    info = language_info()
    if version is not None:
        info["version"] = version
    out.metadata["language_info"] = info
    out.metadata["kernelspec"] = dict(KERNELSPEC)
    out.metadata.pop("widgets", None)  # widget state saved by a browser: never committed
    for cell in out.cells:
        cell.setdefault("metadata", {})
        if "id" not in cell:
            cell["id"] = nbformat.v4.new_code_cell().id
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(out)
    return out


def is_normal(path: Path) -> bool:
    """True when ``path`` is stored exactly as :func:`normalise` writes it (any Python version)."""
    nb = nbformat.read(path, as_version=4)
    version = nb.metadata.get("language_info", {}).get("version")
    return nb == normalise(nb, version=version if isinstance(version, str) else None)


def _paths(args: list[str]) -> list[Path]:
    out: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.suffix == ".ipynb" and path.is_file():
            out.append(path)
        else:
            raise SystemExit(f"{arg}: not a notebook or a folder: give .ipynb files or folders")
    return out


def main(argv: list[str] | None = None) -> int:
    """Normalise notebooks in place (``--check``: only list those that need it; exit 1 if any)."""
    parser = argparse.ArgumentParser(
        prog="python -m labapp.nbnormal",
        description="Store notebooks as JupyterLab keeps them (full language_info, no outputs), "
                    "so opening one does not mark it modified.")
    parser.add_argument("paths", nargs="+", help="notebooks or folders of notebooks")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; list the notebooks that need normalising")
    args = parser.parse_args(argv)
    todo = [p for p in _paths(args.paths) if not is_normal(p)]
    for path in todo:
        if args.check:
            print(f"{path}: not normalised (run python -m labapp.nbnormal {path})")
        else:
            nbformat.write(normalise(nbformat.read(path, as_version=4)), path)
            print(f"{path}: normalised")
    return 1 if args.check and todo else 0


if __name__ == "__main__":
    sys.exit(main())
