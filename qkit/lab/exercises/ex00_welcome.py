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
    return report(Feedback(False, "1 byte per weight plus 4 bytes per row for its scale"))


@checker
def db_per_bit(value: float) -> Feedback:
    """Exercise 2: how many dB of SQNR does one more bit buy (uniform-noise model)?"""
    if abs(value - 6.02) < 0.01:
        return report(Feedback(True, "20 log10(2) = 6.02 dB: the step halves, noise power /4"))
    if abs(value - 3.01) < 0.01:
        return report(Feedback(False, "halving the step quarters the noise power: 10 log10(4)"))
    return report(Feedback(False, "one bit halves the step Δ; noise power is Δ²/12"))


@checker
def mac_energy_ratio(ratio: float) -> Feedback:
    """Exercise 3: fp32 multiply-add energy divided by int8 multiply + int32 add (Horowitz 2014)."""
    from qkit.topics.energy import PJ

    want = (PJ["fp32_mul"] + PJ["fp32_add"]) / (PJ["int8_mul"] + PJ["int32_add"])
    if abs(ratio - want) < 0.05 * want:
        return report(Feedback(True, f"(3.7 + 0.9) / (0.2 + 0.1) = {want:.1f}x less energy per "
                                     "multiply-add; but one DRAM read costs ~400 fp32 MACs"))
    return report(Feedback(False, "use the 45 nm table: fp32 mult 3.7 + add 0.9 pJ; int8 mult "
                                  "0.2 + int32 add 0.1 pJ"))


SOLUTIONS = {
    "int8_bytes": lambda: int8_bytes(1000 * 1280 + 4 * 1000),
    "db_per_bit": lambda: db_per_bit(6.02),
    "mac_energy_ratio": lambda: mac_energy_ratio(4.6 / 0.3),
}
