"""Exercises of notebook 07 (quantization-aware training): checkers and reference
solutions."""

from __future__ import annotations

import numpy as np

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def ste_gradient(fn) -> Feedback:
    """Exercise 1: ``fn(x, scale, qmin, qmax)``: d fake_quant / dx under the clipped STE, with
    the clamp after the rounding as in PyTorch's FakeQuantize: 1 where ``round(x / scale)`` is
    inside ``[qmin, qmax]``, else 0."""
    x = np.linspace(-3, 3, 601)
    scale, qmin, qmax = 0.5, -3, 3
    r = np.round(x / scale)
    want = ((r >= qmin) & (r <= qmax)).astype(float)
    try:
        got = np.asarray(fn(x, scale, qmin, qmax), float)
    except Exception as err:
        return report(Feedback(False, f"your function raised {type(err).__name__}: {err}"))
    ties = np.abs(np.abs(x / scale) - 3.5) < 1e-9  # where rounding itself is a coin toss
    if got.shape == want.shape and np.allclose(got[~ties], want[~ties]):
        return report(Feedback(True, "1 where round(x/scale) is inside [qmin, qmax], 0 where the "
                                     "clamp cuts it"))
    if got.shape == want.shape and np.allclose(got, 1):
        return report(Feedback(False, "that is the plain STE: clipping has zero gradient"))
    inside = ((x / scale >= qmin) & (x / scale <= qmax)).astype(float)
    if got.shape == want.shape and np.allclose(got, inside):
        return report(Feedback(False, "almost: the clamp comes after the rounding, so values up "
                                      "to half a step beyond the range still pass"))
    return report(Feedback(False, "the STE treats round() as identity; clamp() still clips"))


@checker
def lsq_init(step: float) -> Feedback:
    """Exercise 2: LSQ's initial step for 4-bit signed weights (Qp = 7) with mean |w| = 0.05."""
    want = 2 * 0.05 / np.sqrt(7)
    if abs(step - want) < 1e-4:
        return report(Feedback(True, f"2 mean|w| / sqrt(Qp) = {want:.4f}"))
    if abs(step - 2 * 0.05 / np.sqrt(8)) < 1e-4:
        return report(Feedback(False, "Qp is the largest positive code of the grid, given in "
                                      "the question"))
    if abs(step - 0.05 / np.sqrt(7)) < 1e-4:
        return report(Feedback(False, "close: LSQ's initial step has a factor you left out"))
    return report(Feedback(False, "LSQ's initial step is written out above the exercises: plug "
                                  "in the mean magnitude and Qp"))


@checker
def lsq_grad_scale(g: float) -> Feedback:
    """Exercise 3: LSQ's gradient scale for one per-channel step covering 288 weights, 4 bits."""
    want = 1 / np.sqrt(288 * 7)
    if abs(g - want) < 1e-5:
        return report(Feedback(True, f"1 / sqrt(N Qp) = {want:.5f}: keeps the step's updates "
                                     "in proportion to the weights'"))
    if abs(g - 1 / np.sqrt(288)) < 1e-5:
        return report(Feedback(False, "include Qp: g = 1 / sqrt(N * Qp)"))
    return report(Feedback(False, "the gradient scale is written out above the exercises: "
                                  "which N shares this step?"))


MISTAKES = {
    "ste_gradient": [((lambda x, s, lo, hi: np.ones_like(x),), "plain STE"),
                     ((lambda x, s, lo, hi: ((x / s >= lo) & (x / s <= hi)).astype(float),),
                      "after the rounding"),
                     ((lambda x, s, lo, hi: np.zeros_like(x),), "identity")],
    "lsq_init": [((2 * 0.05 / np.sqrt(8),), "largest positive code"),
                 ((0.05 / np.sqrt(7),), "a factor you left out"), ((0.5,), "plug in")],
    "lsq_grad_scale": [((1 / np.sqrt(288),), "include Qp"), ((0.5,), "which N")],
}
ANSWERS = {"lsq_init": 2 * 0.05 / np.sqrt(7), "lsq_grad_scale": 1 / np.sqrt(288 * 7)}

SOLUTIONS = {
    "ste_gradient": lambda: ste_gradient(
        lambda x, s, qmin, qmax: ((np.round(x / s) >= qmin) & (np.round(x / s) <= qmax))
        .astype(float)),
    "lsq_init": lambda: lsq_init(2 * 0.05 / np.sqrt(7)),
    "lsq_grad_scale": lambda: lsq_grad_scale(1 / np.sqrt(288 * 7)),
}
