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


def activation_table(fn: str, in_range=(-8.0, 8.0), out_range=None, **params) -> dict:
    """The 256-entry table that runs activation ``fn`` (a name in
    `qkit.engine.functions.FUNCTIONS`, e.g. "silu") on uint8 inputs whose grid spans
    ``in_range``, onto an output grid spanning ``out_range`` (by default the function's range
    on the input grid): the table the converter builds (`qkit.engine.elementwise.lut_table`),
    beside the float function on the same 256 inputs."""
    import torch

    from qkit.core.qparams import qparams_from_range
    from qkit.engine import functions
    from qkit.engine.elementwise import lut_table
    from qkit.reference import dequantize

    lo, hi = (float(v) for v in in_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < 0 < hi):
        raise ValueError(f"in_range must be finite with lo < 0 < hi, got {in_range!r}")
    spec = {"fn": fn, **params}
    functions.check(spec, "activation_table")
    qx = qparams_from_range(np.float32(lo), np.float32(hi), 8, signed=False)
    q = np.arange(256, dtype=np.uint8)
    x = dequantize(q, qx).astype(np.float32)
    with torch.no_grad():
        y = functions.apply(spec, torch.from_numpy(x)).numpy().astype(np.float32)
    if out_range is None:
        out_range = (min(float(y.min()), 0.0), max(float(y.max()), 0.0))
    ylo, yhi = (float(v) for v in out_range)
    if not (np.isfinite(ylo) and np.isfinite(yhi) and ylo <= 0 <= yhi and ylo < yhi):
        raise ValueError(f"out_range must be finite with lo <= 0 <= hi, got {out_range!r}")
    qy = qparams_from_range(np.float32(ylo), np.float32(yhi), 8, signed=False)
    table = lut_table(spec, (qx.scale, qx.zero_point), (qy.scale, qy.zero_point))
    y_table = dequantize(table, qy).astype(np.float32)
    inside = (y >= float(qy.scale) * (0 - int(qy.zero_point))) & \
        (y <= float(qy.scale) * (255 - int(qy.zero_point)))
    # in output steps, as the quantizer sees it: f32(y / s) against the entry's T - z
    steps = np.abs((y / np.float32(qy.scale)).astype(np.float32)
                   - (table.astype(np.float32) - np.float32(qy.zero_point)))
    return {"fn": fn, "q": q, "x": x, "y_float": y, "table": table, "y_table": y_table,
            "in_grid": (float(qx.scale), int(qx.zero_point)),
            "out_grid": (float(qy.scale), int(qy.zero_point)),
            "distinct": int(np.unique(table).size),
            "max_error_steps": float(steps[inside].max(initial=0.0)),
            "saturated": int((~inside).sum())}
