"""Collecting and grading exercise results: ``python -m qkit grade DIR [--csv FILE]``.

``DIR`` holds what students submitted, in any mix:

- result files (``qkit-results.jsonl``, written by every checker call: see
  `qkit.lab.exercises.feedback.record`), one per student, named after the student or inside
  a folder named after them;
- executed notebooks (``.ipynb``): the checker cells' printed feedback is read back.

For each student and exercise the table keeps the best result seen: ``passed``, ``hint``
(answered, not right yet) or ``blank`` (not answered, or never run).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

from qkit.lab.exercises.feedback import NOT_ANSWERED

RANK = {"blank": 0, "hint": 1, "passed": 2}
_CALL = re.compile(r"^exercises\.(\w+)\(", re.M)


def exercise_list() -> list[str]:
    """Every exercise as ``"NN name"``, in notebook order."""
    import importlib

    return [f"{nb:02d} {name}" for nb in range(13)
            for name in importlib.import_module(f"qkit.lab.exercises.{_module(nb)}").SOLUTIONS]


def _module(nb: int) -> str:
    return {0: "ex00_welcome", 1: "ex01_range_mapping", 2: "ex02_noise",
            3: "ex03_integer_arithmetic", 4: "ex04_speed", 5: "ex05_calibration",
            6: "ex06_grids", 7: "ex07_qat", 8: "ex08_mixed_precision", 9: "ex09_cost",
            10: "ex10_transformer", 11: "ex11_formats",
            12: "ex12_language"}[nb]


def _student(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    if len(rel.parts) > 1:
        return rel.parts[0]  # DIR/alice/...
    stem = path.stem
    for suffix in ("-qkit-results", "_qkit-results", ".qkit-results", "qkit-results"):
        stem = stem.replace(suffix, "")
    # "alice-01_range_mapping.ipynb" -> alice; a bare "qkit-results.jsonl": the folder's name
    return re.sub(r"[-_]?\d\d_[a-z_]+$", "", stem) or root.resolve().name


def _from_results(path: Path) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            key = f"{e['notebook']} {e['exercise']}"
            state = "passed" if e["passed"] else ("hint" if e.get("answered", True) else "blank")
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: line {n} is not a qkit result ({err}); is this file a "
                             "qkit-results.jsonl?") from err
        out.append((key, state))
    return out


def _from_notebook(path: Path) -> list[tuple[str, str]]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (ValueError, KeyError) as err:
        raise ValueError(f"{path}: not a readable notebook ({err})") from err
    number = path.name[:2]
    out = []
    for c in cells:
        src = "".join(c.get("source", [])) if c.get("cell_type") == "code" else ""
        m = _CALL.search(src)
        if not m:
            continue
        text = "".join("".join(o.get("text", "")) for o in c.get("outputs", []))
        state = ("passed" if text.startswith("passed:") else
                 "blank" if (not text or NOT_ANSWERED in text) else "hint")
        out.append((f"{number} {m.group(1)}", state))
    return out


def collect(folder) -> dict[str, dict[str, str]]:
    """``{student: {"NN exercise": "passed" | "hint" | "blank"}}`` from everything in
    ``folder`` (the best result per exercise)."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder must be a directory of submissions, got {str(folder)!r}")
    table: dict[str, dict[str, str]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix == ".jsonl":
            found = _from_results(path)
        elif path.suffix == ".ipynb" and ".ipynb_checkpoints" not in path.parts:
            found = _from_notebook(path)
        else:
            continue
        row = table.setdefault(_student(path, root), {})
        for key, state in found:
            if RANK[state] > RANK.get(row.get(key, "blank"), 0) or key not in row:
                row[key] = state
    return table


def to_csv(table: dict) -> str:
    """One row per student: every exercise's state, then the number passed."""
    exercises = exercise_list()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", *exercises, "passed"])
    for student in sorted(table):
        row = [table[student].get(e, "blank") for e in exercises]
        w.writerow([student, *row, sum(v == "passed" for v in row)])
    return buf.getvalue()


def summary(table: dict) -> str:
    """A short text table: per student, passed / hint / blank counts out of every exercise."""
    exercises = exercise_list()
    lines = [f"{'student':<16}{'passed':>7}{'hint':>6}{'blank':>7}  of {len(exercises)}"]
    for student in sorted(table):
        states = [table[student].get(e, "blank") for e in exercises]
        lines.append(f"{student:<16}{states.count('passed'):>7}{states.count('hint'):>6}"
                     f"{states.count('blank'):>7}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m qkit grade DIR [--csv FILE]``."""
    argv = list(argv or [])
    csv_path = None
    if "--csv" in argv:
        i = argv.index("--csv")
        if i + 1 >= len(argv):
            print("usage: python -m qkit grade DIR [--csv FILE]")
            return 2
        csv_path = argv.pop(i + 1)
        argv.pop(i)
    if len(argv) != 1:
        print("usage: python -m qkit grade DIR [--csv FILE]")
        return 2
    try:
        table = collect(argv[0])
    except ValueError as err:  # not a folder, or a file that is not a submission: say which
        print(f"python -m qkit grade: {err}", file=sys.stderr)
        return 2
    print(summary(table))
    if csv_path:
        Path(csv_path).write_text(to_csv(table))
        print(f"per-exercise table written to {csv_path}")
    return 0
