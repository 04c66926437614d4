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
    if abs(count - 1.95 / 0.3) <= 0.1:
        return report(Feedback(False, "mind the units: nJ against pJ"))
    return report(Feedback(False, "how many 0.3 pJ multiply-adds fit in the energy of one "
                                  "read?"))


@checker
def model_energy(uj: float) -> Feedback:
    """Exercise 2: 10^6 int8 MACs and 10^5 weight bytes read once from DRAM (ignore the
    activations): microjoules per inference?"""
    from qkit.topics.energy import estimate

    want = estimate(10**6, 10**5, 0, "int8")["total_uj"]
    if abs(uj - want) <= 0.01 * want:
        return report(Feedback(True, f"{want:.2f} uJ, of which arithmetic 0.30: "
                                     "weights dominate"))
    if abs(uj - (10**6 * 0.3e-6 + 10**5 * 1950e-6)) <= 0.01 * (10**6 * 0.3e-6 + 10**5 * 1950e-6):
        return report(Feedback(False, "one DRAM read brings 64 bits: how many bytes is that?"))
    return report(Feedback(False, "add the arithmetic (every multiply-add once) and the weight "
                                  "reads (every byte once), both in microjoules"))


@checker
def gemv_intensity(ops_per_byte: float) -> Feedback:
    """Exercise 3: operations per weight byte of an int8 GEMV (1 x 4096 x 4096)."""
    if abs(ops_per_byte - 2) < 1e-6:
        return report(Feedback(True, "2 ops per byte: each weight is used once, so the memory "
                                     "bus, not the multipliers, sets the speed"))
    if abs(ops_per_byte - 1) < 1e-6:
        return report(Feedback(False, "a multiply-add counts as 2 operations"))
    return report(Feedback(False, "count the operations (a multiply-add is two) and the "
                                  "weight bytes, then divide"))


MISTAKES = {
    "dram_vs_mac": [((1.95 / 0.3,), "mind the units"), ((100.0,), "how many 0.3 pJ")],
    "model_energy": [((10**6 * 0.3e-6 + 10**5 * 1950e-6,), "64 bits"),
                     ((1.0,), "add the arithmetic")],
    "gemv_intensity": [((1.0,), "counts as 2"), ((4.0,), "count the operations")],
}
ANSWERS = {"dram_vs_mac": 1950 / 0.3, "model_energy": 10**6 * 0.3e-6 + 10**5 / 8 * 1950e-6,
           "gemv_intensity": 2}

SOLUTIONS = {
    "dram_vs_mac": lambda: dram_vs_mac(1950 / 0.3),
    "model_energy": lambda: model_energy(10**6 * 0.3e-6 + 10**5 / 8 * 1950e-6),
    "gemv_intensity": lambda: gemv_intensity(2 * 4096 * 4096 / (4096 * 4096)),
}
