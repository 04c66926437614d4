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
