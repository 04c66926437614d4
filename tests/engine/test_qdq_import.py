"""The other direction: models quantized by ONNX Runtime's own static quantizer (QDQ form) run
on qkit's kernels with ONNX Runtime's integers, layer by layer; what the reader cannot run is
refused by name."""

import logging
import warnings

import numpy as np
import pytest

from qkit.engine import IntegerModel, UnsupportedLayer
from qkit.engine.ortmath import fma32, qlinear_add, qlinear_global_avgpool
from qkit.engine.qdq import compare_qdq

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnxruntime import quantization as oq  # noqa: E402
from torch import nn  # noqa: E402


def ort_quantize(model, x, path, per_channel=True, quant_format=None, weight_type=None):
    """torch -> ONNX (the TorchScript exporter) -> ONNX Runtime's quantize_static, calibrated
    on ``x`` (min-max, its default)."""
    float_path = str(path) + ".float.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.from_numpy(x[:1]),), float_path, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": x[i:i + 8]} for i in range(0, len(x), 8)])

        def get_next(self):
            return next(self.batches, None)

    logging.disable(logging.WARNING)
    try:
        oq.quantize_static(float_path, str(path), Reader(),
                           quant_format=quant_format or oq.QuantFormat.QDQ,
                           per_channel=per_channel,
                           weight_type=weight_type or oq.QuantType.QInt8,
                           activation_type=oq.QuantType.QUInt8)
    finally:
        logging.disable(logging.NOTSET)
    return str(path)


class Mixed(nn.Module):
    """The node types the reader supports: conv (grouped, strided, padded) with ReLU / ReLU6,
    a residual add, standalone activations (tables), max pool, global pool, view and a linear
    layer."""

    def __init__(self, act):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6())
        self.pw = nn.Conv2d(8, 8, 1)
        self.act = act
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        y = self.stem(x)
        y = self.act(y + self.pw(self.dw(y)))
        y = nn.functional.adaptive_avg_pool2d(self.down(y), 1)
        return self.fc(y.view(y.size(0), -1))


def _inputs(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 16, 16, generator=g) * 2 - 1).numpy()


def _seeded(model, seed):
    torch.manual_seed(seed)
    for p in model.parameters():
        p.data.uniform_(-0.5, 0.5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


ACTS = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), "hardswish": nn.Hardswish(),
        "leaky_relu": nn.LeakyReLU(0.1), "tanh": nn.Tanh(), "gelu": nn.GELU()}


@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
@pytest.mark.parametrize("act", list(ACTS))
def test_random_models_run_with_onnxruntimes_integers(tmp_path, act, per_channel):
    seed = sorted(ACTS).index(act) + 10 * per_channel
    x = _inputs(seed=seed)
    path = ort_quantize(_seeded(Mixed(ACTS[act]), seed), x[:32], tmp_path / "m.onnx",
                        per_channel)
    im = IntegerModel.from_onnx(path)
    kinds = {op.kind for op in im.ops}
    assert {"conv", "ort_add", "ort_avgpool", "linear", "flatten", "maxpool"} <= kinds, kinds
    counts = compare_qdq(path, im, x[32:])
    assert sum(b for b, _ in counts.values()) == 0, counts
    # the float output too, and it follows the float model
    y = im(x[32:])
    with torch.no_grad():
        ref = _seeded(Mixed(ACTS[act]), seed)(torch.from_numpy(x[32:])).numpy()
    assert np.corrcoef(y.ravel(), ref.ravel())[0, 1] > 0.9


def test_view_flatten_before_linear_reads_chw_order(tmp_path, models):
    # Flat: conv -> BN -> relu -> x.view(n, -1) (Shape/Gather/Concat/Reshape) -> linear on
    # 4x5x5 maps: ONNX's CHW columns become the engine's HWC
    x = torch.rand(40, 3, 12, 12).numpy()
    path = ort_quantize(models[1], x[:32], tmp_path / "flat.onnx")
    im = IntegerModel.from_onnx(path)
    assert [op.kind for op in im.ops] == ["input", "conv", "flatten", "linear"]
    assert sum(b for b, _ in compare_qdq(path, im, x[32:]).values()) == 0


