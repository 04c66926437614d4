"""Exercises of notebook 10 (a transformer): checkers, and their reference solutions."""

from __future__ import annotations

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def smoothing_factor(s: float) -> Feedback:
    """Exercise 1: SmoothQuant's s for a channel with max|x| = 64, max|W| = 0.25, alpha = 0.5."""
    want = 64**0.5 / 0.25**0.5
    if abs(s - want) < 1e-6:
        return report(Feedback(True, "sqrt(64) / sqrt(0.25) = 16: x/16 peaks at 4, W*16 at 4"))
    if abs(s - 1 / 16) < 1e-6:
        return report(Feedback(False, "upside down: s divides the activations, so it must "
                                      "shrink the large max|x|"))
    return report(Feedback(False, "take SmoothQuant's s_j from the explorer's formula with "
                                  "alpha = 0.5"))


@checker
def group_bytes(count: int) -> Feedback:
    """Exercise 2: bytes of a 1536 x 384 weight at 4 bits, one float32 scale per group of 64."""
    n = 1536 * 384
    want = n // 2 + 4 * n // 64
    if count == want:
        return report(Feedback(True, f"{want:,} bytes: the scales add 0.5 bit per weight"))
    if count == n // 2:
        return report(Feedback(False, "plus one float32 scale per 64 weights"))
    if count == n // 2 + n // 64:
        return report(Feedback(False, "a float32 scale is 4 bytes"))
    return report(Feedback(False, "how many bytes do the 4-bit codes take, and how many "
                                  "scales are there?"))


@checker
def levels_left(count: int) -> Feedback:
    """Exercise 3: per-tensor symmetric int8 for a tensor whose range is [-60, 60]: how many
    integer levels does a channel with values in [-1, 1] use?"""
    step = 60 / 127
    want = 2 * int(1 / step) + 1
    if count == want:
        return report(Feedback(True, f"{want}: an outlier channel 60x wider leaves the others "
                                     "about 2 bits"))
    if count == 2 * int(1 / (60 / 127)):
        return report(Feedback(False, "count zero as well"))
    return report(Feedback(False, "what is the grid's step, and how many steps fit in "
                                  "[-1, 1]?"))


MISTAKES = {
    "smoothing_factor": [((1 / 16,), "upside down"), ((4.0,), "alpha = 0.5")],
    "group_bytes": [((1536 * 384 // 2,), "one float32 scale"),
                    ((1536 * 384 // 2 + 1536 * 384 // 64,), "4 bytes"), ((1,), "how many")],
    "levels_left": [((4,), "count zero"), ((255,), "grid's step")],
}
ANSWERS = {"smoothing_factor": 16, "group_bytes": 1536 * 384 // 2 + 4 * 1536 * 384 // 64,
           "levels_left": 5}

SOLUTIONS = {
    "smoothing_factor": lambda: smoothing_factor(64**0.5 / 0.25**0.5),
    "group_bytes": lambda: group_bytes(1536 * 384 // 2 + 4 * 1536 * 384 // 64),
    "levels_left": lambda: levels_left(2 * int(1 / (60 / 127)) + 1),
}
