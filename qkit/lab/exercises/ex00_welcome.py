"""Exercises of notebook 00 (welcome): checkers, and their reference solutions."""

from __future__ import annotations

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def int8_bytes(count: int) -> Feedback:
    """Exercise 1: bytes of a 1000 x 1280 weight matrix in int8 with one float32 scale per row."""
    want = 1000 * 1280 + 1000 * 4
    if count == want:
        return report(Feedback(True, f"{want:,} bytes: 25.1% of the fp32 {4 * 1000 * 1280:,}"))
    if count == 1000 * 1280:
        return report(Feedback(False, "add the scales: one float32 (4 bytes) per row"))
    if count == 4 * 1000 * 1280:
        return report(Feedback(False, "that is fp32; int8 takes 1 byte per weight"))
    return report(Feedback(False, "how many bytes does one int8 weight take, and how many "
                                  "float32 scales are there?"))


@checker
def db_per_bit(value: float) -> Feedback:
    """Exercise 2: how many dB of SQNR does one more bit buy (uniform-noise model)?"""
    if abs(value - 6.02) <= 0.1:  # "about 6 dB", as the notebook says it
        return report(Feedback(True, "20 log10(2) = 6.02 dB: the step halves, noise power /4"))
    if abs(value - 3.01) < 0.05:
        return report(Feedback(False, "halving the step divides the noise power by how much? "
                                      "(it goes with the square of the step)"))
    return report(Feedback(False, "one more bit halves the step Δ: what does that do to the "
                                  "noise power Δ²/12, in dB?"))


@checker
def mac_energy_ratio(ratio: float) -> Feedback:
    """Exercise 3: fp32 multiply-add energy divided by int8 multiply + int32 add (Horowitz 2014)."""
    from qkit.topics.energy import PJ

    want = (PJ["fp32_mul"] + PJ["fp32_add"]) / (PJ["int8_mul"] + PJ["int32_add"])
    if abs(ratio - want) < 0.05 * want:
        return report(Feedback(True, f"(3.7 + 0.9) / (0.2 + 0.1) = {want:.1f}x less energy per "
                                     "multiply-add; but one DRAM read costs ~400 fp32 MACs"))
    if abs(ratio - 3.7 / 0.2) < 0.05 * 3.7 / 0.2:
        return report(Feedback(False, "a multiply-add is a multiply and an add: count both, in "
                                      "both precisions"))
    if abs(ratio - 1 / want) < 0.05 / want:
        return report(Feedback(False, "that is int8 over fp32: the question asks how many times "
                                      "less, so fp32 over int8"))
    return report(Feedback(False, "add up one multiply-add's energy in each precision (the "
                                  "question gives the four numbers), then divide"))


# typical mistakes and the hint each gets (tests/lab/test_exercises.py checks every one)
MISTAKES = {
    "int8_bytes": [((1000 * 1280,), "add the scales"), ((4 * 1000 * 1280,), "that is fp32"),
                   ((1,), "how many bytes")],
    "db_per_bit": [((3.01,), "with the square"), ((2.0,), "one more bit halves")],
    "mac_energy_ratio": [((3.7 / 0.2,), "count both"), ((0.3 / 4.6,), "fp32 over int8"),
                         ((2.0,), "add up one multiply-add")],
}
ANSWERS = {"int8_bytes": 1000 * 1280 + 4 * 1000, "db_per_bit": 6.02,
           "mac_energy_ratio": 4.6 / 0.3}

SOLUTIONS = {
    "int8_bytes": lambda: int8_bytes(1000 * 1280 + 4 * 1000),
    "db_per_bit": lambda: db_per_bit(6.02),
    "mac_energy_ratio": lambda: mac_energy_ratio(4.6 / 0.3),
}
