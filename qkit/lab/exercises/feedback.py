"""What a checker returns: `Feedback`, truthy when the answer is right, printed once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Feedback:
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return ("passed: " if self.passed else "not yet: ") + self.message


def report(fb: Feedback) -> Feedback:
    print(repr(fb))
    return fb
