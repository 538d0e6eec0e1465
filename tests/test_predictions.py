"""Prediction records: the class report from saved notebooks, the learner's summary, clearing."""
from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labapp import predictions

DATA = Path(__file__).resolve().parent / "data" / "predictions_class"
SPEC = json.loads((DATA / "spec.json").read_text())


def _pct(n, d):
    return f"{100 * n / d:.1f} %"


def expected_from_spec():
    """Per question, counted straight from spec.json (not through labapp.predictions)."""
    out = {}
    for qid, (question, options) in SPEC["questions"].items():
        labels = dict(options)
        asked = {nb["learner"] for nb in SPEC["notebooks"] if qid in nb["asks"]}
        first, recommits, recommits_matched, auto = {}, 0, 0, 0
        for nb in SPEC["notebooks"]:
            for r in sorted((r for r in nb["records"] if r["qid"] == qid),
                            key=lambda r: r["committed_at"]):
                if r["auto"]:
                    auto += 1
                elif r["after_reveal"] or nb["learner"] in first:
                    recommits += 1
                    recommits_matched += r["matched"] is True
                else:
                    first[nb["learner"]] = r
        answers = collections.Counter(r["answer"] for r in first.values())
        settled = [r for r in first.values() if r["measured"] is not None]
        out[qid] = dict(question=question, labels=labels, learners=len(asked),
                        predicted=len(first), answers=answers,
                        settled=len(settled), matched=sum(r["matched"] for r in settled),
                        matched_by={a: sum(1 for r in settled if r["answer"] == a and r["matched"])
                                    for a in labels},
                        settled_by={a: sum(1 for r in settled if r["answer"] == a) for a in labels},
                        recommits=recommits, recommits_matched=recommits_matched, auto=auto,
                        names={a: sorted(n for n, r in first.items() if r["answer"] == a)
                               for a in labels})
    return out


def test_the_synthetic_class_is_what_spec_json_says():
    assert len(SPEC["notebooks"]) >= 12
    for nb in SPEC["notebooks"]:
        saved = json.loads((DATA / "submissions" / nb["path"]).read_text())
        stored = []
        for cell in saved["cells"]:
            for out in cell["outputs"]:
                data = out["data"][predictions.MIME]
                stored += data["records"] if "records" in data else [data]
        assert sorted(stored, key=lambda r: r["committed_at"]) == nb["records"]
    kinds = [r for nb in SPEC["notebooks"] for r in nb["records"]]
    assert any(not nb["records"] for nb in SPEC["notebooks"])          # a learner with none
    assert any(r["after_reveal"] for r in kinds) and any(r["auto"] for r in kinds)
    assert any(r["version"] == 1 for r in kinds) and any(r["measured"] is None for r in kinds)


