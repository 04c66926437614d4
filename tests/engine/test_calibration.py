"""Calibration methods: adaptive rounding (input moments, the layer loss) and loss-aware
activation ranges."""

import numpy as np
import pytest

from qkit import data
from qkit.core.metrics import sqnr_db
from qkit.engine import SCHEMES, IntegerModel, trace

torch = pytest.importorskip("torch")


def _patches(x, op):
    """Independent reference for the moments: torch's unfold, per group of input channels."""
    from torch.nn import functional as F

    p = op.params
    cols = F.unfold(x.double(), op.params["weight"].shape[2:], dilation=p["dilation"],
                    padding=p["padding"], stride=p["stride"])  # (N, C*KH*KW, L)
    return cols.permute(0, 2, 1).reshape(-1, cols.shape[1])


@pytest.mark.parametrize("stride,padding,dilation", [((1, 1), (1, 1), (1, 1)),
                                                     ((2, 2), (1, 1), (1, 1)),
                                                     ((1, 2), (2, 0), (2, 1))])
def test_input_moments_match_unfold(stride, padding, dilation):
    from qkit.engine import adaround
    from qkit.engine.graph import Op

    torch.manual_seed(0)
    x = torch.randn(3, 4, 9, 10)
    params = dict(stride=stride, padding=padding, dilation=dilation)
    dense = Op("conv", "c", ["x"], dict(params, weight=np.zeros((5, 4, 3, 3), np.float32),
                                        groups=1))
    depthwise = Op("conv", "d", ["x"], dict(params, weight=np.zeros((4, 1, 3, 3), np.float32),
                                            groups=4))
    pointwise = Op("conv", "p", ["x"], dict(params, weight=np.zeros((5, 4, 1, 1), np.float32),
                                            groups=1, padding=(0, 0)))
    for op in (dense, depthwise, pointwise):
        m = adaround.InputMoments(op)
        m.update(x[:2])
        m.update(x[2:])  # in two batches
        cols = _patches(x, op).numpy()
        if op is depthwise:  # per channel: its 9 window values
            c = cols.reshape(len(cols), 4, 9)
            expected = np.einsum("nci,ncj->cij", c, c) / len(cols)
        else:
            expected = cols.T @ cols / len(cols)
        np.testing.assert_allclose(m.matrix, expected, rtol=1e-10, atol=1e-12)


def test_adaptive_rounding_minimises_the_layer_loss():
    from qkit.engine import adaround

    rng = np.random.default_rng(0)
    # depthwise: 9 weights per channel, exhaustive; check against a loop over all 512 choices
    w = rng.standard_normal((6, 1, 3, 3))
    scale = np.abs(w).reshape(6, -1).max(1) / 7
    a = rng.standard_normal((6, 9, 40)) + 3.0  # inputs with a large mean, as after ReLU
    h = np.einsum("cin,cjn->cij", a, a) / 40
    codes = adaround.round_weights(w, scale, h, -7, 7)
    for c in range(6):
        ws = w[c].ravel() / scale[c]
        best = min(
            (float((q - ws) @ h[c] @ (q - ws)), tuple(q))
            for bits in range(512)
            for q in [np.floor(ws) + np.array([(bits >> i) & 1 for i in range(9)])])
        assert tuple(codes[c].ravel()) == best[1]
    # dense: coordinate descent never loses to nearest rounding, and here wins by half
    w = rng.standard_normal((16, 50))
    scale = np.abs(w).max(1) / 7
    a = rng.standard_normal((50, 400)) * rng.uniform(0.1, 2, (50, 1)) + 1.0
    h = a @ a.T / 400
    nearest = np.clip(np.rint(w / scale[:, None]), -7, 7)
    codes = adaround.round_weights(w, scale, h, -7, 7)
    assert np.abs(codes - w / scale[:, None]).max() < 1  # still one of the two neighbours
    assert codes.min() >= -7 and codes.max() <= 7
    loss_nearest = adaround.local_loss(w, nearest, scale, h)
    assert adaround.local_loss(w, codes, scale, h) < 0.7 * loss_nearest


@pytest.mark.slow
def test_adaptive_rounding_lowers_the_error_on_new_data():
    # MNIST CNN, calibrated on 256 training images, measured on the 1,000 test images
    from qkit.engine.dynamic import WeightOnlyModel
    from qkit.models import mnist_cnn

    model = mnist_cnn.load()
    split = data.mnist5k()
    calib = mnist_cnn.to_input(split["x_train"][:256])
    x, y = mnist_cnn.to_input(split["x_test"]), split["y_test"]
    with torch.no_grad():
        ref = model(x).numpy()
    plain = IntegerModel.from_float(model, calib, SCHEMES["w4a8-per-channel-bc"])(x)
    adaptive = IntegerModel.from_float(model, calib, SCHEMES["w4a8-per-channel-ada-bc"])(x)
    assert sqnr_db(ref, adaptive) > sqnr_db(ref, plain) + 0.8  # measured 17.4 -> 18.6 dB
    w3 = WeightOnlyModel(model, 3)(x)
    w3_adaptive = WeightOnlyModel(model, 3, calibration=calib)(x)
    acc = [float((v.argmax(1) == y).mean()) for v in (w3, w3_adaptive)]
    assert acc[1] > acc[0] + 0.03, acc


