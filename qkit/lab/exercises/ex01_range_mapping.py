"""Exercises of notebook 01 (range mapping): checkers, and their reference solutions."""

from __future__ import annotations

import numpy as np

from qkit.core.qparams import qparams_from_range, qparams_from_tensor, qrange
from qkit.lab.exercises.feedback import Feedback, checker, report

# not the range the notebook works by hand just above the exercises ([-0.5, 4.5])
RANGE_QUESTION = {"lo": -1.2, "hi": 3.0, "bits": 8, "signed": False}


@checker
def scale_and_zero_point(scale: float, zero_point: int) -> Feedback:
    """Exercise 1: the uint8 asymmetric scale and zero point for the range [-1.2, 3.0]."""
    q = RANGE_QUESTION
    qp = qparams_from_range(q["lo"], q["hi"], q["bits"], signed=q["signed"])
    want_s, want_z = float(qp.scale), int(qp.zero_point)
    span = q["hi"] - q["lo"]
    if np.isclose(scale, want_s, rtol=1e-4) and zero_point == want_z:
        return report(Feedback(True, f"scale = {span:g} / 255 = {want_s:.6f}, zero point = "
                                     f"-round({q['lo']} / scale) = {want_z}."))
    if np.isclose(scale, span / 256, rtol=1e-4):
        return report(Feedback(False, "256 levels: how many steps lie between the first and "
                                      "the last?"))
    if not np.isclose(scale, want_s, rtol=1e-4):
        return report(Feedback(False, "the scale spreads the range over the grid's steps: which "
                                      "range (widened to include 0) and how many steps?"))
    if zero_point == -want_z:
        return report(Feedback(False, "the zero point is the integer that stands for 0.0; on a "
                                      "uint8 grid can it be negative?"))
    if zero_point == int(-q["lo"] / want_s):
        return report(Feedback(False, "close: the zero point is rounded to the nearest "
                                      "integer; int() truncates"))
    return report(Feedback(False, "the scale is right; which integer code does 0.0 land on?"))


@checker
def quantize_function(fn) -> Feedback:
    """Exercise 2: write ``fn(x, scale, zero_point, qmin, qmax) -> integer array``."""
    from qkit.core.qparams import QParams
    from qkit.kernels import quantize

    cases = [
        (np.array([0.0, 0.1, -0.1, 1.0, 2.5, -3.0], np.float32), 0.1, 10, 0, 255),
        (np.array([0.05, 0.15, 0.25, -0.05], np.float32), 0.1, 0, -128, 127),  # .5 ties
        (np.array([100.0, -100.0], np.float32), 0.5, 3, -8, 7),  # clipping
    ]
    for x, scale, zp, qmin, qmax in cases:
        want = quantize(x, QParams(np.float32(scale), zp, bits=8 if qmax > 7 else 4,
                                   signed=qmin < 0))
        try:
            got = np.asarray(fn(x, scale, zp, qmin, qmax))
        except Exception as e:  # the student's code: report, do not crash the notebook
            return report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
        if got.shape != want.shape:
            return report(Feedback(False, f"expected shape {want.shape}, got {got.shape}"))
        if not np.issubdtype(got.dtype, np.integer):
            return report(Feedback(False, "return integers (e.g. .astype(np.int32)), not "
                                          f"{got.dtype}"))
        if qmin < 0 and np.issubdtype(got.dtype, np.unsignedinteger):
            return report(Feedback(False, f"this grid is signed (qmin = {qmin}): can {got.dtype} "
                                          "hold its negative codes? Pick a signed dtype"))
        if got.max() > qmax or got.min() < qmin:
            return report(Feedback(False, f"values must be clipped to [qmin, qmax] = [{qmin}, "
                                          f"{qmax}]: clip before casting"))
        if not np.array_equal(got, want):
            bad = int(np.flatnonzero(got != want)[0])
            hint = " (a .5 tie: use np.rint, which rounds half to even)" if abs(
                x[bad] / scale - np.floor(x[bad] / scale) - 0.5) < 1e-3 else ""
            return report(Feedback(False, f"x = {x[bad]} with scale {scale}, zero point {zp} "
                                          f"should give {want[bad]}, you gave {got[bad]}{hint}"))
    return report(Feedback(True, "round(x / scale) + zero_point, clipped: exactly qkit's rule."))


