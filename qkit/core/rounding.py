"""Rounding modes for quantization, in one place.

``half_even`` (default, as PyTorch, ONNX and NumPy's ``rint``), ``half_away``
(TFLite's ``round``), ``floor`` (a biased mode worth seeing once) and
``stochastic`` (``floor(v + u)``, ``u ~ U[0, 1)``: unbiased on average).
"""

from __future__ import annotations

import numpy as np

ROUNDING_MODES = ("half_even", "half_away", "floor", "stochastic")
MODE_CODE = {m: i for i, m in enumerate(ROUNDING_MODES)}


def check_rounding(rounding: str, rng=None, shape=None):
    """Validate the mode; for ``stochastic`` return the uniform noise to add (float64)."""
    if rounding not in MODE_CODE:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")
    if rounding != "stochastic":
        return np.zeros(0)
    if rng is None:
        raise ValueError("rounding='stochastic' needs rng=np.random.default_rng(seed) (seed it)")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return rng.random(shape)


def round_values(v: np.ndarray, rounding: str = "half_even", noise=None) -> np.ndarray:
    """Round float32 values to integers (returned as float64).

    Computed in float64, where ``|v| + 0.5`` and ``v + u`` are exact or safely
    rounded for every float32 ``v``.

    >>> v = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=np.float32)
    >>> round_values(v, "half_even")
    array([-2., -2., -0.,  0.,  2.,  2.])
    >>> round_values(v, "half_away")
    array([-3., -2., -1.,  1.,  2.,  3.])
    >>> round_values(v, "floor")
    array([-3., -2., -1.,  0.,  1.,  2.])
    """
    v = np.asarray(v, dtype=np.float64)
    if rounding == "half_even":
        return np.rint(v)
    if rounding == "half_away":
        return np.copysign(np.floor(np.abs(v) + 0.5), v)
    if rounding == "floor":
        return np.floor(v)
    if rounding == "stochastic":
        return np.floor(v + noise)
    raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")
