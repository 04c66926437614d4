"""Every checker, mechanically: its reference passes, a blank ``...`` gets "not answered yet",
each typical mistake registered beside it (``MISTAKES``) gets its own hint, and no hint
gives a numeric answer away (``ANSWERS``)."""

import importlib
import inspect

import pytest

from qkit.lab import exercises
from qkit.lab.exercises.feedback import NOT_ANSWERED

MODULES = [importlib.import_module(f"qkit.lab.exercises.{m}") for m in (
    "ex00_welcome", "ex01_range_mapping", "ex02_noise", "ex03_integer_arithmetic", "ex04_speed",
    "ex05_calibration", "ex06_grids", "ex07_qat", "ex08_mixed_precision", "ex09_cost",
    "ex10_transformer", "ex11_formats", "ex12_language")]
CHECKERS = [(m, name) for m in MODULES for name in m.SOLUTIONS]
CASES = [(m, name, args, hint) for m in MODULES for name, cases in m.MISTAKES.items()
         for args, hint in cases]


def test_every_module_lists_its_mistakes_for_every_checker():
    for m in MODULES:
        assert set(m.MISTAKES) == set(m.SOLUTIONS), m.__name__
        assert set(m.ANSWERS) <= set(m.SOLUTIONS), m.__name__


@pytest.mark.parametrize("m, name, args, hint", CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_each_mistake_gets_its_hint(m, name, args, hint, capsys):
    fb = getattr(m, name)(*args)
    assert not fb and hint in fb.message, fb.message
    assert capsys.readouterr().out.count("not yet") == 1  # printed once


@pytest.mark.parametrize("m, name", CHECKERS, ids=[c[1] for c in CHECKERS])
def test_mistakes_get_distinct_hints_that_keep_the_answer(m, name, capsys):
    messages = [getattr(m, name)(*args).message for args, _ in m.MISTAKES[name]]
    assert len(m.MISTAKES[name]) >= 2 and len(set(messages)) == len(messages), messages
    if name in m.ANSWERS and (m.ANSWERS[name] >= 10 or m.ANSWERS[name] != int(m.ANSWERS[name])):
        # (a one-digit integer answer appears in honest hints: "counts as 2 operations")
        v = m.ANSWERS[name]
        forms = {f"{v:g}", f"{v:.2f}", f"{v:.3f}", f"{v:.4f}", f"{v:,.0f}" if v >= 1000 else ""}
        for msg in messages:
            leaked = [f for f in forms if f and f in msg]
            assert not leaked, (msg, leaked)


@pytest.mark.parametrize("m, name", CHECKERS, ids=[c[1] for c in CHECKERS])
def test_blank_answers_are_not_answered_yet(m, name, capsys):
    check = getattr(m, name)
    n = len(inspect.signature(check.__wrapped__).parameters)
    for i in range(n):
        args = [...] * n if i == 0 else [None] * i + [...] + [None] * (n - i - 1)
        fb = check(*args)
        assert not fb and fb.message == NOT_ANSWERED


def test_the_reference_solutions_pass(capsys):
    assert all(bool(run()) for run in exercises.SOLUTIONS.values())