@pytest.mark.slow
def test_adaptive_rounding_rescues_mobilenet_v2_weights():
    # MobileNetV2's first depthwise layer sees nearly constant windows: nearest rounding of its
    # 9 weights per channel adds up; adaptive rounding cancels it (notebook 05, eval table)
    from qkit.engine.dynamic import WeightOnlyModel
    from qkit.models import mobilenet_v2 as mv2

    model = mv2.load()
    x = mv2.preprocess(mv2.photo_set(crops_per_photo=1))  # 24 images
    with torch.no_grad():
        ref = model(x).numpy()
    calib, held_out = x[1::2], np.arange(0, len(x), 2)
    nearest = WeightOnlyModel(model, 8)(x)
    adaptive = WeightOnlyModel(model, 8, calibration=calib)(x)
    gain = sqnr_db(ref[held_out], adaptive[held_out]) - sqnr_db(ref[held_out], nearest[held_out])
    assert gain > 6, gain
    from qkit.engine import adaround  # the notebook's one-layer view: the first depthwise conv

    ops, _ = trace(model)
    moments = adaround.collect(ops, calib[:4])
    op = next(o for o in ops if o.kind == "conv" and o.params["groups"] > 1)
    report = adaround.compare(op, moments[op.name])
    assert report["loss_adaptive"] < 0.5 and 0 < report["changed"] < 0.5, report


def test_loss_aware_grid_is_the_engines_grid():
    from qkit import kernels
    from qkit.core.qparams import qparams_from_range
    from qkit.engine import ranges

    y = torch.randn(4, 8, 5, 5) * 3
    qp = qparams_from_range(np.float32(-2.5), np.float32(4.0), 8, signed=False)
    q = kernels.quantize(y.numpy(), qp).astype(np.int32)
    expect = (q - int(qp.zero_point)).astype(np.float32) * np.float32(qp.scale)
    np.testing.assert_array_equal(ranges.fake_quantize(y, -2.5, 4.0).numpy(), expect)


def test_loss_aware_search_keeps_the_best_candidate(models):
    from qkit.engine import ranges
    from qkit.engine.floatrun import float_layer, run_graph

    x = torch.randn(32, 3, 12, 12) ** 3  # heavy tails: min-max is not the best clip
    ops, _ = trace(models[0])
    names = [op.name for op in ops if op.kind in ("conv", "add")][:3]
    chosen = ranges.search(ops, x, names)
    assert list(chosen) == names
    with torch.no_grad():
        floats = run_graph(ops, x, float_layer)
        ref = floats[ops[-1].name]
    first = names[0]  # nothing before it is quantized: every candidate can be re-scored here
    y = floats[first]
    lo0, hi0 = min(0.0, float(y.min())), float(y.max())
    errors = {}
    for a_lo in (ranges.LOW if lo0 < 0 else (1.0,)):
        for a_hi in ranges.HIGH:
            r = (lo0 * a_lo, hi0 * a_hi)
            with torch.no_grad():
                out = run_graph(ops, x, float_layer,
                                lambda op, v, r=r: ranges.fake_quantize(v, *r) if op.name == first
                                else v)[ops[-1].name]
            errors[r] = ranges.output_error(out, ref, "kl")
    assert chosen[first] in errors
    assert errors[chosen[first]] == min(errors.values())
    for lo, hi in chosen.values():
        assert lo <= 0 <= hi and hi > lo
    with pytest.raises(ValueError, match="loss must be"):
        ranges.output_error(ref, ref, "l1")
    with pytest.raises(ValueError, match="observer must be"):
        IntegerModel.from_float(models[0], x, SCHEMES["w8a8-per-channel"].__class__(
            observer="median"))


@pytest.mark.slow
def test_loss_aware_ranges_help_mobilenet_v2_on_new_images():
    # the first activations of MobileNetV2 (the per-tensor grids that cost most, notebook 05):
    # ranges searched on 12 images lower the output KL on the 12 others
    from qkit.engine import ranges
    from qkit.engine.floatrun import float_layer, run_graph
    from qkit.models import mobilenet_v2 as mv2

    model = mv2.load()
    x = mv2.preprocess(mv2.photo_set(crops_per_photo=1))  # 24 images
    calib, new = x[1::2], x[0::2]
    ops, _ = trace(model)
    names = [op.name for op in ops if op.kind in ("conv", "add")][:6]
    chosen = ranges.search(ops, calib, names)
    with torch.no_grad():
        floats = run_graph(ops, new, float_layer)
    minmax = {n: (min(0.0, float(floats[n].min())), float(floats[n].max())) for n in names}

    def kl(r):
        with torch.no_grad():
            out = run_graph(ops, new, float_layer, lambda op, v: ranges.fake_quantize(
                v, *r[op.name]) if op.name in r else v)[ops[-1].name]
        return ranges.output_error(out, floats[ops[-1].name], "kl")

    assert kl(chosen) < 0.5 * kl(minmax), (kl(chosen), kl(minmax))
