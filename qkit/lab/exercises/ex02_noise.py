"""Exercises of notebook 02 (quantization noise): checkers, and their reference solutions."""

from __future__ import annotations

import numpy as np

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def sqnr_theory(bits: int, answer_db: float) -> Feedback:
    """Exercise 1: the SQNR the uniform-noise model predicts for a full-scale sine at ``bits``."""
    want = 6.02 * bits + 1.76
    if abs(answer_db - want) < 0.05:
        return report(Feedback(True, f"6.02 x {bits} + 1.76 = {want:.2f} dB"))
    if abs(answer_db - 6.02 * bits) < 0.05:
        return report(Feedback(False, "add the sine's 1.76 dB: 10 log10(3/2)"))
    if abs(answer_db - (6.02 * bits + 1.76) / 2) < 0.05:
        return report(Feedback(False, "that is half of it: the formula is in decibels already, "
                                      "no extra factor"))
    return report(Feedback(False, "apply the Theory section's formula with b = 6"))


@checker
def noise_power(fn) -> Feedback:
    """Exercise 2: ``fn(step) -> variance`` of the uniform rounding error for that step."""
    for step in (1.0, 0.1, 2.0 ** -7):
        try:
            got = float(fn(step))
        except Exception as e:
            return report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
        if np.isclose(got, step**2 / 12, rtol=1e-6):
            continue
        if np.isclose(got, step**2 / 4, rtol=1e-6):
            return report(Feedback(False, "that is the largest squared error (Δ/2)²; the mean "
                                          "of e² over U(-Δ/2, Δ/2) is Δ²/12"))
        if np.isclose(got, step / 12, rtol=1e-6) or np.isclose(got, step / np.sqrt(12),
                                                                 rtol=1e-6):
            return report(Feedback(False, "a variance has the units of the step squared"))
        if not np.isclose(got, step**2 / 12, rtol=1e-6):
            return report(Feedback(False, f"for step {step} you gave {got:.6g}: integrate e² "
                                          "against the uniform density 1/Δ over [-Δ/2, Δ/2]"))
    return report(Feedback(True, "Δ²/12: quarter the step, 16x less noise (12 dB = 2 bits)."))


@checker
def best_clip(fn) -> Feedback:
    """Exercise 3: ``fn(x, bits) -> alpha``, the clip of a symmetric grid with the least MSE."""
    from qkit.topics.noise import clipping_curve

    x = np.random.default_rng(1).laplace(size=20_000).astype(np.float32)
    alphas = np.linspace(0.5, float(np.abs(x).max()), 200)
    curve = clipping_curve(x, 4, alphas)
    try:
        got = float(fn(x, 4))
    except Exception as e:
        return report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
    best = float(curve["measured"].min())
    at_got = float(clipping_curve(x, 4, [got])["measured"][0])
    if at_got <= best * 1.02:
        return report(Feedback(True, f"alpha {got:.2f} (about {got / curve['laplace_b']:.1f} "
                                     "Laplace b; ACIQ predicts 5.03 b at 4 bits)"))
    if np.isclose(got, np.abs(x).max(), rtol=1e-3):
        return report(Feedback(False, "that is min-max: no clipping. At 4 bits a smaller alpha "
                                      "buys a finer step; search alphas below max|x|"))
    return report(Feedback(False, f"alpha {got:.2f} gives MSE {at_got:.4g}; the best is "
                                  f"{best:.4g}. Try a grid of alphas and keep the least MSE"))


def _solve_best_clip(x, bits):
    from qkit.topics.noise import clipping_curve

    return clipping_curve(x, bits, np.linspace(0.5, float(np.abs(x).max()), 400))["best_alpha"]


MISTAKES = {
    "sqnr_theory": [((6, 6.02 * 6), "1.76"), ((6, (6.02 * 6 + 1.76) / 2), "half of it"),
                    ((6, 10.0), "Theory section")],
    "noise_power": [((lambda step: step**2 / 4,), "largest squared error"),
                    ((lambda step: step / 12,), "units of the step squared"),
                    ((lambda step: step**2 / 6,), "integrate")],
    "best_clip": [((lambda x, bits: float(np.abs(x).max()),), "min-max"),
                  ((lambda x, bits: 0.6,), "least MSE")],
}
ANSWERS = {"sqnr_theory": 6.02 * 6 + 1.76}

SOLUTIONS = {
    "sqnr_theory": lambda: sqnr_theory(6, 6.02 * 6 + 1.76),
    "noise_power": lambda: noise_power(lambda step: step**2 / 12),
    "best_clip": lambda: best_clip(_solve_best_clip),
}
