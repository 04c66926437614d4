"""Exercise checkers (solutions pass, typical mistakes get a useful hint) and the explorers of
notebook 01, driven headless: every control at each end and in the middle."""

import numpy as np
import pytest

from qkit import data
from qkit.lab import exercises, widgets


def test_reference_solutions_pass(capsys):
    assert exercises.check_all() == 0
    assert f"{len(exercises.SOLUTIONS)} passed, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("scale,zp,hint", [
    (5.0 / 256, 26, "divide the range by qmax - qmin = 255"),
    (0.03, 26, "widened to include 0"),
    (5.0 / 255, -26, "a positive number"),
    (5.0 / 255, 25, "the scale is right"),
])
def test_scale_and_zero_point_mistakes(scale, zp, hint):
    fb = exercises.scale_and_zero_point(scale, zp)
    assert not fb and hint in fb.message


def _floor_quantize(x, s, z, lo, hi):
    return np.clip(np.floor(x / s) + z, lo, hi).astype(int)


@pytest.mark.parametrize("fn,hint", [
    (lambda x, s, z, lo, hi: x / s + z, "return integers"),
    (lambda x, s, z, lo, hi: (np.rint(x / s) + z).astype(int), "must be clipped"),
    (_floor_quantize, "should give"),
    (lambda x, s, z, lo, hi: 1 / 0, "raised ZeroDivisionError"),
])
def test_quantize_function_mistakes(fn, hint):
    fb = exercises.quantize_function(fn)
    assert not fb and hint in fb.message


@pytest.mark.parametrize("fn,hint", [
    (lambda w: np.abs(w).max() / 127, "one scale for the whole tensor"),
    (lambda w: np.abs(w).max(axis=1) / 127.5, "divide by 127"),
    (lambda w: np.abs(w).max(axis=0)[:6] / 127, "reduce over axis=1"),
])
def test_per_channel_mistakes(fn, hint):
    fb = exercises.per_channel_scales(fn)
    assert not fb and hint in fb.message


