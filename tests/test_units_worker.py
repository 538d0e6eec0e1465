"""What a worker process imports: the learner's folder goes last on sys.path, modules load."""
import sys

import pytest

from labapp import worker


@pytest.fixture
def clean_path(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("LAB_TASK_PATH", raising=False)
    monkeypatch.delenv("LAB_TASK_MODULES", raising=False)


def test_task_path_goes_last_and_only_once(clean_path, tmp_path, monkeypatch):
    assert worker.add_task_path() is None and worker.add_task_path("") is None
    monkeypatch.setenv("LAB_TASK_PATH", str(tmp_path))
    before = list(sys.path)
    assert worker.add_task_path() == str(tmp_path)
    assert worker.add_task_path() == str(tmp_path)
    assert sys.path == before + [str(tmp_path)]


def test_learner_modules_are_imported_by_name(clean_path, tmp_path, monkeypatch):
    (tmp_path / "ql_units_mod_a.py").write_text("VALUE = 'a'\n")
    (tmp_path / "ql_units_mod_b.py").write_text("VALUE = 'b'\n")
    monkeypatch.setenv("LAB_TASK_PATH", str(tmp_path))
    monkeypatch.setenv("LAB_TASK_MODULES", " ql_units_mod_a , ,ql_units_mod_b")
    try:
        assert worker.load_task_modules() == ["ql_units_mod_a", "ql_units_mod_b"]
        assert sys.modules["ql_units_mod_b"].VALUE == "b"
        assert worker.load_task_modules("") == []
    finally:
        sys.modules.pop("ql_units_mod_a", None)
        sys.modules.pop("ql_units_mod_b", None)


def test_a_learner_file_cannot_shadow_a_library(clean_path, tmp_path, monkeypatch):
    (tmp_path / "json.py").write_text("raise RuntimeError('the learner file was imported')\n")
    monkeypatch.setenv("LAB_TASK_PATH", str(tmp_path))
    monkeypatch.delitem(sys.modules, "json")
    assert worker.load_task_modules("json") == ["json"]
    assert sys.modules["json"].__file__ != str(tmp_path / "json.py")


def test_a_missing_module_raises_import_error(clean_path):
    with pytest.raises(ModuleNotFoundError, match="no_such_ql_module"):
        worker.load_task_modules("no_such_ql_module")
