"""Student editions (answers blanked, on nbgrader's markers) and grading of what students hand
in (`qkit.lab.editions`, `qkit.lab.grading`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qkit.lab import editions, exercises, grading
from qkit.lab.exercises.feedback import NOT_ANSWERED

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_exercise_is_an_answer_cell_then_a_locked_check_cell():
    """nbgrader's layout of an autograded exercise: the solution region in an answer cell
    (``solution``), the checker call alone in the next cell (``grade``, locked, 1 point)."""
    ids = set()
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        cells, checks = editions.answer_cells(nb), editions.check_cells(nb)
        assert len(cells) == 3 and checks == [i + 1 for i in cells], path.name
        for i in cells:
            c, check = nb["cells"][i], nb["cells"][i + 1]
            src = "".join(c["source"]).strip()
            assert src.endswith(editions.END) and editions.BEGIN in src, (path.name, i)
            solution = src.split(editions.BEGIN)[1].split(editions.END)[0]
            assert solution.strip(), f"{path.name} cell {i}: an empty solution"
            meta = c["metadata"]["nbgrader"]
            assert meta["solution"] and not meta["grade"] and meta["schema_version"] == 3
            assert "exercises." not in src, f"{path.name} cell {i}: the check is in its own cell"
            test = check["metadata"]["nbgrader"]
            assert test["grade"] and not test["solution"] and test["locked"], (path.name, i)
            assert test["points"] == 1 and test["grade_id"] == meta["grade_id"] + "_check"
            assert len(check["source"]) == 1, f"{path.name} cell {i + 1}: only the checker call"
            ids |= {meta["grade_id"], test["grade_id"]}
    assert len(ids) == 6 * len(NOTEBOOKS)  # unique across the series


def test_student_cells_are_stubs_and_the_rest_is_untouched():
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        st = editions.student_edition(nb)
        answers, checks = set(editions.answer_cells(nb)), set(editions.check_cells(nb))
        for i, (a, b) in enumerate(zip(nb["cells"], st["cells"], strict=True)):
            if i in answers:
                src = "".join(b["source"])
                assert editions.BEGIN not in src and "..." in src and b["outputs"] == []
            elif i in checks:
                assert a["source"] == b["source"] and b["outputs"] == []
            else:
                assert a == b


@pytest.mark.parametrize("solution, expected", [
    ("answer = 1 + 2", "answer = ...  # your answer"),
    ("scale = 0.1\nzero_point = 3", "scale = ...  # your answer\nzero_point = ...  # your answer"),
    ("def f(x, p=2):\n    y = x\n    return y", "def f(x, p=2):\n    return ...  # your code here"),
    ("print(1)", "...  # your answer"),
    ("this is not python(", "..."),
])
def test_stub(solution, expected):
    assert editions.stub(solution) == expected


def test_a_stub_function_is_not_answered_yet():
    def my_quantize(x, scale, zero_point, qmin, qmax):
        return ...

    fb = exercises.quantize_function(my_quantize)
    assert not fb and fb.message == NOT_ANSWERED
    fb = exercises.per_channel_scales(lambda w: ...)
    assert not fb and fb.message == NOT_ANSWERED


def test_student_edition_refuses_to_overwrite_the_notebooks():
    with pytest.raises(ValueError, match="must not be the notebooks folder"):
        editions.write_student_edition(ROOT / "notebooks")


def _run(nb_path: Path, cwd: Path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


@pytest.mark.slow
def test_student_edition_runs_top_to_bottom_and_is_graded(tmp_path, monkeypatch):
    """The whole series as students get it: it runs without an error, every checker says "not
    answered yet", each run records its results, and grading reads them back."""
    out = tmp_path / "class" / "student-edition"
    res = subprocess.run([sys.executable, "-m", "qkit", "student-edition", str(out)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert f"wrote {len(NOTEBOOKS)} notebooks with {3 * len(NOTEBOOKS)} answer cells" in res.stdout
    results = tmp_path / "class" / "blank" / "qkit-results.jsonl"
    results.parent.mkdir()
    monkeypatch.setenv("QKIT_RESULTS", str(results))
    monkeypatch.setenv("QKIT_STUDENT", "blank")
    for path in sorted(out.glob("*.ipynb")):
        nb = _run(path, ROOT / "notebooks")
        for i in editions.check_cells(nb):
            text = "".join(o.get("text", "") for o in nb.cells[i].outputs)
            assert NOT_ANSWERED in text, (path.name, i, text)
    lines = results.read_text().splitlines()
    assert len(lines) == 3 * len(NOTEBOOKS) and all(not json.loads(x)["answered"] for x in lines)
    table = grading.collect(tmp_path / "class" / "blank")
    assert list(table) == ["blank"] and set(table["blank"].values()) == {"blank"}
    assert len(table["blank"]) == 3 * len(NOTEBOOKS)


def test_grading_a_simulated_class_of_three(tmp_path, monkeypatch, capsys):
    """Alice answers everything right, Bob gets two of notebook 00's three, Carol hands in a
    blank student edition; the table and the CSV say so."""
    cls = tmp_path / "submissions"
    for student, answers in (("alice", "all"), ("bob", "some")):
        (cls / student).mkdir(parents=True)
        monkeypatch.setenv("QKIT_RESULTS", str(cls / student / "qkit-results.jsonl"))
        monkeypatch.setenv("QKIT_STUDENT", student)
        if answers == "all":
            for run in exercises.SOLUTIONS.values():
                run()
        else:
            exercises.int8_bytes(1000 * 1280 + 4 * 1000)
            exercises.db_per_bit(6.02)
            exercises.mac_energy_ratio(2.0)  # a wrong answer: a hint
            exercises.mac_energy_ratio(...)  # and a blank later does not erase it
    nb = editions.student_edition(json.loads(NOTEBOOKS[0].read_text()))
    (cls / "carol").mkdir()
    (cls / "carol" / NOTEBOOKS[0].name).write_text(json.dumps(nb))
    monkeypatch.setenv("QKIT_RESULTS", "")
    table = grading.collect(cls)
    assert sum(v == "passed" for v in table["alice"].values()) == 3 * len(NOTEBOOKS)
    assert table["bob"] == {"00 int8_bytes": "passed", "00 db_per_bit": "passed",
                            "00 mac_energy_ratio": "hint"}
    assert set(table["carol"].values()) == {"blank"}
    text = grading.summary(table)
    row = text.splitlines()[1].split()[1:]
    assert "alice" in text and row == [str(3 * len(NOTEBOOKS)), "0", "0"]
    csv_text = grading.to_csv(table)
    assert csv_text.splitlines()[0].startswith("student,00 int8_bytes,00 db_per_bit")
    assert csv_text.splitlines()[2].startswith("bob,passed,passed,hint,blank")
    assert grading.main([str(cls), "--csv", str(tmp_path / "grades.csv")]) == 0
    assert (tmp_path / "grades.csv").read_text() == csv_text


def test_grading_refuses_what_is_not_a_submission(tmp_path):
    with pytest.raises(ValueError, match="folder must be a directory"):
        grading.collect(tmp_path / "missing")
    (tmp_path / "x.jsonl").write_text("not json\n")
    with pytest.raises(ValueError, match="is not a qkit result"):
        grading.collect(tmp_path)
    (tmp_path / "x.jsonl").unlink()
    (tmp_path / "broken.ipynb").write_text("{")
    with pytest.raises(ValueError, match="not a readable notebook"):
        grading.collect(tmp_path)


def test_grade_command_names_a_bad_folder_without_a_traceback(tmp_path, capsys):
    assert grading.main([str(tmp_path / "missing")]) == 2
    assert "folder must be a directory" in capsys.readouterr().err


def test_recording_is_off_when_results_is_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QKIT_RESULTS", "")
    exercises.db_per_bit(6.02)
    assert not list(tmp_path.iterdir())
    monkeypatch.delenv("QKIT_RESULTS")
    exercises.db_per_bit(6.02)
    assert json.loads((tmp_path / "qkit-results.jsonl").read_text())["passed"]
    assert os.environ.get("QKIT_RESULTS") is None
