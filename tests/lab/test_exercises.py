"""Exercise checkers: every reference solution passes, each typical mistake gets its hint."""


import numpy as np
import pytest

from qkit.lab import exercises
from qkit.topics import energy


def _floor_quantize(x, s, z, lo, hi):
    return np.clip(np.floor(x / s) + z, lo, hi).astype(int)


def test_reference_solutions_pass(capsys):
    assert exercises.check_all() == 0
    assert f"{len(exercises.SOLUTIONS)} passed, 0 failed" in capsys.readouterr().out


def test_noise_exercise_mistakes():
    assert not exercises.sqnr_theory(6, 6.02 * 6)
    assert "1.76" in exercises.sqnr_theory(6, 6.02 * 6).message
    fb = exercises.noise_power(lambda step: step**2 / 4)
    assert not fb and "Δ²/12" in fb.message
    fb = exercises.best_clip(lambda x, bits: float(np.abs(x).max()))
    assert not fb and "min-max" in fb.message
    fb = exercises.best_clip(lambda x, bits: 0.6)
    assert not fb and "least MSE" in fb.message


def test_integer_arithmetic_exercise_mistakes():
    fb = exercises.zero_point_correction(
        lambda x, w, zx, zw: (x * w).sum() - zw * x.sum() - zx * w.sum())
    assert not fb and "K * zx * zw" in fb.message
    assert "largest magnitude" in exercises.overflow_bound((2**31 - 1) // (127 * 127)).message
    assert not exercises.multiplier_by_hand(round(0.3 * 2**31), -1)
    assert "frexp" in exercises.multiplier_by_hand(1288490189, 0).message


def test_speed_exercise_mistakes():
    assert "multiply-adds" in exercises.ops_count(128 * 384 * 1536).message
    assert not exercises.gemv_bytes_ratio(2)
    assert "not the limit" in exercises.roofline(400).message


def test_welcome_exercise_mistakes_and_energy():

    assert "add the scales" in exercises.int8_bytes(1000 * 1280).message
    assert "that is fp32" in exercises.int8_bytes(4 * 1000 * 1280).message
    assert "square of the step" in exercises.db_per_bit(3.01).message
    assert not exercises.mac_energy_ratio(4.0)
    fp32 = energy.estimate(10**6, 4 * 10**5, 10**5, "fp32")
    int8 = energy.estimate(10**6, 10**5, 10**5 // 4, "int8")
    assert int8["total_uj"] < fp32["total_uj"] / 3
    with pytest.raises(ValueError, match="precision"):
        energy.estimate(1, 1, 1, "fp16")


@pytest.mark.parametrize("check,answer,hint", [
    ("fold_bn", lambda w, b, g, be, m, v, e: (w * (g / np.sqrt(v + e))[:, None, None, None],
                                               b * g / np.sqrt(v + e) + be), "subtract the mean"),
    ("percentile_clip", lambda x, p: np.percentile(x, p), "of |x|"),
    ("cle_factor", 0.25, "1/s"),
    ("kmeans_step", lambda x, c: np.array([x[np.abs(x[:, None] - c).argmin(1) == i].mean()
                                           for i in range(len(c))]), "keep it"),
    ("lut_multiplies", 64, "sums the activations"),
    ("nf4_bits_per_weight", 4, "add the scales"),
    ("ste_gradient", lambda x, s, lo, hi: np.ones_like(x), "plain STE"),
    ("ste_gradient", lambda x, s, lo, hi: ((x / s >= lo) & (x / s <= hi)).astype(float),
     "after the rounding"),
    ("lsq_grad_scale", 1 / np.sqrt(288), "include Qp"),
    ("additive_sqnr", 15.0, "not decibels"),
    ("allocation_bytes", 500_000, "scales"),
    ("greedy_choice", "B", "noise per byte"),
    ("group_bytes", 1536 * 384 // 2, "scale per 64"),
])
def test_notebook_05_10_exercise_mistakes(check, answer, hint):
    import warnings

    from qkit.lab import exercises

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the empty-cluster mistake takes a mean of nothing
        fb = getattr(exercises, check)(answer)
    assert not fb and hint in fb.message


@pytest.mark.parametrize("name", sorted(exercises.SOLUTIONS))
def test_a_blank_answer_is_not_answered_yet(name, capsys):
    # the student edition's stub is `...`: every checker says "not yet", never a traceback
    fb = getattr(exercises, name)(...)
    assert not fb and fb.message == exercises.feedback.NOT_ANSWERED
    assert capsys.readouterr().out.count("replace the ...") == 1


def test_feedback_is_shown_once(capsys):
    fb = exercises.int8_bytes(1000 * 1280 + 4 * 1000)  # prints its feedback
    fb._ipython_display_()  # what IPython does with a cell's last value: nothing more
    assert capsys.readouterr().out.count("passed:") == 1
    quiet = exercises.Feedback(True, "made by hand, never printed")
    quiet._ipython_display_()
    assert "made by hand" in capsys.readouterr().out
