"""Student and instructor editions of the notebooks, on nbgrader's conventions.

Every exercise of the committed (instructor) notebooks is two cells, as nbgrader lays out an
autograded exercise: an *answer cell* holding the reference answer between nbgrader's markers
(cell metadata ``solution: true``), then a locked *check cell* that calls the exercise's checker
(``grade: true, points: 1``, an "autograder tests" cell):

    ### BEGIN SOLUTION
    answer = 1000 * 1280 + 4 * 1000
    ### END SOLUTION
    ---
    exercises.int8_bytes(answer)

An instructor who uses nbgrader runs ``nbgrader generate_assignment`` and ``nbgrader
autograde`` on these notebooks unchanged: under nbgrader (``NBGRADER_EXECUTION`` set) a checker
that does not pass raises, so the check cell scores 0 (`qkit.lab.exercises.feedback.checker`).
Without nbgrader, ``python -m qkit student-edition OUTDIR`` writes every notebook with each
solution replaced by a ``...`` stub (``answer = ...``; a function's body becomes ``return
...``), the outputs of answer and check cells cleared, and nothing else touched. The student
edition runs top to bottom: every checker says "not answered yet".
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
_CALL = re.compile(r"^exercises\.(\w+)\(", re.M)


def answer_cells(nb: dict) -> list[int]:
    """Indices of the answer cells: code cells with a solution region."""
    return [i for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and BEGIN in "".join(c["source"])]


def check_cells(nb: dict) -> list[int]:
    """Indices of the check cells: code cells that call an exercise checker."""
    return [i for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and _CALL.search("".join(c["source"]))]


def stub(solution: str) -> str:
    """The student's version of a solution region: every assignment's value and every
    function's body become ``...`` (a function returns ``...``); anything else, ``...``."""
    try:
        tree = ast.parse(solution)
    except SyntaxError:
        return "..."
    lines = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = ast.unparse(node.args)
            lines += [f"def {node.name}({args}):", "    return ...  # your code here"]
        elif isinstance(node, ast.Assign):
            targets = " = ".join(ast.get_source_segment(solution, t) for t in node.targets)
            lines.append(f"{targets} = ...  # your answer")
        else:
            lines.append("...  # your answer")
    return "\n".join(lines) or "..."


def student_cell(cell: dict) -> dict:
    """An answer cell with its solution region replaced by `stub`, outputs cleared."""
    src = "".join(cell["source"])
    if BEGIN not in src or END not in src:
        raise ValueError(f"an answer cell has no {BEGIN!r} / {END!r} region: {src[:80]!r}")
    head, rest = src.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    out = copy.deepcopy(cell)
    out["source"] = (head + stub(body.strip("\n")) + tail).splitlines(keepends=True)
    out["outputs"], out["execution_count"] = [], None
    return out


def student_edition(nb: dict) -> dict:
    """The notebook ``nb`` (a parsed .ipynb) as students get it."""
    out = copy.deepcopy(nb)
    for i in answer_cells(out):
        out["cells"][i] = student_cell(out["cells"][i])
    for i in check_cells(out):
        out["cells"][i]["outputs"], out["cells"][i]["execution_count"] = [], None
    return out


def write_student_edition(outdir, notebooks_dir=NOTEBOOKS) -> list[Path]:
    """Every notebook of ``notebooks_dir`` as a student edition in ``outdir``; returns the
    paths written. ``outdir`` must not be the notebooks folder itself."""
    outdir, src = Path(outdir).resolve(), Path(notebooks_dir).resolve()
    if outdir == src:
        raise ValueError("outdir must not be the notebooks folder: the instructor edition "
                         "would be overwritten")
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("*.ipynb")):
        nb = student_edition(json.loads(path.read_text()))
        target = outdir / path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def main(argv=None) -> int:
    """``python -m qkit student-edition OUTDIR``."""
    argv = list(argv or [])
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m qkit student-edition OUTDIR   (writes every notebook with its "
              "answers replaced by ... stubs)")
        return 2
    written = write_student_edition(argv[0])
    cells = sum(len(answer_cells(json.loads((NOTEBOOKS / p.name).read_text()))) for p in written)
    print(f"wrote {len(written)} notebooks with {cells} answer cells blanked to {argv[0]}")
    print("note: the notebooks import data and models from the qkit package; run them in the "
          "kit's environment (make lab)")
    return 0
