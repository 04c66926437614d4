"""Exercises of notebook 10 (a transformer): checkers, and their reference solutions."""

from __future__ import annotations

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def smoothing_factor(s: float) -> Feedback:
    """Exercise 1: SmoothQuant's s for a channel with max|x| = 64, max|W| = 0.25, alpha = 0.5."""
    want = 64**0.5 / 0.25**0.5
    if abs(s - want) < 1e-6:
        return report(Feedback(True, "sqrt(64) / sqrt(0.25) = 16: x/16 peaks at 4, W*16 at 4"))
    return report(Feedback(False, "s = max|x|^alpha / max|W|^(1 - alpha)"))


@checker
def group_bytes(count: int) -> Feedback:
    """Exercise 2: bytes of a 1536 x 384 weight at 4 bits, one float32 scale per group of 64."""
    n = 1536 * 384
    want = n // 2 + 4 * n // 64
    if count == want:
        return report(Feedback(True, f"{want:,} bytes: the scales add 0.5 bit per weight"))
    if count == n // 2:
        return report(Feedback(False, "plus one float32 scale per 64 weights"))
    return report(Feedback(False, "n/2 bytes of codes + 4 bytes x n/64 scales"))


@checker
def levels_left(count: int) -> Feedback:
    """Exercise 3: per-tensor symmetric int8 for a tensor whose range is [-60, 60]: how many
    integer levels does a channel with values in [-1, 1] use?"""
    step = 60 / 127
    want = 2 * int(1 / step) + 1
    if count == want:
        return report(Feedback(True, f"{want}: an outlier channel 60x wider leaves the others "
                                     "about 2 bits"))
    return report(Feedback(False, "step = 60/127; count the integers in [-1/step, 1/step]"))


SOLUTIONS = {
    "smoothing_factor": lambda: smoothing_factor(64**0.5 / 0.25**0.5),
    "group_bytes": lambda: group_bytes(1536 * 384 // 2 + 4 * 1536 * 384 // 64),
    "levels_left": lambda: levels_left(2 * int(1 / (60 / 127)) + 1),
}
