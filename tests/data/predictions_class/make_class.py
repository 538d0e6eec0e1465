"""Writes the synthetic class used by tests/test_predictions.py: saved notebooks with known
prediction records (none, re-commits, automatic commits, version-1 records, a broken file)
and spec.json listing every record. Run from the repository root:

    python tests/data/predictions_class/make_class.py
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "submissions"
MIME = "application/vnd.queue-lab.prediction+json"
QUESTIONS = {
    "nb07.myth1": ("Does a task finish sooner with more workers?",
                   [("sooner", "yes, sooner"), ("same", "no, about the same")]),
    "nb07.order": ("Do tasks finish in the order they were enqueued?",
                   [("in-order", "in order"), ("out-of-order", "not always")]),
    "nb00.who-runs": ("Which process runs a task that the Flask app enqueued?",
                      [("the Flask app", "the Flask app"), ("this notebook", "this notebook"),
                       ("a worker", "a worker")]),
}
NOTEBOOK_QIDS = {"07_myth_busters.ipynb": ["nb07.myth1", "nb07.order"],
                 "00_start_here.ipynb": ["nb00.who-runs"]}
# (learner path, [(qid, answer, measured, after_reveal, auto, version)]) - commit order = list order
CLASS = [
    ("ada/07_myth_busters.ipynb", [("nb07.myth1", "sooner", "same", False, False, 2),
                                   ("nb07.order", "in-order", "out-of-order", False, False, 2)]),
    ("ada/00_start_here.ipynb", [("nb00.who-runs", "the Flask app", "a worker", False, False, 2),
                                 ("nb00.who-runs", "a worker", "a worker", True, False, 2)]),
    ("bo/07_myth_busters.ipynb", [("nb07.myth1", "sooner", "same", False, False, 2),
                                  ("nb07.myth1", "same", "same", True, False, 2),
                                  ("nb07.order", "in-order", "in-order", False, False, 2)]),
    ("cy/07_myth_busters.ipynb", [("nb07.myth1", "same", "same", False, False, 2),
                                  ("nb07.order", "out-of-order", "out-of-order", False, False, 2)]),
    ("dee/07_myth_busters.ipynb", []),                                   # no prediction at all
    ("eli/07_myth_busters.ipynb", [("nb07.myth1", "sooner", "same", False, False, 1),   # version 1
                                   ("nb07.order", "in-order", None, False, False, 1)]),
    ("fay/07_myth_busters.ipynb", [("nb07.myth1", "sooner", "same", False, True, 2),    # automatic
                                   ("nb07.order", "out-of-order", "out-of-order", False, False, 2)]),
    ("gus/07_myth_busters.ipynb", [("nb07.myth1", "sooner", None, False, False, 2),
                                   ("nb07.order", "in-order", "out-of-order", False, False, 2),
                                   ("nb07.order", "out-of-order", "out-of-order", True, False, 2)]),
    ("hal/07_myth_busters.ipynb", [("nb07.order", "in-order", "out-of-order", True, False, 2)]),  # only after the reveal
    ("ivy/07_myth_busters.ipynb", [("nb07.myth1", "same", "same", False, False, 2)]),
    ("jo.ipynb", [("nb07.myth1", "sooner", "same", False, False, 2),
                  ("nb07.order", "in-order", "out-of-order", False, False, 2)]),
    ("kai.ipynb", [("nb07.myth1", "sooner", "sooner", False, False, 2),
                   ("nb07.order", "out-of-order", "in-order", False, False, 1)]),
    ("lu.ipynb", [("nb07.myth1", "same", "same", False, False, 1),
                  ("nb07.order", "in-order", "out-of-order", False, False, 2)]),
    ("mo/07_myth_busters.ipynb", [("nb07.myth1", "sooner", "same", False, False, 2),
                                  ("nb07.order", "in-order", "in-order", False, False, 2)]),
]
BROKEN = "zed/07_myth_busters.ipynb"   # a file that is not a notebook: reported, not counted


def record(qid, answer, measured, after_reveal, auto, version, t):
    question, options = QUESTIONS[qid]
    labels = dict(options)
    rec = {"version": version, "qid": qid, "question": question,
           "choices": [v for v, _ in options], "answer": answer, "label": labels[answer],
           "changed_selection": False, "selections": 1, "measured": measured,
           "matched": None if measured is None else measured == answer, "auto": auto,
           "after_reveal": after_reveal, "shown_at": t - 5, "committed_at": t, "revealed_at": t + 1}
    if version >= 2:
        rec.update(labels=[l for _, l in options],
                   measured_label=None if measured is None else labels[measured],
                   explained=f"this run measured {measured}", notebook=None)
    return rec


def asks(name):
    """Flat submissions (``jo.ipynb``) are notebook 07."""
    return NOTEBOOK_QIDS.get(name, NOTEBOOK_QIDS["07_myth_busters.ipynb"])


def notebook(name, records):
    cells = []
    for qid in asks(name):
        mine = [r for r in records if r["qid"] == qid]
        outputs = []
        if mine:
            data = ({"version": 2, "qid": qid, "records": mine} if mine[-1]["version"] >= 2
                    else mine[-1])   # version 1 stored one bare record per output
            if mine[-1]["version"] < 2 and len(mine) > 1:
                raise ValueError("version-1 outputs hold one record")
            outputs.append({"output_type": "display_data", "metadata": {},
                            "data": {MIME: data, "text/plain": ""}})
        cells.append({"cell_type": "code", "execution_count": 3 if mine else None, "id": qid.replace(".", "-"),
                      "metadata": {}, "outputs": outputs,
                      "source": f'Predict("...", ["a", "b"], run=run, qid="{qid}")'})
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def main():
    spec = []
    t = 1_790_000_000.0
    for path, commits in CLASS:
        records = []
        for qid, answer, measured, after, auto, version in commits:
            t += 60
            records.append(record(qid, answer, measured, after, auto, version, t))
        target = OUT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(notebook(Path(path).name, records), indent=1) + "\n")
        learner = Path(path).parts[0] if len(Path(path).parts) > 1 else Path(path).stem
        spec.append({"learner": learner, "path": path, "asks": asks(Path(path).name),
                     "records": records})
    (OUT / BROKEN).parent.mkdir(parents=True, exist_ok=True)
    (OUT / BROKEN).write_text("{ this is not json")
    (HERE / "spec.json").write_text(json.dumps({"questions": QUESTIONS, "notebooks": spec,
                                                "broken": BROKEN}, indent=1) + "\n")


if __name__ == "__main__":
    main()
