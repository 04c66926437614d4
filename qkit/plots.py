"""Matplotlib figures. Each function draws on the axes it is given and returns its numbers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def weights_and_error(report: dict, w, axes=None):
    """Left: the weight histogram with the integer grid's clip range. Right: the error histogram."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    ax_w, ax_e = axes
    w = np.asarray(w).ravel()
    qp = report["qparams"]
    ax_w.hist(w, bins=200, color="tab:blue", log=True)
    if qp.scale.size == 1:
        lo = float((qp.qmin - qp.zero_point) * qp.scale)
        hi = float((qp.qmax - qp.zero_point) * qp.scale)
        for v in (lo, hi):
            ax_w.axvline(v, color="tab:red", ls="--", lw=1)
    ax_w.set(title=f"weights ({w.size:,} values)", xlabel="value", ylabel="count (log)")
    err = report["error"].ravel()
    ax_e.hist(err, bins=101, color="tab:orange")
    ax_e.set(title=f"{report['bits']}-bit {report['granularity']}: SQNR {report['sqnr_db']:.1f} dB",
             xlabel="w - dequantize(quantize(w))", ylabel="count")
    ax_w.figure.tight_layout()
    return {"sqnr_db": report["sqnr_db"], "max_abs_error": report["max_abs_error"]}