@pytest.mark.parametrize("names", [False, True])
def test_class_report_gives_exact_percentages(tmp_path, names):
    args = [sys.executable, "-m", "labapp", "predictions", str(DATA / "submissions"),
            "--out", str(tmp_path)] + (["--names"] if names else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "read 14 notebooks of 13 learners" in done.stdout
    assert "zed" in done.stderr and "cannot read it as a notebook" in done.stderr
    md = (tmp_path / "misconceptions.md").read_text()
    png = tmp_path / "misconceptions.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    expected = expected_from_spec()
    overview = re.findall(r"^\| \d+ \| `([a-z0-9.-]+)`", md, re.M)
    wrong_share = {q: (e["settled"] - e["matched"]) / e["settled"] for q, e in expected.items()}
    assert overview == sorted(expected, key=lambda q: (-wrong_share[q], -expected[q]["predicted"], q))
    for qid, e in expected.items():
        row = next(line for line in md.splitlines() if line.startswith("| ") and f"`{qid}`" in line)
        wrong = e["settled"] - e["matched"]
        assert f"| {e['predicted']} of {e['learners']} |" in row
        assert f"| {_pct(wrong, e['settled'])} ({wrong} of {e['settled']}) |" in row
        assert f"| {e['learners'] - e['predicted']} | {e['recommits']} ({e['recommits_matched']} matched) |" in row
        section = md.split(f"`{qid}`: ")[1].split("\n## ")[0]
        for answer, label in e["labels"].items():
            n = e["answers"].get(answer, 0)
            line = (f"| {label} | {n} | {_pct(n, e['predicted'])} | "
                    f"{e['matched_by'][answer]} of {e['settled_by'][answer]} |")
            if names:
                line += f" {', '.join(e['names'][answer])} |"
            assert line in section, (line, section)
        if e["auto"]:
            assert f"Automatic commits left out: {e['auto']}." in section
    assert "Older records read: 4 of version 1." in md
    people = ["ada", "bo", "cy", "eli", "gus", "jo", "kai", "lu", "mo", "zed"]
    if names:
        assert "zed" in md
    else:
        assert "Anonymous" in md and not any(re.search(rf"\b{p}\b", md) for p in people)


def test_write_report_api_for_the_grader(tmp_path):
    notebooks = predictions.find_notebooks(DATA / "submissions")
    report = predictions.write_report(notebooks, tmp_path / "out", names=False,
                                      root=DATA / "submissions")
    assert report.markdown.exists() and report.png.exists()
    assert report.summary["learners"] == 13 and len(report.stats) == 3
    assert "3 questions" in repr(report)


def test_cli_bad_input_is_one_line(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "labapp", "predictions", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    missing = run(str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    empty = run(str(tmp_path))
    assert empty.returncode == 2 and "no .ipynb file" in empty.stderr


def test_version_1_records_are_upgraded_and_newer_ones_refused():
    v1 = {"version": 1, "qid": "nb07.x", "question": "Q?", "choices": ["a", "b"], "answer": "a",
          "label": "A", "measured": "b", "matched": False, "auto": False, "after_reveal": False,
          "committed_at": 1.0}
    (rec,) = predictions.records_from_output(v1)
    assert rec["version"] == predictions.RECORD_VERSION and rec["source_version"] == 1
    assert rec["labels"] == ["a", "b"] and rec["measured_label"] == "b" and rec["explained"] == ""
    with pytest.raises(ValueError, match="newer than this labapp"):
        predictions.upgrade(dict(v1, version=99))


def _learner_notebook(path: Path, records):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('Predict(..., qid="nb07.order")')
    data = predictions.payload("nb07.order", records)
    cell.outputs = [nbformat.v4.new_output("display_data", predictions.bundle(data))]
    nb.cells = [cell]
    nbformat.write(nb, path)


def test_my_predictions_lists_saved_records_and_forget_clears_them(tmp_path, monkeypatch):
    book = tmp_path / "notebooks"
    book.mkdir()
    rec = dict(SPEC["notebooks"][0]["records"][1], explained="your run had 7 inversions")
    _learner_notebook(book / "07_myth_busters.ipynb", [rec])
    auto = dict(rec, auto=True, committed_at=rec["committed_at"] + 1)
    _learner_notebook(book / "06_scaling.ipynb", [auto])
    monkeypatch.chdir(book)
    from labapp.widgets import predict
    monkeypatch.setattr(predict, "RECORDS", [])    # this test's kernel committed nothing
    summary = predictions.my_predictions()
    assert len(summary.records) == 1 and summary.auto_left_out == 1
    assert summary.sentence().startswith("Before seeing the answer you committed 1 prediction in "
                                         "1 notebook: 0 matched")
    text = repr(summary)
    assert "You expected: in order. Your run: your run had 7 inversions [✗ did not match]" in text
    page = summary._repr_html_()
    assert "<img" in page and "data:image/png;base64," in page and "07_myth_busters" in page
    assert predictions.forget() == 2
    assert predictions.my_predictions().records == []
    assert "No prediction recorded yet" in predictions.my_predictions().sentence()


def test_learner_summary_renders_in_a_headless_kernel(tmp_path):
    """A notebook with two committed predictions and the summary cell, run by nbclient."""
    from nbclient import NotebookClient
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "from labapp.widgets import Predict\n"
        "p = Predict('Two plus two?', ['4', '5'], run=lambda: 4, qid='test.sum',\n"
        "            truth=lambda r: str(r), explain=lambda r: f'measured {r}', auto=False)\n"
        "p.commit('5')\np",
        "q = Predict('Is it odd?', ['yes', 'no'], run=lambda: 3, qid='test.odd',\n"
        "            truth=lambda r: 'yes', explain=lambda r: 'measured 3', auto=False)\n"
        "q.commit('yes')\nq",
        "from labapp.predictions import my_predictions\nmy_predictions()")]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    record_outputs = [o for o in nb.cells[0].outputs if predictions.MIME in o.get("data", {})]
    assert record_outputs, "the commit is saved as an output of its cell"
    (rec,) = predictions.records_from_output(record_outputs[0]["data"][predictions.MIME])
    assert rec["answer"] == "5" and rec["matched"] is False and rec["auto"] is False
    summary = nb.cells[2].outputs[0]["data"]
    assert "you committed 2 predictions in 1 notebook: 1 matched" in summary["text/html"]
    assert "data:image/png;base64," in summary["text/html"]
    assert "measured 4" in summary["text/plain"]


def test_hand_edited_records_cannot_inject_markup_or_break_the_report(tmp_path):
    hostile = {"version": 2, "qid": "nb07.x", "question": "<script>alert(1)</script> | ![x](http://e)",
               "choices": "ab", "labels": 7, "answer": "<img src=x onerror=alert(1)>",
               "measured": None, "matched": None, "committed_at": 5}
    junk = [{"qid": "BAD QID", "answer": "a"}, {"qid": "nb07.y"}, "text", {"records": "nope"}]
    folder = tmp_path / "subs"
    folder.mkdir()
    for i, data in enumerate([{"records": [hostile]}, *junk]):
        nb = {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
                         "outputs": [{"output_type": "display_data", "metadata": {},
                                      "data": {predictions.MIME: data}}]}],
              "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        (folder / f"s{i}.ipynb").write_text(json.dumps(nb))
    report = predictions.write_report(predictions.find_notebooks(folder), tmp_path / "out")
    md = report.markdown.read_text()
    assert "<script>" not in md and "<img" not in md and "![x](http" not in md
    assert "&lt;script&gt;" in md and [s.qid for s in report.stats] == ["nb07.x"]