@pytest.mark.slow
def test_kit_models_quantized_by_onnxruntime(tmp_path, mnist):
    from qkit.models import mobilenet_v2 as mv2

    x = mnist["x_test"][:96].numpy()
    path = ort_quantize(mnist["model"], x[:64], tmp_path / "mnist.onnx")
    im = IntegerModel.from_onnx(path)
    counts = compare_qdq(path, im, x[64:])
    print("mnist_cnn", counts)
    assert sum(b for b, _ in counts.values()) == 0
    acc = (im(mnist["x_test"].numpy()).argmax(1) == mnist["y_test"]).mean()
    assert acc > 0.97
    images = mv2.preprocess(mv2.photo_set(crops_per_photo=0)).numpy()
    path = ort_quantize(mv2.load(), images, tmp_path / "mv2.onnx")
    im = IntegerModel.from_onnx(path)
    counts = compare_qdq(path, im, images[:4])
    print("mobilenet_v2", counts)
    assert sum(b for b, _ in counts.values()) == 0
    assert sum(op.kind == "ort_add" for op in im.ops) == 10


def test_imported_model_exports_again(tmp_path, models):
    # read from ONNX Runtime's quantizer, written back by qkit: the same integers again
    x = torch.rand(40, 3, 12, 12).numpy()
    im = IntegerModel.from_onnx(ort_quantize(models[0], x[:32], tmp_path / "small.onnx"))
    from qkit.engine.export import run_onnxruntime

    out = run_onnxruntime(im.to_onnx(), x[32:])["output"]
    np.testing.assert_array_equal(out, im(x[32:]).reshape(out.shape))


def test_refusals_name_the_node_and_the_fix(tmp_path, models):
    x = torch.rand(24, 3, 12, 12).numpy()
    qop = ort_quantize(models[0], x, tmp_path / "qop.onnx",
                       quant_format=oq.QuantFormat.QOperator)
    with pytest.raises(UnsupportedLayer, match="QLinearConv.*QDQ"):
        IntegerModel.from_onnx(qop)
    u8 = ort_quantize(models[0], x, tmp_path / "u8.onnx", weight_type=oq.QuantType.QUInt8)
    with pytest.raises(UnsupportedLayer, match="uint8.*QInt8|QInt8"):
        IntegerModel.from_onnx(u8)
    soft = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Softmax(dim=1)).eval()
    with pytest.raises(UnsupportedLayer, match="Softmax"):
        IntegerModel.from_onnx(ort_quantize(soft, x, tmp_path / "soft.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable ONNX file"):
        IntegerModel.from_onnx(bad)
    with pytest.raises(ValueError, match="not a readable ONNX file"):
        IntegerModel.from_onnx(tmp_path / "missing.onnx")


def test_fma32_is_one_rounding():
    rng = np.random.default_rng(0)
    a = rng.integers(-255, 256, 20000).astype(np.float32)
    b = (10 ** rng.uniform(-4, 1, 20000)).astype(np.float32)
    c = rng.uniform(-300, 300, 20000).astype(np.float32)
    from fractions import Fraction

    got = fma32(a, b, c)
    for i in range(0, 20000, 97):  # exact rational arithmetic, rounded once to float32
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        lo = np.float32(float(exact))
        cands = [lo, np.nextafter(lo, np.float32(np.inf)), np.nextafter(lo, np.float32(-np.inf))]
        best = min(cands, key=lambda v: (abs(Fraction(float(v)) - exact),
                                         int(np.float32(v).view(np.int32)) & 1))
        assert got[i] == best, i
    # where rounding to float64 and then to float32 is wrong: a * b + c =
    # 1 + 2^-23 + 2^-24 - 2^-60 rounds to 1 + 2^-23, but float64 makes it the tie
    # 1 + 2^-23 + 2^-24, which goes to the even 1 + 2^-22
    a, b = np.float32(2 ** -24 * (1 + 2 ** -18)), np.float32(1 - 2 ** -18)
    c = np.float32(1 + 2 ** -23)
    assert np.float32(float(a) * float(b) + float(c)) == np.float32(1 + 2 ** -22)
    assert fma32(a, b, c) == np.float32(1 + 2 ** -23)


def test_ort_arithmetic_kernels_keep_shapes_and_saturate():
    a = np.full((1, 2, 2, 3), 255, np.uint8)
    assert qlinear_add(a, 0, 1.0, a, 0, 1.0, 1.0, 0).max() == 255  # saturates, no wrap
    assert qlinear_add(a, 0, 1.0, a, 0, 1.0, 1.0, 0).shape == a.shape
    assert qlinear_global_avgpool(a, 0, 1.0, 1.0, 0).shape == (1, 1, 1, 3)


def _single(node_type, inputs, consts, out_shape, **attrs):
    from onnx import TensorProto as T
    from onnx import helper as h

    ins = [h.make_tensor_value_info(n, T.UINT8, list(v.shape)) for n, v in inputs.items()]
    inits = [onnx.numpy_helper.from_array(np.asarray(v, d), n) for n, (v, d) in consts.items()]
    node = h.make_node(node_type, attrs.pop("order"), ["y"], domain="com.microsoft", **attrs)
    g = h.make_graph([node], "g", ins, [h.make_tensor_value_info("y", T.UINT8, None)], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 21), h.make_opsetid("com.microsoft", 1)],
                     ir_version=10)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)[0]


