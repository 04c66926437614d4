"""The converter on the layers students bring: the five models of `zoo` (MobileNetV3, EfficientNet,
Inception, U-Net and functional styles) convert, keep their float function when traced, stay
close to the float model in W8A8, give the same integers on kernels and references at every
layer, and each new integer layer equals a direct computation from its grids."""

import numpy as np
import pytest
import zoo

import qkit.reference as R
from qkit.engine import IntegerModel, UnsupportedLayer, run_float, trace
from qkit.engine.elementwise import lut_table

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

# measured output SQNR (dB) with seed 0 on 16 held-out inputs: 43.6 / 47.1 / 44.9 / 47.2 / 35.8
FLOORS = {"mobilenet_v3": 35, "efficientnet": 35, "inception": 35, "unet": 35,
          "functional": 30}


def _inputs(seed=1, n=64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


@pytest.fixture(scope="module", params=list(zoo.ZOO))
def converted(request):
    model = zoo.build(request.param)
    x = _inputs()
    im = IntegerModel.from_float(model, x[:48].numpy(), "w8a8-per-channel")
    return request.param, model, im, x


def test_trace_keeps_the_float_function(converted):
    name, model, im, x = converted
    with torch.no_grad():
        np.testing.assert_allclose(run_float(im.ops, x).numpy(), model(x).numpy(), atol=2e-5)


def test_w8a8_stays_close_to_the_float_model(converted):
    name, model, im, x = converted
    with torch.no_grad():
        ref = model(x[48:]).numpy()
    y = im(x[48:].numpy())
    assert y.shape == ref.shape
    sqnr = 10 * np.log10((ref ** 2).sum() / ((ref - y) ** 2).sum())
    assert sqnr >= FLOORS[name], (name, sqnr)


def test_kernels_and_references_agree_at_every_layer(converted):
    name, model, im, x = converted
    xq = im.quantize_input(x[48:52].numpy())
    fast, slow = im.run(xq, keep=True), im.run(xq, backend=R, keep=True)
    assert fast.keys() == slow.keys()
    for k in fast:
        np.testing.assert_array_equal(fast[k], slow[k], err_msg=f"{name}: {k}")


def test_each_new_layer_equals_its_direct_computation(converted):
    """lut: quantize(f(dequantize(x))); mul: the float rule on the int product; concat:
    each input requantized to the output grid; pad: the zero point around the map."""
    name, model, im, x = converted
    vals = im.run(im.quantize_input(x[48:52].numpy()), keep=True)
    seen = set()
    for op in im.ops:
        if op.kind not in ("lut", "mul", "concat", "pad", "upsample"):
            continue
        seen.add(op.kind)
        (sy, zy), ins = im.act[op.name], [vals[i] for i in op.inputs]
        grids = [im.act[i] for i in op.inputs]
        if op.kind == "lut":
            deq = (ins[0].astype(np.float32) - grids[0][1]) * np.float32(grids[0][0])
            from qkit.engine import functions
            f = functions.apply(op.params, torch.from_numpy(deq)).numpy()
            direct = np.clip(np.rint(f.astype(np.float32) / np.float32(sy)) + zy, 0, 255)
            np.testing.assert_array_equal(vals[op.name], direct.astype(np.uint8))
        elif op.kind == "mul":
            prod = (ins[0].astype(np.int64) - grids[0][1]) * (ins[1].astype(np.int64) -
                                                                grids[1][1])
            m = np.float32(np.float32(grids[0][0]) * np.float32(grids[1][0]) / np.float32(sy))
            direct = np.clip(np.rint(prod.astype(np.float32) * m) + zy, 0, 255)
            np.testing.assert_array_equal(vals[op.name], direct.astype(np.uint8))
        elif op.kind == "concat":
            parts = [R.quantize(R.dequantize(v, _grid(g)), _grid((sy, zy))) for v, g in
                     zip(ins, grids, strict=True)]
            np.testing.assert_array_equal(vals[op.name], np.concatenate(parts, axis=3))
        elif op.kind == "pad":
            top, _, left, _ = op.params["pad"]
            out = vals[op.name]
            h, w = ins[0].shape[1:3]
            assert (out[:, top:top + h, left:left + w] == ins[0]).all()
            assert (out == grids[0][1]).sum() >= out.size - ins[0].size
    expected = {"mobilenet_v3": {"lut", "mul"}, "efficientnet": {"lut", "mul", "pad"},
                "inception": {"concat"}, "unet": {"concat", "upsample", "lut"},
                "functional": {"lut", "mul", "pad"}}[name]
    assert expected <= seen, (name, seen)


def _grid(g):
    from qkit.core.qparams import QParams
    return QParams(np.float32(g[0]), int(g[1]), bits=8, signed=False)


def test_lut_table_is_the_function_on_the_grid():
    table = lut_table({"fn": "sigmoid"}, (0.05, 128), (1 / 255, 0))
    x = (np.arange(256) - 128) * np.float32(0.05)
    assert np.abs(table - 255 / (1 + np.exp(-x))).max() <= 0.5 + 1e-3
    assert (np.diff(table.astype(int)) >= 0).all()  # sigmoid is monotone, so is its table
    inf = lut_table({"fn": "scalar", "op": "rdiv", "value": 1.0}, (0.1, 10), (0.1, 0))
    assert inf[10] == 255  # 1 / 0 saturates


def test_symmetric_zero_pad_folds_into_the_conv_and_asymmetric_stays():
    m = nn.Sequential(nn.ZeroPad2d(2), nn.Conv2d(3, 4, 5), nn.ZeroPad2d((0, 1, 0, 1)),
                      nn.Conv2d(4, 4, 3, 2)).eval()
    ops, _ = trace(m)
    assert [o.kind for o in ops] == ["input", "conv", "pad", "conv"]
    assert ops[1].params["padding"] == (2, 2) and ops[2].params["pad"] == (0, 1, 0, 1)
    x = _inputs(n=8)
    with torch.no_grad():
        np.testing.assert_allclose(run_float(ops, x).numpy(), m(x).numpy(), atol=1e-5)


def test_constant_pad_with_a_value_uses_its_grid_point():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConstantPad2d(1, 0.5), nn.Conv2d(4, 2, 3)).eval()
    x = _inputs(n=16)
    im = IntegerModel.from_float(m, x.numpy())
    pad = next(o for o in im.ops if o.kind == "pad")
    s, z = im.act[pad.name]
    assert im.layers[pad.name]["value"] == int(np.clip(np.rint(0.5 / s) + z, 0, 255))


