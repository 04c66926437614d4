"""What a checker returns: `Feedback`, truthy when the answer is right, printed once.

Every checker is wrapped by `checker`: a blank ``...`` (the student edition's stub) gets
"not answered yet" instead of a traceback.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

NOT_ANSWERED = ("not answered yet: replace the ... in the cell above with your answer, run "
                "it, then run this cell again")


@dataclass
class Feedback:
    passed: bool
    message: str
    shown: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        if self.message == NOT_ANSWERED:
            return self.message
        return ("passed: " if self.passed else "not yet: ") + self.message

    def _ipython_display_(self) -> None:
        # a checker has printed its feedback already: as a cell's last value it is not shown
        # a second time (an Out[] under the printed line)
        if not self.shown:
            print(repr(self))


def report(fb: Feedback) -> Feedback:
    print(repr(fb))
    fb.shown = True
    return fb


class _NotAnswered(BaseException):
    """Raised by a student's function that still returns the stub's ``...``; a BaseException
    so that the checkers' ``except Exception`` (for the student's own errors) lets it through."""


def _watch(f):
    """A student's function, made to raise `_NotAnswered` when it returns ``...``."""

    @functools.wraps(f)
    def run(*args, **kwargs):
        out = f(*args, **kwargs)
        if out is Ellipsis:
            raise _NotAnswered
        return out

    return run


def checker(fn):
    """Mark ``fn`` as an exercise checker: a ``...`` anywhere in its arguments, or a function
    that returns ``...`` (the student edition's stub), is answered with `NOT_ANSWERED` (the
    checker itself never sees it). Every result is recorded (`record`). Under nbgrader's
    autograder or validator (``NBGRADER_EXECUTION`` set), a result that did not pass also
    raises AssertionError with its message, so nbgrader scores the check cell 0."""

    @functools.wraps(fn)
    def check(*args, **kwargs):
        if any(a is Ellipsis for a in (*args, *kwargs.values())):
            fb = report(Feedback(False, NOT_ANSWERED))
        else:
            args = [_watch(a) if callable(a) else a for a in args]
            kwargs = {k: _watch(v) if callable(v) else v for k, v in kwargs.items()}
            try:
                fb = fn(*args, **kwargs)
            except _NotAnswered:
                fb = report(Feedback(False, NOT_ANSWERED))
        record(fn, fb)
        if os.environ.get("NBGRADER_EXECUTION") and not fb.passed:
            raise AssertionError(f"{fn.__name__}: {fb.message}")
        return fb

    return check


def results_path() -> Path | None:
    """Where checker results go: ``$QKIT_RESULTS`` if set (empty: nowhere), else
    ``qkit-results.jsonl`` in the current folder (a notebook's own folder in Jupyter): the
    small file a student submits, or that `qkit.lab.grading` reads."""
    env = os.environ.get("QKIT_RESULTS")
    if env is None:
        return Path("qkit-results.jsonl")
    return Path(env) if env else None


def record(fn, fb: Feedback) -> None:
    """Append one checker result (student, notebook, exercise, passed, answered, hint) to
    `results_path`. A file that cannot be written never breaks the exercise."""
    path = results_path()
    if path is None:
        return
    module = fn.__module__.rsplit(".", 1)[-1]  # ex01_range_mapping
    entry = {"student": os.environ.get("QKIT_STUDENT") or _user(),
             "notebook": module[2:4] if module.startswith("ex") else module,
             "exercise": fn.__name__, "passed": bool(fb.passed),
             "answered": fb.message != NOT_ANSWERED, "message": fb.message,
             "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    except OSError:
        pass


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "student"
