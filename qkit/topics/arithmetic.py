"""Integer arithmetic: fixed-point requantization against exact rounding (notebook 03)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from qkit.core.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier


def requant_sweep(m: float, acc: int, half_width: int = 2000) -> dict:
    """``acc * m`` by gemmlowp's fixed point (``m = M0 * 2**(shift - 31)``) for ``acc`` and the
    ``2 * half_width + 1`` accumulators around it, against exact round-half-up."""
    m0, shift = quantize_multiplier(m)
    sweep = np.arange(acc - half_width, acc + half_width + 1)
    fixed = multiply_by_quantized_multiplier(sweep, m0, shift).astype(np.int64)
    exact = np.floor(sweep * m + 0.5)  # round half up: a reference in float64
    return {"m": m, "m0": m0, "shift": shift, "acc": sweep, "difference": fixed - exact,
            "fixed": int(multiply_by_quantized_multiplier(acc, m0, shift)),
            "exact": float(Fraction(acc) * Fraction(m)),
            "max_diff": int(np.abs(fixed - exact).max())}
