"""Exercises of notebook 03 (integer arithmetic): checkers, and their reference solutions."""

from __future__ import annotations

import numpy as np

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def zero_point_correction(fn) -> Feedback:
    """Exercise 1: ``fn(x_q, w_q, zx, zw) -> sum_k (x - zx)(w - zw)`` for one row and one column,
    using only ``sum(x*w)``, ``sum(x)``, ``sum(w)`` and K (the zero-point expansion)."""
    rng = np.random.default_rng(3)
    for k in (1, 7, 64):
        x = rng.integers(0, 256, k)
        w = rng.integers(-128, 128, k)
        zx, zw = int(rng.integers(0, 256)), int(rng.integers(-5, 6))
        want = int(((x - zx) * (w - zw)).sum())
        try:
            got = int(fn(x, w, zx, zw))
        except Exception as e:
            return report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
        if got != want:
            if got == int((x * w).sum() - zx * w.sum() - zw * x.sum()):
                return report(Feedback(False, "almost: the constant term K * zx * zw is missing"))
            return report(Feedback(False, f"K={k}, zx={zx}, zw={zw}: expected {want}, got {got}."
                                          " Expand (x - zx)(w - zw) and sum each term"))
    return report(Feedback(True, "sum(xw) - zw sum(x) - zx sum(w) + K zx zw: the weight sums "
                                 "are computed once, at load time."))


@checker
def overflow_bound(k_max: int) -> Feedback:
    """Exercise 2: the largest K for which a dot product of 7-bit activations (0..127, PyTorch's
    ``reduce_range``) and int8 weights cannot overflow int32 (the 8-bit bound is in the text)."""
    want = (2**31 - 1) // (127 * 128)
    if k_max == want:
        return report(Feedback(True, f"(2^31 - 1) // (127 * 128) = {want:,}: twice the 8-bit "
                                     "bound, one bit of headroom bought back."))
    if k_max == (2**31 - 1) // (255 * 128):
        return report(Feedback(False, "that is the bound for 8-bit activations, from the text; "
                                      "here they stop at 127"))
    if k_max == (2**31 - 1) // (127 * 127):
        return report(Feedback(False, "which int8 has the largest magnitude?"))
    return report(Feedback(False, "how large can one product be in magnitude now, and how many "
                                  "of those fit below the largest int32?"))


@checker
def multiplier_by_hand(m0: int, shift: int) -> Feedback:
    """Exercise 3: ``quantize_multiplier(0.3)`` by hand: M0 in [2^30, 2^31) and the shift."""
    from qkit.core.fixedpoint import quantize_multiplier

    want_m0, want_shift = quantize_multiplier(0.3)
    if (m0, shift) == (want_m0, want_shift):
        return report(Feedback(True, f"0.3 = 0.6 x 2^-1: M0 = round(0.6 x 2^31) = {want_m0}, "
                                     "shift = -1"))
    if shift == want_shift:
        return report(Feedback(False, "the shift is right; M0 must lie in [2^30, 2^31): which "
                                      "q in [0.5, 1) does it stand for?"))
    return report(Feedback(False, "write 0.3 = q x 2^shift with q in [0.5, 1) (frexp)"))


MISTAKES = {
    "zero_point_correction": [
        ((lambda x, w, zx, zw: (x * w).sum() - zx * w.sum() - zw * x.sum(),), "constant term"),
        ((lambda x, w, zx, zw: (x * w).sum(),), "Expand"),
        ((lambda x, w, zx, zw: 1 / 0,), "raised")],
    "overflow_bound": [(((2**31 - 1) // (255 * 128),), "8-bit activations"),
                       (((2**31 - 1) // (127 * 127),), "largest magnitude"),
                       ((1000,), "how large")],
    "multiplier_by_hand": [((644245094, -1), "the shift is right"), ((1288490189, 0), "frexp")],
}
ANSWERS = {"overflow_bound": (2**31 - 1) // (127 * 128)}

SOLUTIONS = {
    "zero_point_correction": lambda: zero_point_correction(
        lambda x, w, zx, zw: (x * w).sum() - zw * x.sum() - zx * w.sum() + len(x) * zx * zw),
    "overflow_bound": lambda: overflow_bound((2**31 - 1) // (127 * 128)),
    "multiplier_by_hand": lambda: multiplier_by_hand(1288490189, -1),
}