def test_qlinear_add_is_onnxruntimes_on_random_grids():
    rng = np.random.default_rng(0)
    f32 = np.float32
    fused = unfused = total = 0
    for _ in range(300):
        a, b = (rng.integers(0, 256, (2, 7, 5, 13)).astype(np.uint8) for _ in range(2))
        sa, sb, sy = (f32(10 ** rng.uniform(-3, 0)) for _ in range(3))
        za, zb, zy = (int(rng.integers(0, 256)) for _ in range(3))
        y = _single("QLinearAdd", {"a": a, "b": b},
                    {"sa": (sa, f32), "za": (za, np.uint8), "sb": (sb, f32),
                     "zb": (zb, np.uint8), "sy": (sy, f32), "zy": (zy, np.uint8)}, a.shape,
                    order=["a", "sa", "za", "b", "sb", "zb", "sy", "zy"])
        fused += int((qlinear_add(a, za, sa, b, zb, sb, sy, zy) != y).sum())
        ra, rb = f32(sa / sy), f32(sb / sy)
        fixed = f32(f32(zy) - f32(f32(ra * f32(za)) + f32(rb * f32(zb))))
        plain = f32(f32(a.astype(f32) * ra) + f32(f32(b.astype(f32) * rb) + fixed))
        unfused += int((np.clip(np.rint(plain), 0, 255).astype(np.uint8) != y).sum())
        total += y.size
    print(f"QLinearAdd: fused model {fused}, separate multiply-add {unfused} of {total}")
    assert fused == 0 and unfused > 0


def test_qlinear_global_avgpool_is_onnxruntimes_on_random_grids():
    rng = np.random.default_rng(1)
    f32 = np.float32
    bad = total = 0
    for _ in range(200):
        c, hh, ww = (int(v) for v in rng.integers(1, [40, 15, 15]))
        x = rng.integers(0, 256, (2, c, hh, ww)).astype(np.uint8)
        sx, sy = f32(10 ** rng.uniform(-3, 0)), f32(10 ** rng.uniform(-3, 0))
        if not 2 ** -32 <= sx / (sy * hh * ww) < 256:  # ONNX Runtime refuses these
            continue
        zx, zy = int(rng.integers(0, 256)), int(rng.integers(0, 256))
        y = _single("QLinearGlobalAveragePool", {"x": x},
                    {"sx": (sx, f32), "zx": (zx, np.uint8), "sy": (sy, f32),
                     "zy": (zy, np.uint8)}, None, order=["x", "sx", "zx", "sy", "zy"],
                    channels_last=0)
        ours = qlinear_global_avgpool(x.transpose(0, 2, 3, 1), zx, sx, sy, zy)
        bad += int((ours.transpose(0, 3, 1, 2) != y.reshape(2, c, 1, 1)).sum())
        total += y.size
    assert bad == 0 and total > 1000
