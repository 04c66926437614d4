"""Every control of every explorer changes what the student sees: moved alone from its default
to each other value, it changes the figure, and the caption or a title says how
(`qkit.lab.explorer.control_effects`). A control that does nothing at some setting says so."""

import numpy as np
import pytest

from qkit import data
from qkit.lab import widgets
from qkit.lab.explorer import control_effects


def _all_visible(explorer):
    rows = control_effects(explorer)
    hidden = [(r["control"], r["value"]) for r in rows if not r["visible"]]
    assert rows and not hidden, hidden
    return rows


def _mnist_parts():
    from qkit.models import mnist_cnn

    split = data.mnist5k()
    return (mnist_cnn.load(), mnist_cnn.to_input(split["x_train"][:256]).numpy(),
            mnist_cnn.to_input(split["x_test"]).numpy(), split["y_test"])


def test_signal_explorers_every_control_visible():
    from qkit.models import mobilenet_v2

    state = data.mobilenet_v2_state_dict()
    t = np.linspace(0, 200 * np.pi, 50_000, endpoint=False)
    for ex in (widgets.bits_explorer(data.real_weight("classifier.1.weight")),
               widgets.range_explorer(data.signals()["ecg"]),
               widgets.granularity_explorer({k: state[k] for k in ("features.1.conv.0.0.weight",
                                                                   "classifier.1.weight")}),
               widgets.observer_explorer(mobilenet_v2.real_activations("features.3.conv.2")),
               widgets.noise_explorer({"sine": np.sin(t).astype(np.float32),
                                       "ECG": data.signals()["ecg"]}),
               widgets.image_explorer(data.photos()["camera"][::2, ::2, 0]),
               widgets.requant_explorer()):
        _all_visible(ex)


def test_range_explorer_signed_asymmetric_says_it_only_relabels():
    ex = widgets.range_explorer(data.signals()["ecg"])
    sqnr = ex.result["sqnr_db"]
    ex.controls["signed"].value = True  # asymmetric: the same levels, codes shifted
    assert ex.result["sqnr_db"] == sqnr and "codes [-8, 7]" in ex.label.value


@pytest.mark.slow
def test_model_explorers_every_control_visible():
    import torch

    from qkit.studies import results
    from qkit.topics import energy, mixed

    model, calib, x, y = _mnist_parts()
    _all_visible(widgets.ptq_explorer(model, calib, x, y))
    _all_visible(widgets.grid_explorer({"clf": data.real_weight(),
                                        "conv3": model.features[3][0].weight.detach().numpy()}))
    _all_visible(widgets.qat_explorer(results.load("qat")))
    _all_visible(widgets.budget_explorer(mixed.mnist_study(rounds=1), model, calib, x, y))
    counts = {"MNIST": energy.traced_counts(model, torch.zeros(1, 1, 28, 28)),
              "MiniLM": energy.transformer_counts(64)}
    ex = widgets.energy_explorer(counts)
    _all_visible(ex)
    ex.controls["on_chip"].value = True  # the DRAM slider does nothing now, and says so
    total = ex.result["int8"]
    ex.controls["dram_pj"].value = 1300.0
    assert ex.result["int8"] == total and "no effect" in ex.label.value


@pytest.mark.slow
def test_smoothquant_and_speed_explorers_every_control_visible():
    from qkit.models import minilm
    from qkit.topics import smoothquant

    m, bbc = minilm.load(), data.bbc_news()
    stats = smoothquant.capture(m, bbc["x_train"][:16], max_len=32)
    ex = widgets.smoothquant_explorer(m, stats, bbc["x_test"][:8], max_len=32)
    _all_visible(ex)
    cos = ex.result["smoothed"]
    ex.controls["layer"].value = "0.query"  # whole-model cosines: the caption says so
    assert ex.result["smoothed"] == cos and "layer menu changes" in ex.label.value
    _all_visible(widgets.speed_explorer(peak_gops=900.0))


def test_alternatives_cover_every_kind_of_control():
    import ipywidgets as W

    from qkit.lab.explorer import _alternatives

    assert _alternatives(W.Checkbox(value=False)) == [True]
    assert _alternatives(W.IntSlider(value=3, min=2, max=8)) == [2, 8]
    assert _alternatives(W.Dropdown(options=[("a", 1), ("b", 2)], value=1)) == [2]
    assert len(_alternatives(W.Dropdown(options=list("abcdef"), value="a"))) == 3


def test_format_explorers_every_control_visible():
    from qkit.models import minilm
    from qkit.topics.smoothquant import capture_inputs

    lm = minilm.load()
    row = lm.layers[1].ffn_in.weight.detach().numpy()[0, :32]
    acts = capture_inputs(lm, data.bbc_news()["x_train"][:8], 32, ["1.ffn_in", "3.query"])
    for ex in (widgets.float_bits_explorer(), widgets.block_explorer(row),
               widgets.rotation_explorer(acts)):
        _all_visible(ex)


def test_float_bits_explorer_in_a_short_format_says_which_bits_count():
    ex = widgets.float_bits_explorer()
    ex.controls["fmt"].value = "fp4_e2m1"
    ex.controls["b7"].value = True  # not part of a 4-bit code: the value does not change ...
    assert ex.result["code"] < 16 and "not part of a 4-bit code" in ex.label.value  # says so
    for fmt in ("fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1"):
        ex.controls["fmt"].value = fmt
        for b in range(8):  # every setting of every bit draws without raising
            ex.controls[f"b{b}"].value = not ex.controls[f"b{b}"].value
            assert ex.figure is not None


def test_block_explorer_refuses_short_input_and_handles_an_all_zero_block():
    import pytest

    with pytest.raises(ValueError, match="at least 32"):
        widgets.block_explorer(np.zeros(8, np.float32))
    ex = widgets.block_explorer(np.zeros(32, np.float32))
    for fmt in ("mxfp4", "mxfp6_e2m3", "mxfp8_e4m3", "mxint8", "nvfp4"):
        ex.controls["fmt"].value = fmt
        assert ex.figure is not None


@pytest.mark.slow
def test_language_explorers_every_control_visible():
    from qkit.models import smollm2, smollm2_quant
    from qkit.studies import results

    lm = smollm2.load()
    means = smollm2_quant.activation_means(lm, windows=1)
    for ex in (widgets.gguf_block_explorer(), widgets.rtn_sweep_explorer(results.load("llm_rtn")),
               widgets.channel_explorer(means)):
        _all_visible(ex)
    ex = widgets.generation_explorer(lm)
    rows = control_effects(ex)
    hidden = [(r["control"], r["value"]) for r in rows if not r["visible"]]
    assert hidden == [("seed", 9)], hidden  # greedy ...
    assert "seed matters only when sampling" in ex.label.value  # ... and it says so
    ex.controls["temperature"].value = 0.8
    before = ex.image.value
    ex.controls["seed"].value = 5
    assert ex.image.value != before and "seed 5" in ex.label.value
    ex.controls["prompt"].value = "   "  # nothing a student types raises
    assert "type a prompt" in ex.label.value
    ex.controls["prompt"].value = "\u00e9\u00e8 \U0001F600 " * 200
    assert ex.result["n"] > 0
