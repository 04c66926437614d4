"""Quantization noise, measured against its theory.

A uniform quantizer of step Δ adds error e = x̂ - x. Inside the grid the classic
model treats e as uniform on [-Δ/2, Δ/2]: variance Δ²/12, mean 0; for a full-scale
sine this gives SQNR = 6.02·b + 1.76 dB. These functions measure the real thing.
"""

from __future__ import annotations

import numpy as np

from qkit import kernels
from qkit.core.checks import check_float_array
from qkit.core.metrics import sqnr_db, theoretical_sqnr_db
from qkit.core.observers import aciq_mse
from qkit.core.qparams import qparams_from_range


def full_scale_grid(x, bits: int, signed: bool = True):
    """A symmetric grid whose 2^b levels span [-max|x|, max|x|] (step 2·max|x| / (2^b - 1))."""
    x = check_float_array(x)
    amax = float(np.abs(x).max())
    if not signed:
        return qparams_from_range(float(x.min()), float(x.max()), bits, signed=False)
    return qparams_from_range(-amax, amax, bits, signed=True, symmetric=False)


def error_stats(x, bits: int, rounding: str = "half_even", seed: int = 0) -> dict:
    """Error of a full-scale grid on ``x``: mean, variance vs Δ²/12, SQNR vs 6.02·b + 1.76."""
    x = check_float_array(x)
    qp = full_scale_grid(x, bits, signed=bool(x.min() < 0))
    q = kernels.quantize(x, qp, rounding, rng=np.random.default_rng(seed))
    e = kernels.dequantize(q, qp).astype(np.float64) - x
    step = float(qp.scale)
    return {"bits": bits, "step": step, "error": e, "mean": float(e.mean()),
            "variance": float(e.var()), "uniform_variance": step**2 / 12,
            "sqnr_db": sqnr_db(x, x + e), "theory_db": theoretical_sqnr_db(bits)}


def sqnr_vs_bits(x, bits=range(2, 11)) -> tuple[np.ndarray, np.ndarray]:
    """Measured SQNR (dB) of the full-scale grid at each bit width."""
    bits = np.asarray(list(bits))
    return bits, np.array([error_stats(x, int(b))["sqnr_db"] for b in bits])


def clipping_curve(x, bits: int, alphas) -> dict:
    """MSE of a symmetric grid clipped at each ``alpha`` (measured), with the ACIQ model
    for a Laplace fit (b = mean |x - mean|) for comparison."""
    x = check_float_array(x).ravel()
    measured = []
    for a in alphas:
        qp = qparams_from_range(-a, a, bits, signed=True, symmetric=True, narrow_range=False)
        measured.append(float(np.mean((kernels.fake_quantize(x, qp).astype(np.float64) - x)
                                      ** 2)))
    b = float(np.abs(x - x.mean()).mean())
    model = aciq_mse(np.asarray(alphas), b, bits, "laplace")
    best = int(np.argmin(measured))
    return {"alphas": np.asarray(alphas), "measured": np.array(measured), "aciq": model,
            "best_alpha": float(alphas[best]), "laplace_b": b}


def image_at_bits(img, bits: int) -> np.ndarray:
    """A uint8 image requantized to ``bits`` bits over [0, 255] and back (what you would see)."""
    img = np.asarray(img)
    qp = qparams_from_range(0.0, 255.0, bits, signed=False)
    return np.clip(np.rint(kernels.fake_quantize(img.astype(np.float32), qp)), 0, 255
                   ).astype(np.uint8)


def image_report(img, bits: int) -> dict:
    """A uint8 photo at ``bits`` bits per pixel (1 bit: a threshold at 128) and its SQNR."""
    shown = image_at_bits(img, bits) if bits > 1 else (img >= 128).astype(np.uint8) * 255
    return {"shown": shown, "sqnr_db": sqnr_db(img.astype(np.float32), shown.astype(np.float32))}
