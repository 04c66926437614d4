"""The integer engine: kernels and references agree at every layer, bound convs, bias
correction, mixed precision, dynamic and weight-only models."""


import numpy as np
import pytest
import torch
from torch import nn

import qkit.reference as R
from qkit.core.metrics import sqnr_db
from qkit.engine import SCHEMES, IntegerModel, Scheme


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_kernels_and_reference_agree_at_every_layer(models, scheme):
    x = torch.rand(16, 3, 12, 12)
    for m in models:
        im = IntegerModel.from_float(m, x, SCHEMES[scheme])
        xq = im.quantize_input(x)
        fast, slow = im.run(xq, keep=True), im.run(xq, backend=R, keep=True)
        assert fast.keys() == slow.keys()
        for name in fast:
            np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)
            assert fast[name].dtype == np.uint8
        with torch.no_grad():
            ref = m(x).numpy()
        assert sqnr_db(ref, im(x)) > (25 if "w8" in scheme else 10)


def test_bound_convs_serve_later_batches_exactly(models):
    # the fast backend binds each conv to an input shape on first use (BoundQConv in
    # qkit.kernels.qconv):
    # later batches of that shape, other shapes, and a changed output grid all stay exact
    x = torch.rand(16, 3, 12, 12)
    im = IntegerModel.from_float(models[0], x, SCHEMES["w8a8-per-channel"])
    for batch in (x[:5], torch.rand(5, 3, 12, 12), x[:3], torch.rand(3, 3, 12, 12)):
        xq = im.quantize_input(batch)
        np.testing.assert_array_equal(im.run(xq), im.run(xq, backend=R))
    convs = [op.name for op in im.ops if op.kind == "conv"]
    assert convs and all(len(im.layers[n]["bound"]) == 2 for n in convs)  # two shapes
    name = convs[0]
    scale, zp = im.act[name]
    im.act[name] = (scale, zp + 3)  # the next call's key differs: bound again, still exact
    xq = im.quantize_input(x[:5])
    np.testing.assert_array_equal(im.run(xq), im.run(xq, backend=R))
    assert len(im.layers[name]["bound"]) == 3


def test_bias_correction_removes_the_mean_output_shift():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 8)).eval()
    x = torch.rand(512, 64) + 2.0  # inputs with a large mean make weight rounding shift outputs
    with torch.no_grad():
        ref = model(x).numpy()
    plain = IntegerModel.from_float(model, x, SCHEMES["w4a8-per-channel"])
    corrected = IntegerModel.from_float(model, x, SCHEMES["w4a8-per-channel-bc"])
    shift_plain = np.abs((plain(x) - ref).mean(axis=0)).mean()
    shift_corrected = np.abs((corrected(x) - ref).mean(axis=0)).mean()
    assert shift_corrected < 0.3 * shift_plain


def test_mixed_precision_per_layer_bits(models):

    x = torch.rand(8, 3, 12, 12)
    model = models[0]
    w8 = IntegerModel.from_float(model, x, Scheme(8))
    mixed = IntegerModel.from_float(model, x, Scheme(8, layer_bits=(("c1", 4),)))
    assert mixed.layers["c1"]["bits"] == 4 and mixed.layers["c3"]["bits"] == 8
    assert np.abs(mixed.layers["c1"]["w_q"]).max() <= 7
    assert mixed.size_bytes() < w8.size_bytes()


def test_dynamic_and_weight_only_cnn(mnist):
    from qkit.core.metrics import sqnr_db
    from qkit.engine.dynamic import DynamicModel, WeightOnlyModel, quantize_dynamic
    from qkit.engine.floatrun import run_float

    x = mnist["x_test"][:200].numpy()
    model = mnist["model"]
    ops, _ = __import__("qkit.engine", fromlist=["trace"]).trace(model)
    ref = run_float(ops, x).numpy()
    dyn = DynamicModel(model)
    assert sqnr_db(ref, dyn(x)) > 25
    assert (dyn(x).argmax(1) == ref.argmax(1)).mean() > 0.99
    w8, w4 = WeightOnlyModel(model, 8), WeightOnlyModel(model, 4)
    assert sqnr_db(ref, w8(x)) > sqnr_db(ref, w4(x)) + 15
    n_w = sum(op.params["weight"].size for op in ops if op.kind in ("conv", "linear"))
    assert dyn.size_bytes() == w8.size_bytes() and w8.size_bytes() < 0.26 * 4 * n_w
    assert w4.size_bytes() < 0.14 * 4 * n_w
    # the run-time grid always holds 0 and the tensor's extremes
    q, s, z = quantize_dynamic(np.array([[-1.0, 0.0, 3.0]], np.float32))
    assert q[0, 1] == z and q[0, 0] == 0 and q[0, 2] == 255
