"""Quantization noise against the uniform model: SQNR per bit, rounding bias, clipping."""

import numpy as np
import pytest

from qkit.core.metrics import sqnr_db, theoretical_sqnr_db


def _sine():
    t = np.linspace(0, 200 * np.pi, 50_000, endpoint=False)
    return np.sin(t).astype(np.float32)


def test_noise_follows_the_uniform_model_on_a_sine():
    from qkit.topics.noise import error_stats, sqnr_vs_bits

    stats = error_stats(_sine(), 8)
    assert 0.9 < stats["variance"] / stats["uniform_variance"] < 1.1
    assert abs(stats["mean"]) < stats["step"] / 50
    bits, measured = sqnr_vs_bits(_sine(), range(4, 11))
    slope = np.polyfit(bits, measured, 1)[0]
    assert 5.7 < slope < 6.3


def test_rounding_modes_bias():
    from qkit.topics.noise import error_stats

    x = _sine()
    floor = error_stats(x, 6, "floor")
    stochastic = error_stats(x, 6, "stochastic")
    assert floor["mean"] < -0.3 * floor["step"]  # floor always rounds down
    assert abs(stochastic["mean"]) < 0.05 * stochastic["step"]  # unbiased on average
    assert stochastic["variance"] > error_stats(x, 6)["variance"]


def test_clipping_curve_finds_the_aciq_region():
    from qkit.topics.noise import clipping_curve

    x = np.random.default_rng(0).laplace(size=30_000).astype(np.float32)
    c = clipping_curve(x, 4, np.linspace(1, 10, 91))
    assert 3.5 < c["best_alpha"] / c["laplace_b"] < 7.0  # ACIQ: 5.03 b at 4 bits
    assert c["measured"].argmin() not in (0, len(c["alphas"]) - 1)


def test_sqnr_of_a_full_scale_sine_follows_6_02_b():
    """A sine spanning 2^b levels exactly: SQNR = 6.02 b + 1.76 dB, less the grid's 2^b/(2^b-1)."""
    from qkit import fake_quantize, qparams_from_range

    t = np.linspace(0, 200 * np.pi, 100_000, endpoint=False)
    x = (1 + np.sin(t)).astype(np.float32)  # [0, 2]: uint8 min-max puts levels 0..2^b-1 on it
    for bits in (4, 8):
        qp = qparams_from_range(0.0, 2.0, bits=bits, signed=False)
        measured = sqnr_db(x - 1, fake_quantize(x, qp) - 1)
        step_penalty = 20 * np.log10(2**bits / (2**bits - 1))  # step is 2/(2^b - 1), not 2/2^b
        assert measured == pytest.approx(theoretical_sqnr_db(bits) - step_penalty, abs=0.5)
