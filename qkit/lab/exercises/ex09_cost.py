"""Exercises of notebook 09 (speed, size and energy): checkers, and their reference solutions."""

from __future__ import annotations

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def dram_vs_mac(count: float) -> Feedback:
    """Exercise 1: how many int8 multiply-adds (0.2 + 0.1 pJ) cost as much as one 64-bit DRAM
    read (1.95 nJ)? (`qkit.topics.energy.PJ`)"""
    from qkit.topics.energy import PJ

    want = PJ["dram_64bit"] / (PJ["int8_mul"] + PJ["int32_add"])
    if abs(count - want) <= 0.01 * want:
        return report(Feedback(True, f"{want:,.0f}: moving weights, not multiplying them, is "
                                     "what costs energy"))
    return report(Feedback(False, "1950 pJ divided by 0.3 pJ"))


@checker
def model_energy(uj: float) -> Feedback:
    """Exercise 2: 10^6 int8 MACs and 10^5 weight bytes read once from DRAM (ignore the
    activations): microjoules per inference?"""
    from qkit.topics.energy import estimate

    want = estimate(10**6, 10**5, 0, "int8")["total_uj"]
    if abs(uj - want) <= 0.01 * want:
        return report(Feedback(True, f"{want:.2f} uJ, of which arithmetic 0.30: "
                                     "weights dominate"))
    return report(Feedback(False, "MACs x 0.3 pJ + (bytes / 8) x 1950 pJ, in microjoules"))


@checker
def gemv_intensity(ops_per_byte: float) -> Feedback:
    """Exercise 3: operations per weight byte of an int8 GEMV (1 x 4096 x 4096)."""
    if abs(ops_per_byte - 2) < 1e-6:
        return report(Feedback(True, "2 ops per byte: each weight is used once, so the memory "
                                     "bus, not the multipliers, sets the speed"))
    if abs(ops_per_byte - 1) < 1e-6:
        return report(Feedback(False, "a multiply-add counts as 2 operations"))
    return report(Feedback(False, "2 M K N operations over K N bytes, M = 1"))


SOLUTIONS = {
    "dram_vs_mac": lambda: dram_vs_mac(1950 / 0.3),
    "model_energy": lambda: model_energy(10**6 * 0.3e-6 + 10**5 / 8 * 1950e-6),
    "gemv_intensity": lambda: gemv_intensity(2 * 4096 * 4096 / (4096 * 4096)),
}
