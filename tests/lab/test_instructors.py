"""The instructor pages (docs/instructors/) are what `qkit.lab.instructors` writes from the
notebooks and the checkers, and the README links them."""

import pytest

from qkit.lab import instructors

ROOT = instructors.ROOT


@pytest.mark.parametrize("number", sorted(instructors.PLAN))
def test_committed_page_is_the_written_one(number):
    committed = (instructors.PAGES_DIR / f"{number:02d}.md").read_text()
    assert committed == instructors.page(number), (
        f"docs/instructors/{number:02d}.md is out of date: python -m qkit instructor-pages")


def test_every_exercise_and_mistake_is_on_its_page():
    for number in instructors.PLAN:
        text = instructors.page(number)
        m = instructors._module(number)
        for name, cases in m.MISTAKES.items():
            assert f"### `{name}`" in text
            for (_, hint), (_, fragment) in zip(instructors.mistakes(number, name), cases,
                                                 strict=True):
                assert fragment in hint and hint in text  # the checker's own hint, quoted


def test_the_pages_are_indexed_and_linked_from_the_readme(tmp_path):
    written = instructors.write(tmp_path)
    assert len(written) == len(instructors.PLAN) + 1
    index = (tmp_path / "README.md").read_text()
    assert index == (instructors.PAGES_DIR / "README.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "docs/instructors/" in readme
    for number in instructors.PLAN:
        assert f"({number:02d}.md)" in index


def test_bad_arguments():
    assert instructors.main(["a", "b"]) == 2
    assert instructors.main(["--help"]) == 2
