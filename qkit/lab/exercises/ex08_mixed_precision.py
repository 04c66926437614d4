"""Exercises of notebook 08 (mixed precision): checkers, and their reference solutions."""

from __future__ import annotations

import numpy as np

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def additive_sqnr(db: float) -> Feedback:
    """Exercise 1: two layers each alone give 30 dB output SQNR; both quantized (additive
    noise), the predicted SQNR?"""
    want = 30 - 10 * np.log10(2)
    if abs(db - want) < 0.01:
        return report(Feedback(True, f"{want:.2f} dB: twice the noise power is 3 dB less"))
    if abs(db - 15) < 0.01 or abs(db - 60) < 0.01:
        return report(Feedback(False, "add noise powers, not decibels"))
    return report(Feedback(False, "turn 30 dB into a noise power, add the two, and turn the "
                                  "sum back into dB"))


@checker
def allocation_bytes(count: int) -> Feedback:
    """Exercise 2: bytes of a 1000 x 1000 layer at 4 bits with one float32 scale per row."""
    want = 1000 * 1000 // 2 + 4 * 1000
    if count == want:
        return report(Feedback(True, f"{want:,} bytes: 12.6% of fp32"))
    if count == 1000 * 1000 // 2:
        return report(Feedback(False, "plus 1000 float32 scales"))
    if count == 1000 * 1000 // 2 + 1000:
        return report(Feedback(False, "a float32 scale is 4 bytes"))
    return report(Feedback(False, "how many bytes do the 4-bit codes take, and how many scales "
                                  "are there?"))


@checker
def greedy_choice(layer: str) -> Feedback:
    """Exercise 3: lowering layer A adds 2e-4 noise and saves 1000 bytes; layer B adds 1e-4 and
    saves 100 bytes. Which does the greedy allocator lower first?"""
    if str(layer).strip().upper() == "A":
        return report(Feedback(True, "A: 2e-7 noise per byte saved, against B's 1e-6"))
    if str(layer).strip().upper() == "B":
        return report(Feedback(False, "B adds less noise, but saves 10x fewer bytes: compare "
                                      "noise per byte"))
    return report(Feedback(False, "answer 'A' or 'B'"))


MISTAKES = {
    "additive_sqnr": [((15.0,), "not decibels"), ((29.0,), "turn 30 dB")],
    "allocation_bytes": [((500_000,), "scales"), ((501_000,), "4 bytes"), ((1,), "how many")],
    "greedy_choice": [(("B",), "10x fewer bytes"), (("C",), "answer 'A' or 'B'")],
}
ANSWERS = {"additive_sqnr": 30 - 10 * np.log10(2), "allocation_bytes": 504_000}

SOLUTIONS = {
    "additive_sqnr": lambda: additive_sqnr(30 - 10 * np.log10(2)),
    "allocation_bytes": lambda: allocation_bytes(1000 * 1000 // 2 + 4 * 1000),
    "greedy_choice": lambda: greedy_choice("A"),
}