@pytest.mark.parametrize("make,match", [
    (lambda: _Fn(lambda s, x: F.conv2d(x, s.w * 2)), "uses the model.s tensor .w. directly"),
    (lambda: _Fn(lambda s, x: x - x.flip(1)), "'flip'"),
    (lambda: _Fn(lambda s, x: x - x * 2), "sub of two tensors"),
    (lambda: _Fn(lambda s, x: x * s.w.sum()), "'sum'"),
    (lambda: _Fn(lambda s, x: F.interpolate(x, size=(7, 7))), "to a size"),
    (lambda: _Fn(lambda s, x: F.interpolate(x, scale_factor=1.5)), "integer scale"),
    (lambda: _Fn(lambda s, x: F.pad(x, (1, 1, 1, 1), mode="reflect")), "mode='constant'"),
    (lambda: _Fn(lambda s, x: x.mean(1)), "spatial mean"),
    (lambda: _Fn(lambda s, x: x + float("nan")), "finite Python number"),
    (lambda: nn.Sequential(nn.Conv2d(3, 3, 3, padding_mode="reflect")), "padding_mode"),
    (lambda: _WeightStd(3, 4, 3), "uses the model.s tensor .weight."),
])
def test_refusals_name_the_call_and_what_to_do(make, match):
    with pytest.raises(UnsupportedLayer, match=match):
        trace(make().eval())


class _Fn(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f, self.w = f, nn.Parameter(torch.ones(3, 3, 1, 1))

    def forward(self, x):
        return self.f(self, x)


class _WeightStd(nn.Conv2d):
    """A Conv2d subclass that overrides forward (weight standardization): traced into."""

    def forward(self, x):
        w = (self.weight - self.weight.mean()) / (self.weight.std() + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


def test_conv_subclass_keeping_forward_is_a_conv():
    ops, _ = trace(nn.Sequential(zoo.StdConv(3, 4, 3)).eval())
    assert [o.kind for o in ops] == ["input", "conv"]
