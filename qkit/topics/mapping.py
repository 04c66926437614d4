"""Range mapping: put a float range on an integer grid and measure what it costs."""

from __future__ import annotations

import numpy as np

from qkit import kernels
from qkit.core.checks import check_float_array
from qkit.core.metrics import sqnr_db
from qkit.core.qparams import qparams_from_range


def map_range(x, bits: int = 8, *, signed: bool = False, symmetric: bool = False,
              narrow_range: bool = False, clip_percent: float = 100.0) -> dict:
    """Quantize ``x`` onto a grid covering its central ``clip_percent`` % and measure the error.

    The range is ``[lo, hi]`` = the (100 - p)/2 and (100 + p)/2 percentiles of ``x``
    (min and max at 100 %); `qkit.core.qparams.qparams_from_range` turns it into scale and
    zero point. The error splits into rounding (inside the grid) and clipping (outside).

    >>> r = map_range(np.linspace(-1, 3, 1001), bits=8)
    >>> round(float(r["scale"]), 5), r["zero_point"], round(r["clipped_fraction"], 3)
    (0.01569, 64, 0.0)
    """
    x = check_float_array(x).ravel()
    if not 0 < clip_percent <= 100:
        raise ValueError(f"clip_percent must be in (0, 100], got {clip_percent}")
    lo, hi = np.percentile(x, [(100 - clip_percent) / 2, (100 + clip_percent) / 2])
    qp = qparams_from_range(np.float32(lo), np.float32(hi), bits, signed=signed,
                            symmetric=symmetric, narrow_range=narrow_range)
    x_hat = kernels.fake_quantize(x, qp)
    grid_lo = float((qp.qmin - qp.zero_point) * qp.scale)
    grid_hi = float((qp.qmax - qp.zero_point) * qp.scale)
    # clipped = the nearest code is off the grid (a value within half a step of the end
    # rounds to the end code, as any value inside does: that is rounding, not clipping)
    codes = np.rint(x.astype(np.float64) / np.float64(qp.scale)) + int(qp.zero_point)
    outside = (codes < qp.qmin) | (codes > qp.qmax)
    err = x.astype(np.float64) - x_hat
    return {"qparams": qp, "scale": float(qp.scale), "zero_point": int(qp.zero_point),
            "qmin": qp.qmin, "qmax": qp.qmax, "grid": (grid_lo, grid_hi), "x_hat": x_hat,
            "mse": float(np.mean(err**2)), "sqnr_db": sqnr_db(x, x_hat),
            "rounding_mse": float(np.sum(err[~outside] ** 2) / x.size),
            "clipping_mse": float(np.sum(err[outside] ** 2) / x.size),
            "clipped_fraction": float(outside.mean())}


def channel_report(w, bits: int = 8, axis: int = 0) -> dict:
    """Per-tensor vs per-channel symmetric grids on a weight tensor: per-channel SQNR of each."""
    from qkit.core.qparams import qparams_from_tensor

    w = check_float_array(w)
    out = {}
    for name, ax in (("per-tensor", None), ("per-channel", axis)):
        qp = qparams_from_tensor(w, bits=bits, symmetric=True, narrow_range=True, axis=ax)
        w_hat = kernels.fake_quantize(w, qp)
        moved, moved_hat = np.moveaxis(w, axis, 0), np.moveaxis(w_hat, axis, 0)
        per = [sqnr_db(a, b) if np.any(a) else np.inf for a, b in zip(moved, moved_hat,
                                                                        strict=True)]
        out[name] = {"sqnr_db": sqnr_db(w, w_hat), "channel_sqnr_db": np.array(per)}
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    out["ranges"] = np.stack([moved.min(axis=1), moved.max(axis=1)], axis=1)
    return out


def observer_ranges(x, bits: int = 8) -> dict:
    """The range each calibration observer picks for ``x`` and the MSE of that grid."""
    from qkit.core.observers import OBSERVERS, ACIQObserver, EntropyObserver, MSEObserver

    makers = {"min-max": OBSERVERS["minmax"], "percentile 99.99": OBSERVERS["percentile"],
              "MSE": lambda: MSEObserver(bits), "KL (TensorRT)": lambda: EntropyObserver(bits),
              "ACIQ Laplace": lambda: ACIQObserver(bits, "laplace")}
    signed = bool(np.min(x) < 0)
    out = {}
    for name, make in makers.items():
        low, high = make().update(x).range()
        qp = qparams_from_range(low, high, bits=bits, signed=signed, symmetric=signed)
        err = np.asarray(x, np.float64) - kernels.fake_quantize(x, qp)
        out[name] = {"range": (float(low), float(high)), "mse": float(np.mean(err**2))}
    return out
