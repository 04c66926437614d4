"""Exercise checkers (solutions pass, typical mistakes get a useful hint) and the explorers of
notebook 01, driven headless: every control at each end and in the middle."""

import numpy as np
import pytest

from qkit import data, exercises, widgets


def test_reference_solutions_pass(capsys):
    assert exercises.check_all() == 0
    assert "3 passed, 0 failed" in capsys.readouterr().out


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
        return list(control.options)
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
