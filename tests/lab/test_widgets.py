"""Every explorer builds, and its controls change what they claim to change."""

import numpy as np
import pytest

from qkit import data
from qkit.lab import widgets
from qkit.studies import results
from qkit.topics import energy, mixed, smoothquant
from qkit.topics.compare import GRANULARITIES


def _drive(explorer):
    for name, control in explorer.controls.items():
        start = control.value
        for value in _ends_and_middle(control):
            control.value = value
            assert explorer.figure is not None and explorer.result is not None, (name, value)
        control.value = start


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


def _sine():
    t = np.linspace(0, 200 * np.pi, 50_000, endpoint=False)
    return np.sin(t).astype(np.float32)


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_requant_explorer_stays_within_one_of_exact():
    ex = widgets.requant_explorer()
    _drive(ex)
    for log10_m in (-6.0, -3.3, -1.0, 0.0, 0.5):
        ex.controls["log10_m"].value = log10_m
        assert ex.result["max_diff"] <= 1 and 2**30 <= ex.result["m0"] < 2**31


@pytest.mark.slow
def test_speed_versions_agree_and_explorer_runs():
    from qkit.kernels import versions
    from qkit.studies import speed

    timed = speed.versions(5, 33, 17, python=True)  # raises if any version differs
    runnable = [n for n in (1,) + speed.SHOWN if versions.available(n)]
    assert list(timed) == [f"{n}. {versions.module(n).TITLE}" for n in runnable] + ["numpy fp32"]
    ex = widgets.speed_explorer(peak_gops=100.0)
    _drive(ex)
    ex.controls["m"].value, ex.controls["k"].value, ex.controls["n"].value = 1, 128, 128
    assert set(ex.result["gops"]) >= {"3. numba, K contiguous", "numpy fp32"}
    assert all(v > 0 for v in ex.result["gops"].values())
    assert speed.arithmetic_intensity(1, 4096, 4096, 1, 1) < 2.1  # GEMV: ~2 ops per byte
    assert speed.arithmetic_intensity(1024, 1024, 1024, 1, 1) > 300


@pytest.mark.slow
def test_ptq_explorer(mnist):
    from qkit.lab import widgets

    ex = widgets.ptq_explorer(mnist["model"], mnist["x"][:256].numpy(),
                              mnist["x_test"][:300].numpy(), mnist["y_test"][:300], 64)
    _drive(ex)
    ex.controls["bits"].value = 8
    db8 = ex.result["last_db"]
    ex.controls["bits"].value = 2
    assert ex.result["last_db"] < db8 - 20 and ex.result["accuracy"] < 0.5


@pytest.mark.slow
def test_grid_explorer():
    from qkit.lab import widgets

    ex = widgets.grid_explorer({"classifier": data.real_weight()[:200],
                                "conv": np.random.default_rng(0).normal(size=(8, 4, 3, 3))})
    _drive(ex)
    ex.controls["layer"].value, ex.controls["bits"].value = "classifier", 3
    assert ex.result["kmeans"] > ex.result["uniform"]


@pytest.mark.slow
def test_qat_and_budget_explorers(mnist):
    from qkit.lab import widgets

    ex = widgets.qat_explorer(results.load("qat"))
    _drive(ex)
    ex.controls["bits"].value = 2
    assert ex.result["qat"] > ex.result["ptq"] + 0.5
    study = {"sensitivity": mixed.sensitivity(mnist["model"], mnist["x_test"][:200].numpy()),
             "points": [{"bytes": 30_000, "accuracy": 0.95}, {"bytes": 90_000, "accuracy": 0.99}],
             "fp32_bytes": 365_632}
    ex = widgets.budget_explorer(study, mnist["model"], mnist["x"][:256].numpy(),
                                 mnist["x_test"][:300].numpy(), mnist["y_test"][:300])
    _drive(ex)
    ex.controls["budget"].value = 30.0
    assert set(ex.result["bits"].values()) == {8}
    ex.controls["budget"].value = 6.5
    assert ex.result["bytes"] < 0.07 * 365_632


def test_energy_explorer():
    from qkit.lab import widgets

    ex = widgets.energy_explorer({"cnn": energy.transformer_counts(8)})
    _drive(ex)
    ex.controls["on_chip"].value = False
    assert ex.result["ratio"] > 1 and ex.result["int4"] < ex.result["int8"]


def test_smoothquant_explorer():
    from qkit.lab import widgets
    from qkit.models import minilm

    model, bbc = minilm.load(), data.bbc_news()
    stats = smoothquant.capture(model, bbc["x_train"][:8], max_len=32)
    ex = widgets.smoothquant_explorer(model, stats, bbc["x_test"][:4], max_len=32)
    ex.controls["alpha"].value = 1.0
    assert abs(ex.result["after"] - 1) < 1e-3  # alpha 1: every channel of x / s peaks at 1
    ex.controls["alpha"].value = 0.5
    assert 1 < ex.result["after"] < ex.result["before"]
    ex.controls["a_bits"].value = 8
    assert 0.9 < ex.result["plain"] <= 1.0


@pytest.mark.slow
def test_bits_explorer_every_control_at_each_end(rng):
    from qkit.lab.widgets import bits_explorer

    w = rng.standard_normal((32, 128)).astype(np.float32) * 0.05
    ex = bits_explorer(w)
    bits, gran, sym = ex.controls["bits"], ex.controls["granularity"], ex.controls["symmetric"]
    seen = {}
    for b in (bits.min, (bits.min + bits.max) // 2, bits.max):
        for g in GRANULARITIES:
            for s in (True, False):
                bits.value, gran.value, sym.value = b, g, s
                assert np.isfinite(ex.result["sqnr_db"]) and ex.figure is not None
                seen[(b, g, s)] = ex.result["sqnr_db"]
    assert seen[(8, "per-tensor", True)] > seen[(5, "per-tensor", True)] + 12
    assert seen[(2, "per-channel", True)] > seen[(2, "per-tensor", True)] - 1e-9
    assert "SQNR" in ex.label.value
