"""The grader's side of a graded kernel: armed before the learner's first cell, run after the last.

:func:`arm` runs when the kernel starts (``IPKernelApp.exec_lines``), before any learner code:
it reads the run's secret key from a file and deletes it, imports the checks and keeps private
references to them, and takes a snapshot of the functions and classes the checks rely on.
:func:`finish` runs in one extra cell the grader appends after the learner's cells: it
compares that snapshot with the state the learner's code left (any rebound function, replaced
method or patched timer means ``tampered``), starts a lab of its own, runs each exercise's check
on the learner's objects, and displays one record signed with the key (MIME :data:`MIME`).

The records ``check()`` displays while the learner's cells run are never scores; only a
correctly signed record from the grader's cell is. What this cannot prevent is stated in the
README's teacher section: the checks call the learner's functions in this same process.
"""
from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import os
import re
import sys
import time
import types
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from labapp.stack import Lab

MIME = "application/vnd.queue-lab.grade+json"
#: Modules whose functions and classes must look the same after the learner's cells.
WATCHED = ("labapp", "huey", "redis", "time", "json", "hmac", "hashlib", "builtins", "os",
           "subprocess", "socket", "psutil", "requests", "urllib3", "inspect")
#: Names the kernel itself rebinds on every cell (ipykernel routes input() to the front end).
IGNORED = {("builtins", "input"), ("builtins", "raw_input")}
_USAGE_ARG = re.compile(r"\b(\w+)\s*=\s*(\w+)")  #: check("ex06_scaling", workers=WORKERS)
_finish: Callable[..., Any] | None = None


