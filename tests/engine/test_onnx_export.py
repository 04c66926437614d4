"""ONNX export: ONNX Runtime runs the exported model on exactly the integers qkit computes.

Every layer of the five converter models, the two small test models under every scheme, the
MNIST CNN and MobileNetV2 is compared element by element: ONNX Runtime's uint8 tensors equal
`IntegerModel.with_int32_bias` (qkit with ONNX's int32 bias, the one arithmetic difference).
The default qkit model (float bias, PyTorch's fbgemm rule) differs from it by at most one
step at any layer given the same input."""


import numpy as np
import pytest
import zoo

import qkit.reference as R
from qkit.engine import SCHEMES, IntegerModel
from qkit.engine.export import bias_rounding, compare_onnxruntime, int32_bias, run_onnxruntime

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def agreement(im, x, exact=True) -> tuple[dict, dict]:
    """Mismatched and total uint8 values per layer kind, ONNX Runtime vs qkit (int32 bias)."""
    counts = compare_onnxruntime(im, x, exact=exact)
    assert counts["output"][1] == len(x) * int(np.prod(im.shapes[im.output]))
    return ({k: b for k, (b, _) in counts.items()}, {k: t for k, (_, t) in counts.items()})


class Extras(torch.nn.Module):
    """The kinds the converter models lack: a ReLU that cannot be fused (after a pool), a
    windowed average pool, and an SE gate from linear layers, reshaped by view(n, c, 1, 1)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.pool, self.relu = torch.nn.AvgPool2d(2), torch.nn.ReLU()
        self.fc1, self.fc2 = torch.nn.Linear(8, 4), torch.nn.Linear(4, 8)

    def forward(self, x):
        y = self.relu(self.pool(self.conv(x)))
        g = torch.sigmoid(self.fc2(torch.relu(self.fc1(y.mean((2, 3))))))
        return y * g.view(g.size(0), 8, 1, 1)


def _inputs(seed=1, n=64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 2 - 1).numpy()


def _build(name):
    if name == "extras":
        torch.manual_seed(0)
        return Extras().eval()
    return zoo.build(name)


@pytest.fixture(scope="module", params=[*zoo.ZOO, "extras"])
def converted(request):
    x = _inputs()
    return request.param, IntegerModel.from_float(_build(request.param), x[:48],
                                                    "w8a8-per-channel"), x[48:]


def test_zoo_models_agree_with_onnxruntime_at_every_layer(converted):
    name, im, x = converted
    bad, total = agreement(im, x)
    print(name, {k: f"{bad[k]}/{total[k]}" for k in total})
    assert sum(bad.values()) == 0, (name, bad)
    # the zoo covers each kind the exporter writes
    assert {op.kind for op in im.ops} <= set(total)


def test_every_layer_kind_is_covered():
    kinds = set()
    x = _inputs(n=8)
    for name in [*zoo.ZOO, "extras"]:
        im = IntegerModel.from_float(_build(name), x, "w8a8-per-channel")
        kinds |= {op.kind for op in im.ops}
        windowed = [op for op in im.ops if op.kind == "avgpool" and not op.params.get("global")]
        kinds |= {"windowed avgpool"} if windowed else set()
    assert kinds >= {"input", "conv", "linear", "lut", "mul", "concat", "pad", "upsample",
                     "add", "maxpool", "avgpool", "windowed avgpool", "flatten", "unflatten",
                     "relu"}, kinds


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_small_models_agree_under_every_scheme(models, scheme):
    x = torch.rand(24, 3, 12, 12).numpy()
    for m in models:  # Flat has a linear layer after a flatten of 4x5x5 maps (CHW order)
        im = IntegerModel.from_float(m, x[:16], scheme)
        bad, _ = agreement(im, x[16:])
        assert sum(bad.values()) == 0, (scheme, bad)


def test_default_qkit_is_within_one_step_of_onnx_at_each_layer(converted):
    # same input to each conv/linear layer: float bias (qkit) vs int32 bias (ONNX); checked
    # here on the references, independently of export.bias_rounding (which uses the kernels)
    name, im, x = converted
    twin = im.with_int32_bias()
    vals = twin.run(twin.quantize_input(x[:4]), keep=True)
    rows = bias_rounding(im, x[:4])
    for op in im.ops:
        if op.kind not in ("conv", "linear"):
            continue
        a, b = (_layer(m, op, vals[op.inputs[0]]).astype(int) for m in (im, twin))
        assert np.abs(a - b).max() <= 1, (name, op.name)
        assert rows[op.name] == (int(np.abs(a - b).max()), int((a != b).sum()), a.size)
    print(name, "values one step apart:", {k: v[1] for k, v in rows.items()})


def _layer(im, op, x):
    L, p = im.layers[op.name], op.params
    args = (im.act[op.inputs[0]][1], L["mult"], im.act[op.name][1], L["qmin"], L["qmax"],
            L["bias_q"])
    if op.kind == "linear":
        return R.qlinear(x, L["w_q"], *args)
    return R.qconv2d(x, L["w_q"], *args, p["stride"], p["padding"], p["dilation"], p["groups"])


def test_fused_clamps_and_int4_weights_export(models):
    # a learned grid (QAT) that reaches below 0 and beyond 6 leaves ReLU6's clamp inside the
    # uint8 range: it is written as a Clip after the QLinearConv
    x = torch.rand(24, 3, 12, 12).numpy()
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU6(),
                            torch.nn.Conv2d(4, 4, 1)).eval()
    base = IntegerModel.from_float(m, x[:16], "w8a8-per-channel")
    conv = next(op.name for op in base.ops if op.kind == "conv")
    im = IntegerModel.from_learned(base.ops, base.output, x[:16], base.scheme,
                                   {conv: (0.04, 20)}, {})
    assert (im.layers[conv]["qmin"], im.layers[conv]["qmax"]) == (20, 170)
    assert "Clip" in {n.op_type for n in im.to_onnx().graph.node}
    assert sum(agreement(im, x[16:])[0].values()) == 0
    im4 = IntegerModel.from_float(models[0], x[:16], "w4a8-per-channel")
    assert sum(agreement(im4, x[16:])[0].values()) == 0


def test_saved_file_loads_and_matches(tmp_path, models):
    x = torch.rand(8, 3, 12, 12).numpy()
    im = IntegerModel.from_float(models[1], x, "w8a8-per-tensor")
    path = tmp_path / "flat.onnx"
    im.to_onnx(path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert {o.name for o in model.graph.output} == {"output"}
    out = run_onnxruntime(path, x)["output"]
    np.testing.assert_array_equal(out, im.with_int32_bias()(x))


def test_int32_bias_is_rounded_and_overflow_is_named():
    b = int32_bias({"bias_q": np.float32([0.5, 1.5, -2.5, 3.2])}, "fc")
    np.testing.assert_array_equal(b, [0, 2, -2, 3])
    with pytest.raises(ValueError, match="layer fc.*int32"):
        int32_bias({"bias_q": np.float32([3e9])}, "fc")


def test_uncalibrated_model_is_refused():
    im = IntegerModel([], "x", SCHEMES["w8a8-per-channel"])
    with pytest.raises(ValueError, match="calibrated IntegerModel"):
        im.to_onnx()


@pytest.mark.slow
def test_mnist_cnn_and_mobilenet_v2_agree_with_onnxruntime(mnist):
    from qkit.models import mobilenet_v2 as mv2

    x = mnist["x_test"][:256].numpy()
    im = IntegerModel.from_float(mnist["model"], x[:128], "w8a8-per-channel")
    bad, total = agreement(im, x[128:])
    print("mnist_cnn", {k: f"{bad[k]}/{total[k]}" for k in total})
    assert sum(bad.values()) == 0
    images = mv2.preprocess(mv2.photo_set(crops_per_photo=0)).numpy()
    im = IntegerModel.from_float(mv2.load(), images, "w8a8-per-channel")
    bad, total = agreement(im, images[:4])
    print("mobilenet_v2", {k: f"{bad[k]}/{total[k]}" for k in total})
    assert sum(bad.values()) == 0


def _has_vnni() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_vnni" in flags or " avx_vnni" in flags


def test_onnxruntime_default_settings_on_this_cpu(converted):
    # without session.x64quantprecision, x86 CPUs lacking VNNI add uint8 x int8 products in
    # saturating int16 pairs; with VNNI the default kernels are exact as well
    name, im, x = converted
    bad, total = agreement(im, x, exact=False)
    if not _has_vnni():
        pytest.skip(f"{name}: no VNNI here; ONNX Runtime's default kernels missed "
                    f"{sum(bad.values())} of {sum(total.values())} values")
    assert sum(bad.values()) == 0, (name, bad)


def test_mlp_on_features_exports():
    m = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4),
                            torch.nn.Hardswish()).eval()
    x = torch.randn(40, 20, generator=torch.Generator().manual_seed(0)).numpy()
    bad, total = agreement(IntegerModel.from_float(m, x[:32]), x[32:])
    assert sum(bad.values()) == 0 and set(total) == {"input", "linear", "lut", "output"}


def test_models_without_static_grids_say_what_exports(models):
    from qkit.engine.dynamic import DynamicModel, WeightOnlyModel
    from qkit.engine.formats import FORMAT_SCHEMES, FormatModel

    for made in (DynamicModel(models[0]), WeightOnlyModel(models[0]),
                 FormatModel(models[0], next(iter(FORMAT_SCHEMES.values())))):
        with pytest.raises(NotImplementedError, match="IntegerModel"):
            made.to_onnx()
