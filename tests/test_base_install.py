"""A newcomer's install runs notebook 04: `pip install .` only (no test extra), then nbclient.

Slow: it builds a fresh venv (pip's cache keeps it to a minute or two after the first time)
and executes notebook 04 in a kernel of that venv, from a folder outside the repository, so
the installed package (not the checkout) is what runs.
"""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_tools.ipynb"

RUN = textwrap.dedent("""
    import sys
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import sys, labapp, rq, celery; print('kernel', sys.prefix, labapp.__file__)"))
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[2]}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    print("errors:", len(errors), errors[:1])
    print(nb.cells[-1].outputs[0]["text"])
""")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_base_install_executes_notebook_04(tmp_path):
    # Build from a copy: an in-tree build would leave build/ in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "labapp", src / "labapp",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                          str(src)], capture_output=True, text=True, timeout=480)
    assert pip.returncode == 0, pip.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "REDIS_URL") and not k.startswith("LAB_")}
    env.update(LAB_AUTO_PREDICT="1", LAB_RUN_DIR=str(tmp_path / "run"),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               JUPYTER_PATH=str(venv / "share" / "jupyter"), JUPYTER_DATA_DIR=str(tmp_path / "jd"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jc"), JUPYTER_RUNTIME_DIR=str(tmp_path / "jr"),
               IPYTHONDIR=str(tmp_path / "ipy"), MPLBACKEND="agg")
    run = subprocess.run([str(py), "-c", RUN, str(NOTEBOOK), str(work)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "errors: 0" in run.stdout
    # The kernel ran in the new venv, on the installed package (not the checkout).
    assert f"kernel {venv} {venv}" in run.stdout, run.stdout
