"""`make lab` with LAB_NO_BROWSER=1 starts JupyterLab on the start notebook, headless."""
import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from labapp import procs
from tests.jupyter_proc import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_lab_headless_serves_jupyterlab(tmp_path):
    port = free_port()
    env = dict(os.environ, LAB_NO_BROWSER="1", JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTER_ARGS=f"--port={port} --ServerApp.token=smoke --ServerApp.ip=127.0.0.1")
    proc = subprocess.Popen(["make", "--no-print-directory", "lab"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def status():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token=smoke", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    try:
        assert procs.wait_until(lambda: proc.poll() is not None or status() is not None, 90)
        assert proc.poll() is None, proc.stdout.read()
        assert "started" in status()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks/"
                                    f"00_start_here.ipynb?token=smoke&content=0", timeout=5) as r:
            assert json.loads(r.read())["type"] == "notebook"
    finally:
        procs.stop_group(proc, signal.SIGTERM, grace=15)
