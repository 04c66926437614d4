"""The install files agree with each other, and the README's commands are the real ones."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_is_a_thin_wrapper_over_the_pip_install():
    env = (ROOT / "environment.yml").read_text()
    makefile = (ROOT / "Makefile").read_text()
    # the same constraints file and the same extras as the Makefile's install
    assert "- -c requirements/constraints.txt" in env
    extras = re.search(r"-e '\.\[(\w+)\]'", makefile).group(1)
    assert f"- -e .[{extras}]" in env
    # the same Python as pyproject's requires-python
    py = re.search(r"python=(\d+\.\d+)", env).group(1)
    assert f">={py}" in _pyproject()["project"]["requires-python"]


def test_every_dependency_is_pinned():
    pins = {}
    for line in (ROOT / "requirements/constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    project = _pyproject()["project"]
    deps = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        deps += [d for d in extra if not d.startswith("qkit")]
    for dep in deps:
        name = re.split(r"[<>=!~\[ ]", dep)[0].lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements/constraints.txt"
    assert pins["torch"] == "2.13.0"
    for line in (ROOT / "requirements/models.txt").read_text().splitlines():
        assert line.startswith("#") or not line or "==" in line


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert re.search(r"^make test$", ci, re.M)


def test_makefile_runs_notebooks_and_jit_off_pass():
    makefile = (ROOT / "Makefile").read_text()
    assert "--nbval" in makefile and "notebooks" in makefile
    assert "NUMBA_DISABLE_JIT=1" in makefile


def test_notebooks_are_committed_executed():
    import json

    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code" and c["source"]]
        assert code and all(c.get("execution_count") for c in code), nb_path.name
        assert any(c["outputs"] for c in code), nb_path.name
        counts = [c["execution_count"] for c in code]
        assert counts == sorted(counts), f"{nb_path.name} was not run top to bottom"


def test_student_cells_carry_no_test_scaffolding():
    """What nbval needs lives in cell metadata (the ``nbval-ignore-output`` tag), and what a
    notebook asserts lives in the tests and claims: a student's cells hold only the lesson."""
    import json

    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, c in enumerate(json.loads(nb_path.read_text())["cells"]):
            if c["cell_type"] != "code":
                continue
            src = "".join(c["source"])
            assert "NBVAL" not in src, f"{nb_path.name} cell {i}: an nbval comment"
            assert not re.search(r"^assert ", src, re.M), f"{nb_path.name} cell {i}: an assert"


def test_readme_indexes_every_notebook():
    readme = (ROOT / "README.md").read_text()
    for nb_path in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"notebooks/{nb_path.name}" in readme