def sign(key: bytes, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` plus its HMAC-SHA256 under ``key`` (over canonical JSON)."""
    body = json.dumps(payload, sort_keys=True, default=str)
    return {"payload": json.loads(body),
            "mac": hmac.new(key, body.encode(), hashlib.sha256).hexdigest()}


def verify(key: bytes, record: Any) -> dict[str, Any] | None:
    """The payload of ``record`` when its MAC is right under ``key``; None otherwise."""
    if not isinstance(record, dict) or not isinstance(record.get("mac"), str):
        return None
    try:
        body = json.dumps(record.get("payload"), sort_keys=True, default=str)
    except (TypeError, ValueError):
        return None
    good = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    payload = record.get("payload")
    return payload if hmac.compare_digest(good, record["mac"]) and isinstance(payload, dict) \
        else None


def _watched(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in WATCHED)


def _members(obj: Any) -> dict[str, Any]:
    """What can be patched: a function's code, a class's methods, an instance's methods."""
    if isinstance(obj, types.FunctionType):
        return {"__code__": obj.__code__, "__defaults__": obj.__defaults__,
                "__kwdefaults__": obj.__kwdefaults__}
    if isinstance(obj, type):
        return {k: v for k, v in vars(obj).items()
                if isinstance(v, (types.FunctionType, staticmethod, classmethod, property,
                                  types.BuiltinFunctionType))}
    try:  # an object of a watched class: attributes that shadow its class's methods
        return {k: v for k, v in vars(obj).items() if callable(getattr(type(obj), k, None))}
    except Exception:  # noqa: BLE001 - proxies and slotted objects have no plain __dict__
        return {}


def _instance(value: Any) -> bool:
    if not _watched(getattr(type(value), "__module__", "") or ""):
        return False
    try:
        return isinstance(vars(value), dict)
    except Exception:  # noqa: BLE001 - proxies and slotted objects have no plain __dict__
        return False


def snapshot() -> dict[tuple[str, str], tuple[Any, dict[str, Any]]]:
    """Every function, class, module and object of a watched class bound in a watched module,
    with what it holds now (see :func:`_members`)."""
    out = {}
    for mod_name, module in list(sys.modules.items()):
        if module is None or not _watched(mod_name):
            continue
        for name, value in list(vars(module).items()):
            if name.startswith("__") or name == "_" or (mod_name, name) in IGNORED:
                continue
            if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type,
                                  types.ModuleType)) or _instance(value):
                out[(mod_name, name)] = (value, _members(value))
    return out


def changes(before: dict[tuple[str, str], tuple[Any, dict[str, Any]]]) -> list[str]:
    """What differs from ``before`` (a :func:`snapshot`): ``module.name`` per change."""
    found = []
    for (mod_name, name), (value, members) in before.items():
        module = sys.modules.get(mod_name)
        now = vars(module).get(name) if module is not None else None
        if now is not value:
            found.append(f"{mod_name}.{name}")
            continue
        current = _members(value)  # a changed, removed or added method all count
        found += [f"{mod_name}.{name}.{k}" for k in sorted(set(members) | set(current))
                  if current.get(k) is not members.get(k)]
    return found


def arm(key_path: str) -> None:
    """Read and delete the key, pin the checks and take the snapshot (before learner code)."""
    global _finish
    path = Path(key_path)
    key = path.read_bytes()
    path.unlink()
    import importlib
    import labapp.checks as checks_module
    importlib.import_module("labapp.grading")  # the learner's notebooks import it: watch it too
    from labapp.stack import Lab

    exercises = {ex_id: (ex.run, ex.usage) for ex_id, ex in checks_module.EXERCISES.items()}
    not_yet = checks_module.NotYet
    start_lab = Lab.start
    before = snapshot()
    shell = getattr(builtins, "get_ipython", lambda: None)()
    check_changes, run_one, signed = changes, _one, sign  # the learner may rebind the globals
    namespace = shell.user_ns if shell is not None else sys.modules["__main__"].__dict__
    from IPython.display import display

    def finish(exercise_ids: list[str], nonce: str) -> None:
        tampered = check_changes(before)
        results: dict[str, dict[str, Any]] = {}
        lab, why = None, ("not checked: the notebook changed the grader's code "
                          f"({', '.join(tampered[:3])})")
        if not tampered and exercise_ids:
            try:
                lab = start_lab(name=f"grade_{uuid.uuid4().hex[:6]}", quiet=True)
            except Exception as exc:  # noqa: BLE001 - e.g. the notebook used up its processes
                why = f"not checked: the grader's lab did not start ({type(exc).__name__}: {exc})"
        for ex_id in exercise_ids:
            results[ex_id] = run_one(ex_id, lab, exercises, not_yet, namespace) if lab else \
                {"passed": False, "hint": why[:300], "summary": "", "details": {}}
        after = check_changes(before)
        if after and not tampered:  # the learner's functions patched something while checked
            tampered = after
            for result in results.values():
                result.update(passed=False, hint="not counted: the notebook's code changed the "
                              f"grader's code while it was checked ({', '.join(after[:3])})")
        if lab is not None:
            try:
                lab.stop()
            except Exception:  # noqa: BLE001 - the sandbox ends everything anyway
                pass
        display({"text/plain": f"graded {len(results)} exercise(s)",
                 MIME: signed(key, {"nonce": nonce, "results": results,
                                  "tampered": tampered[:20]})}, raw=True)

    _finish = finish


def _one(ex_id: str, lab: Lab, exercises: dict[str, Any], not_yet: type,
         namespace: dict[str, Any]) -> dict[str, Any]:
    """Run one pinned check on the learner's objects; a JSON-safe result."""
    if ex_id not in exercises:
        return {"passed": False, "hint": f"there is no exercise {ex_id!r}", "summary": "",
                "details": {}}
    run, usage = exercises[ex_id]
    objects = {kw: namespace.get(name, ...) for kw, name in _USAGE_ARG.findall(usage)}
    start = time.perf_counter()
    try:
        summary, details = run(lab, **objects)
        result = {"passed": True, "hint": "", "summary": str(summary), "details": details}
    except not_yet as exc:
        result = {"passed": False, "hint": str(exc.hint), "summary": str(exc.hint),
                  "details": getattr(exc, "details", {})}
    except BaseException as exc:  # noqa: BLE001 - a learner's crash is a hint, not a crash
        if isinstance(exc, KeyboardInterrupt):
            raise
        result = {"passed": False, "hint": f"the check could not run ({type(exc).__name__}: "
                  f"{str(exc)[:200]})", "summary": "", "details": {}}
    result["seconds"] = round(time.perf_counter() - start, 3)
    return json.loads(json.dumps(result, default=str))


def final_cell_source(exercise_ids: list[str], nonce: str) -> str:
    """The cell the grader appends after the learner's cells."""
    return (f"import labapp.gradekernel\n"
            f"labapp.gradekernel._finish({exercise_ids!r}, {nonce!r})")


def exec_line(key_path: str) -> str:
    """The kernel start-up line that arms the grader (``IPKernelApp.exec_lines``)."""
    return (f"import labapp.gradekernel as _qlg_arm; _qlg_arm.arm({os.fspath(key_path)!r}); "
            "del _qlg_arm")
