"""Exercises of notebook 05 (calibration and PTQ): checkers, and their reference solutions."""

from __future__ import annotations

import numpy as np

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def fold_bn(fn) -> Feedback:
    """Exercise 1: ``fn(w, b, gamma, beta, mean, var, eps) -> (w_folded, b_folded)`` for a conv
    (w: (O, I, kh, kw)) followed by BatchNorm2d in eval mode."""
    rng = np.random.default_rng(5)
    w, b = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    gamma, beta, mean = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    var, eps = rng.uniform(0.1, 2, size=4), 1e-5
    k = gamma / np.sqrt(var + eps)
    want_w, want_b = w * k[:, None, None, None], (b - mean) * k + beta
    try:
        got_w, got_b = fn(w, b, gamma, beta, mean, var, eps)
    except Exception as err:  # a student's function may fail in any way: report, never raise
        return report(Feedback(False, f"your function raised {type(err).__name__}: {err}"))
    if np.allclose(got_w, want_w, rtol=1e-6) and np.allclose(got_b, want_b, rtol=1e-6):
        return report(Feedback(True, "w' = w * gamma/sqrt(var+eps) per output channel, "
                                     "b' = (b - mean) * gamma/sqrt(var+eps) + beta"))
    if np.allclose(got_w, want_w, rtol=1e-6):
        return report(Feedback(False, "weights right; the bias: subtract the mean before "
                                      "scaling, then add beta"))
    if np.allclose(got_w, w * (gamma / (var + eps))[:, None, None, None], rtol=1e-6):
        return report(Feedback(False, "BatchNorm divides by the standard deviation, not the "
                                      "variance"))
    return report(Feedback(False, "BatchNorm is y = gamma (x - mean) / sqrt(var + eps) + beta: "
                                  "what does it do to w x + b, channel by channel?"))


@checker
def percentile_clip(fn) -> Feedback:
    """Exercise 2: ``fn(x, p)``: the clipping value that keeps p% of |x| (a percentile)."""
    x = np.random.default_rng(6).standard_t(3, 20_000)
    want = float(np.percentile(np.abs(x), 99.9))
    try:
        got = float(fn(x, 99.9))
    except Exception as err:
        return report(Feedback(False, f"your function raised {type(err).__name__}: {err}"))
    if abs(got - want) <= 0.02 * want:
        return report(Feedback(True, f"{got:.3f}: clipping there trades a few large errors "
                                     f"for a {np.abs(x).max() / got:.1f}x finer step"))
    if abs(got - float(np.percentile(x, 99.9))) <= 1e-9:
        return report(Feedback(False, "take the percentile of |x|, not of x"))
    return report(Feedback(False, "which magnitude has p% of the |x| below it? (NumPy has a "
                                  "function for percentiles)"))


@checker
def cle_factor(s: float) -> Feedback:
    """Exercise 3: channel ranges r1 = 4.0 (layer 1 output) and r2 = 0.25 (layer 2 input):
    the CLE factor s that divides layer 1's channel and multiplies layer 2's."""
    want = float(np.sqrt(4.0 / 0.25))
    if abs(s - want) < 1e-6:
        return report(Feedback(True, "s = sqrt(r1 / r2) = 4: both ranges become sqrt(r1 r2) = 1"))
    if abs(s - 1 / want) < 1e-6:
        return report(Feedback(False, "that is 1/s: dividing layer 1 by it would widen r1"))
    return report(Feedback(False, "after scaling, r1 / s must equal r2 * s"))


def _solve_fold_bn(w, b, gamma, beta, mean, var, eps):
    k = gamma / np.sqrt(var + eps)
    return w * k[:, None, None, None], (b - mean) * k + beta


def _bias_wrong(w, b, gamma, beta, mean, var, eps):
    k = gamma / np.sqrt(var + eps)
    return w * k[:, None, None, None], b * k + beta - mean


MISTAKES = {
    "fold_bn": [((_bias_wrong,), "the bias"),
                ((lambda w, b, g, be, m, v, e: (w * (g / (v + e))[:, None, None, None], b),),
                 "not the variance"),
                ((lambda w, b, g, be, m, v, e: (w, b),), "channel by channel")],
    "percentile_clip": [((lambda x, p: np.percentile(x, p),), "of |x|, not of x"),
                        ((lambda x, p: np.abs(x).max(),), "which magnitude")],
    "cle_factor": [((0.25,), "that is 1/s"), ((16.0,), "r1 / s must equal")],
}
ANSWERS = {"cle_factor": 4.0}

SOLUTIONS = {
    "fold_bn": lambda: fold_bn(_solve_fold_bn),
    "percentile_clip": lambda: percentile_clip(lambda x, p: np.percentile(np.abs(x), p)),
    "cle_factor": lambda: cle_factor(np.sqrt(4.0 / 0.25)),
}
