"""DemoServer and request(): real waitress processes, clear errors for bad input."""
import pytest

from labapp.demo_server import DemoServer
from labapp.demo_server import free_port
from labapp.demo_server import request


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="module:variable"):
        DemoServer("thread_app")
    with pytest.raises(ValueError, match="threads"):
        DemoServer("a:app", threads=0)


def test_serves_restarts_and_stops(tmp_path):
    (tmp_path / "hello_app.py").write_text(
        "import os\nfrom flask import Flask\napp = Flask(__name__)\n"
        "@app.get('/')\ndef hello():\n    return {'pid': os.getpid()}\n")
    with DemoServer("hello_app:app", cwd=tmp_path, threads=2) as server:
        first = request(server.url)
        assert first.status == 200 and first.seconds < 5
        assert "2 threads" in repr(server) and "pid" in repr(server)
        port = server.port
        server.restart()
        assert server.port == port and request(server.url).body["pid"] != first.body["pid"]
        assert request(server.url + "missing").status == 404
    assert not server.running and "stopped" in repr(server)
    with pytest.raises(ConnectionError, match="is the server running"):
        request(server.url, timeout=2)


def test_a_broken_app_fails_with_its_log(tmp_path):
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('learner typo')\n")
    server = DemoServer("broken_app:app", cwd=tmp_path, port=free_port())
    with pytest.raises(RuntimeError, match="learner typo"):
        server.start(timeout=15)
    assert not server.running
