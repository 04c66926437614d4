"""Error and size measures used throughout the notebooks."""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_float_array


def sqnr_db(x, x_hat) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum x^2 / sum (x - x_hat)^2)`` in dB.

    >>> round(sqnr_db([1.0, -1.0], [0.9, -1.1]), 2)
    20.0
    """
    x = check_float_array(x).astype(np.float64)
    x_hat = check_float_array(x_hat, "x_hat").astype(np.float64)
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {x.shape} and {x_hat.shape}")
    noise = np.sum((x - x_hat) ** 2)
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(np.sum(x**2) / noise))


def theoretical_sqnr_db(bits: int) -> float:
    """Full-scale sine through a b-bit uniform quantizer: ``6.02 b + 1.76`` dB."""
    return 6.02 * bits + 1.76


def quantized_bytes(n_values: int, bits: int, n_scales: int, zero_points: bool = False) -> int:
    """Bytes for ``n_values`` packed ``bits``-bit integers, a float32 scale per group and,
    for asymmetric grids, an int32 zero point per group.

    >>> quantized_bytes(1000, 4, n_scales=10), quantized_bytes(1000, 4, 10, zero_points=True)
    (540, 580)
    """
    return (n_values * bits + 7) // 8 + n_scales * (4 + 4 * bool(zero_points))