def _ends_and_middle(control):
    if hasattr(control, "options"):
        options = [o[1] if isinstance(o, tuple) else o for o in control.options]  # (label, value)
        return options if len(options) <= 3 else [options[0], options[len(options) // 2],
                                                   options[-1]]
    if isinstance(control.value, bool):
        return [False, True]
    lo, hi = control.min, control.max
    mid = (lo + hi) / 2 if isinstance(control.value, float) else (lo + hi) // 2
    return [lo, mid, hi]


def _drive(explorer):
    for name, control in explorer.controls.items():
        start = control.value
        for value in _ends_and_middle(control):
            control.value = value
            assert explorer.figure is not None and explorer.result is not None, (name, value)
        control.value = start


def test_range_explorer():
    ex = widgets.range_explorer(data.signals()["ecg"])
    _drive(ex)
    ex.controls["bits"].value, ex.controls["clip_percent"].value = 8, 100.0
    sqnr8 = ex.result["sqnr_db"]
    ex.controls["bits"].value = 4
    assert sqnr8 - ex.result["sqnr_db"] > 18  # about 6 dB per bit
    ex.controls["clip_percent"].value = 90.0
    assert ex.result["clipped_fraction"] > 0.05
    for signed in (False, True):  # every combination of the checkboxes stays valid
        for symmetric in (False, True):
            for narrow in (False, True):
                ex.controls["signed"].value = signed
                ex.controls["symmetric"].value = symmetric
                ex.controls["narrow_range"].value = narrow
                assert np.isfinite(ex.result["sqnr_db"])


def test_granularity_explorer():
    state = data.mobilenet_v2_state_dict()
    ex = widgets.granularity_explorer({k: state[k] for k in
                                       ("features.1.conv.0.0.weight", "classifier.1.weight")})
    _drive(ex)
    ex.controls["layer"].value = "features.1.conv.0.0.weight"  # depthwise: wild channel ranges
    ex.controls["bits"].value = 8
    assert ex.result["per_channel"] > ex.result["per_tensor"] + 5


def test_observer_explorer():
    rng = np.random.default_rng(0)
    x = rng.laplace(size=20_000).astype(np.float32)
    ex = widgets.observer_explorer(x)
    _drive(ex)
    ex.controls["bits"].value = 4
    ranges = ex.result["ranges"]
    assert ranges["MSE"]["mse"] < ranges["min-max"]["mse"]  # clipping pays at 4 bits
    assert ex.result["best"] != "min-max"


# --- notebook 02 ----------------------------------------------------------------------------


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
    assert 5.7 < slope < 6.3  # dB per bit


def test_rounding_modes_bias():
    from qkit.topics.noise import error_stats

    x = _sine()
    floor = error_stats(x, 6, "floor")
    stochastic = error_stats(x, 6, "stochastic")
    assert floor["mean"] < -0.3 * floor["step"]  # floor always rounds down
    assert abs(stochastic["mean"]) < 0.05 * stochastic["step"]  # unbiased on average
    assert stochastic["variance"] > error_stats(x, 6)["variance"]  # but noisier


def test_clipping_curve_finds_the_aciq_region():
    from qkit.topics.noise import clipping_curve

    x = np.random.default_rng(0).laplace(size=30_000).astype(np.float32)
    c = clipping_curve(x, 4, np.linspace(1, 10, 91))
    assert 3.5 < c["best_alpha"] / c["laplace_b"] < 7.0  # ACIQ: 5.03 b at 4 bits
    assert c["measured"].argmin() not in (0, len(c["alphas"]) - 1)


def test_noise_and_image_explorers():
    from qkit.topics.noise import image_at_bits

    ex = widgets.noise_explorer({"sine": _sine(), "ecg": data.signals()["ecg"]})
    _drive(ex)
    ex.controls["signal"].value, ex.controls["bits"].value = "sine", 8
    ex.controls["rounding"].value = "half_even"
    assert abs(ex.result["sqnr_db"] - ex.result["theory_db"]) < 1.5
    img = data.photos()["camera"][:, :, 0]
    im = widgets.image_explorer(img)
    _drive(im)
    im.controls["bits"].value = 8
    assert im.result["sqnr_db"] == np.inf
    assert np.unique(image_at_bits(img, 2)).size <= 4


def test_noise_exercise_mistakes():
    assert not exercises.sqnr_theory(6, 6.02 * 6)
    assert "1.76" in exercises.sqnr_theory(6, 6.02 * 6).message
    fb = exercises.noise_power(lambda step: step**2 / 4)
    assert not fb and "Δ²/12" in fb.message
    fb = exercises.best_clip(lambda x, bits: float(np.abs(x).max()))
    assert not fb and "min-max" in fb.message
    fb = exercises.best_clip(lambda x, bits: 0.6)
    assert not fb and "least MSE" in fb.message


# --- notebook 03 ----------------------------------------------------------------------------


def test_requant_explorer_stays_within_one_of_exact():
    ex = widgets.requant_explorer()
    _drive(ex)
    for log10_m in (-6.0, -3.3, -1.0, 0.0, 0.5):
        ex.controls["log10_m"].value = log10_m
        assert ex.result["max_diff"] <= 1 and 2**30 <= ex.result["m0"] < 2**31


def test_integer_arithmetic_exercise_mistakes():
    fb = exercises.zero_point_correction(
        lambda x, w, zx, zw: (x * w).sum() - zw * x.sum() - zx * w.sum())
    assert not fb and "K * zx * zw" in fb.message
    assert "-128" in exercises.overflow_bound((2**31 - 1) // (255 * 127)).message
    assert not exercises.multiplier_by_hand(round(0.3 * 2**31), -1)
    assert "frexp" in exercises.multiplier_by_hand(1288490189, 0).message


def test_random_torch_linear_matches_on_this_cpu():
    pytest.importorskip("torch.ao.nn.quantized")
    from qkit.engine import fbgemm

    module, x_q, sx, zx, y = fbgemm.random_torch_linear(k=64, n=16, m=8)
    assert np.array_equal(fbgemm.from_torch(module)(x_q, sx, zx), y)


# --- notebook 04 ----------------------------------------------------------------------------


def test_speed_versions_agree_and_explorer_runs():
    from qkit.studies import speed

    speed.versions(5, 33, 17, python=True)  # raises if any version differs
    ex = widgets.speed_explorer(peak_gops=100.0)
    _drive(ex)
    ex.controls["m"].value, ex.controls["k"].value, ex.controls["n"].value = 1, 128, 128
    assert set(ex.result["gops"]) >= {"qkit int8 (packed)", "numpy fp32"}
    assert all(v > 0 for v in ex.result["gops"].values())
    assert speed.arithmetic_intensity(1, 4096, 4096, 1, 1) < 2.1  # GEMV: ~2 ops per byte
    assert speed.arithmetic_intensity(1024, 1024, 1024, 1, 1) > 300


def test_speed_exercise_mistakes():
    assert "multiply-adds" in exercises.ops_count(128 * 384 * 1536).message
    assert not exercises.gemv_bytes_ratio(2)
    assert "not the limit" in exercises.roofline(400).message


# --- notebook 00 ----------------------------------------------------------------------------


def test_welcome_exercise_mistakes_and_energy():
    from qkit.topics import energy

    assert "add the scales" in exercises.int8_bytes(1000 * 1280).message
    assert "that is fp32" in exercises.int8_bytes(4 * 1000 * 1280).message
    assert "quarters" in exercises.db_per_bit(3.01).message
    assert not exercises.mac_energy_ratio(4.0)
    fp32 = energy.estimate(10**6, 4 * 10**5, 10**5, "fp32")
    int8 = energy.estimate(10**6, 10**5, 10**5 // 4, "int8")
    assert int8["total_uj"] < fp32["total_uj"] / 3
    with pytest.raises(ValueError, match="precision"):
        energy.estimate(1, 1, 1, "fp16")
