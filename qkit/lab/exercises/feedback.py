"""What a checker returns: `Feedback`, truthy when the answer is right, printed once.

Every checker is wrapped by `checker`: a blank ``...`` (the student edition's stub) gets
"not answered yet" instead of a traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

NOT_ANSWERED = "replace the ... with your answer, then run the cell again"


@dataclass
class Feedback:
    passed: bool
    message: str
    shown: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
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


def checker(fn):
    """Mark ``fn`` as an exercise checker: a ``...`` anywhere in its arguments is answered
    with `NOT_ANSWERED` (the checker itself never sees it)."""

    @functools.wraps(fn)
    def check(*args, **kwargs):
        if any(a is Ellipsis for a in (*args, *kwargs.values())):
            return report(Feedback(False, NOT_ANSWERED))
        return fn(*args, **kwargs)

    return check