@checker
def per_channel_scales(fn) -> Feedback:
    """Exercise 3: ``fn(w) -> scales``, one symmetric int8 (narrow range) scale per row of w."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((6, 20)) * rng.uniform(0.01, 2, (6, 1))).astype(np.float32)
    want = qparams_from_tensor(w, bits=8, symmetric=True, narrow_range=True, axis=0).scale
    try:
        got = np.asarray(fn(w), np.float64).ravel()
    except Exception as e:
        return report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
    if got.size == 1:
        return report(Feedback(False, "that is one scale for the whole tensor; which axis of w "
                                      "runs over the output channels?"))
    if got.size != 6:
        return report(Feedback(False, f"expected 6 scales (one per row), got {got.size}"))
    if np.allclose(got, np.abs(w).max(axis=0)[:6] / 127, rtol=1e-4):
        return report(Feedback(False, "that reduced over columns; reduce over axis=1"))
    if np.allclose(got, np.abs(w).max(axis=1) / 127.5, rtol=1e-4):
        return report(Feedback(False, "narrow range: which code must the largest |w| of a row "
                                      "land on?"))
    if np.allclose(got, np.abs(w).max(axis=1) / 255, rtol=1e-4):
        return report(Feedback(False, "symmetric: the largest |w| of a row maps to the top code "
                                      "of the grid, not to the whole width of it"))
    if not np.allclose(got, want, rtol=1e-5):
        return report(Feedback(False, "check row 0 by hand: its largest |w| must land exactly "
                                      "on the top code"))
    return report(Feedback(True, f"row ranges differ by {np.ptp(np.log10(want)):.1f} decades:"
                                 " one scale each keeps every row's resolution."))


def _solve_quantize(x, scale, zero_point, qmin, qmax):
    return np.clip(np.rint(np.asarray(x, np.float32) / np.float32(scale)) + zero_point,
                   qmin, qmax).astype(np.int32)


MISTAKES = {
    "scale_and_zero_point": [((4.2 / 256, 73), "how many steps"), ((0.03, 73), "widened"),
                             ((4.2 / 255, -73), "can it be negative"),
                             ((4.2 / 255, 72), "int() truncates"),
                             ((4.2 / 255, 80), "which integer code")],
    "quantize_function": [
        ((lambda x, s, z, lo, hi: x / s + z,), "return integers"),
        ((lambda x, s, z, lo, hi: (np.rint(x / s) + z).astype(int),), "must be clipped"),
        ((lambda x, s, z, lo, hi: np.clip(np.rint(x / s) + z, lo, hi).astype(np.uint8),),
         "signed"),
        ((lambda x, s, z, lo, hi: np.clip(np.floor(x / s) + z, lo, hi).astype(int),),
         "should give"),
        ((lambda x, s, z, lo, hi: 1 / 0,), "raised ZeroDivisionError")],
    "per_channel_scales": [
        ((lambda w: np.abs(w).max() / 127,), "whole tensor"),
        ((lambda w: np.abs(w).max(axis=1) / 127.5,), "narrow range"),
        ((lambda w: np.abs(w).max(axis=1) / 255,), "top code of the grid"),
        ((lambda w: np.abs(w).max(axis=0)[:6] / 127,), "reduce over axis=1"),
        ((lambda w: np.abs(w).mean(axis=1) / 127,), "check row 0")],
}
ANSWERS = {}

SOLUTIONS = {
    "scale_and_zero_point": lambda: scale_and_zero_point(4.2 / 255, 73),
    "quantize_function": lambda: quantize_function(_solve_quantize),
    "per_channel_scales": lambda: per_channel_scales(
        lambda w: np.abs(w).max(axis=1) / qrange(8, True, True)[1]),
}
