"""The notebooks under nbgrader itself: ``generate_assignment`` takes them unchanged and
``autograde`` scores a simulated class by running the qkit checkers as autograder tests."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qkit.lab import editions

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "00_welcome.ipynb"
BIN = Path(sys.executable).parent


def _nbgrader(course: Path, *args):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", QKIT_RESULTS="")
    return subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env,
                          capture_output=True, text=True, check=True, timeout=600)


def _code_cells(nb, key):
    return [c for c in nb["cells"]
            if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get(key)]


@pytest.mark.slow
def test_nbgrader_generates_and_autogrades_a_class_of_three(tmp_path):
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    (course / "source" / "ps00").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = 'qkit'\n"
        f"c.CourseDirectory.root = {str(course)!r}\n")
    shutil.copy(NOTEBOOK, course / "source" / "ps00")
    _nbgrader(course, "generate_assignment", "ps00", "--force")
    release = json.loads((course / "release" / "ps00" / NOTEBOOK.name).read_text())
    source = json.loads(NOTEBOOK.read_text())
    # nbgrader blanked every solution region and kept every check cell as it is
    assert all("raise NotImplementedError()" in "".join(c["source"])
               for c in _code_cells(release, "solution"))
    assert ([c["source"] for c in _code_cells(release, "grade")]
            == [c["source"] for c in _code_cells(source, "grade")])

    answers = [c["source"] for c in _code_cells(source, "solution")]
    assert len(answers) == 3
    # alice: the reference answers; bob: the first two right, the third wrong; carol: nbgrader's
    # release as handed out; dave: qkit's own student edition (the ... stubs)
    bob = json.loads(json.dumps(release))
    for cell, src in zip(_code_cells(bob, "solution"), answers[:2] + [["answer = 2.0\n"]],
                         strict=True):
        cell["source"] = src
    subs = {"alice": source, "bob": bob, "carol": release,
            "dave": editions.student_edition(source)}
    for student, nb in subs.items():
        folder = course / "submitted" / student / "ps00"
        folder.mkdir(parents=True)
        (folder / NOTEBOOK.name).write_text(json.dumps(nb))
    _nbgrader(course, "autograde", "ps00", "--create")
    _nbgrader(course, "export")
    with open(course / "grades.csv") as f:
        scores = {r["student_id"]: (float(r["score"]), float(r["max_score"]))
                  for r in csv.DictReader(f)}
    assert scores == {"alice": (3, 3), "bob": (2, 3), "carol": (0, 3), "dave": (0, 3)}
    # the wrong answer's check cell carries the checker's hint as its error
    graded = json.loads((course / "autograded" / "bob" / "ps00" / NOTEBOOK.name).read_text())
    errors = [o for c in _code_cells(graded, "grade") for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "AssertionError"
    assert "mac_energy_ratio" in errors[0]["evalue"]
