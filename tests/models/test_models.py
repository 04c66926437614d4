"""The kit's models: the MNIST CNN (seeded training, integer accuracy), MobileNetV2 and
MiniLM load, trace and stay close to fp32."""

import numpy as np
import pytest

from qkit import data
from qkit.engine import SCHEMES, IntegerModel, trace

torch = pytest.importorskip("torch")


def test_mnist_cnn_integer_accuracy():
    from qkit.models import mnist_cnn

    model = mnist_cnn.load()
    split = data.mnist5k()
    calib = mnist_cnn.to_input(split["x_train"][:256])
    x, y = mnist_cnn.to_input(split["x_test"]), split["y_test"]
    fp32 = mnist_cnn.accuracy(model, split["x_test"], y)
    assert fp32 > 0.98
    w8 = IntegerModel.from_float(model, calib, SCHEMES["w8a8-per-channel"])
    w4 = IntegerModel.from_float(model, calib, SCHEMES["w4a8-per-channel"])
    assert float((w8(x).argmax(1) == y).mean()) >= fp32 - 0.005
    assert float((w4(x).argmax(1) == y).mean()) >= fp32 - 0.02
    fp32_bytes = sum(p.numel() * 4 for p in model.parameters())
    assert 0.25 <= w8.size_bytes() / fp32_bytes < 0.27
    assert 0.125 <= w4.size_bytes() / fp32_bytes < 0.14


def test_training_is_seeded():
    from qkit.models import mnist_cnn

    a = mnist_cnn.train(epochs=1, progress=False, limit=128)
    b = mnist_cnn.train(epochs=1, progress=False, limit=128)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka


def test_missing_weights_say_how_to_restore(tmp_path, monkeypatch):
    from qkit.models import mnist_cnn

    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(data.DataError, match="python -m qkit train mnist-cnn"):
        mnist_cnn.load()


def test_mobilenet_v2_loads_traces_and_agrees():
    from qkit.models import mobilenet_v2 as mv2

    model = mv2.load()
    assert sum(p.numel() for p in model.parameters()) == 3_504_872
    images = mv2.photo_set(crops_per_photo=0)  # 12 centre crops
    assert images.shape == (12, 224, 224, 3)
    x = mv2.preprocess(images)
    with torch.no_grad():
        ref = model(x).numpy()
    assert ref.shape == (12, 1000) and np.unique(ref.argmax(1)).size > 6
    ops, _ = trace(model)
    assert sum(op.kind == "add" for op in ops) == 10  # the residual connections
    assert sum(op.kind == "conv" and op.params["groups"] > 1 for op in ops) == 17  # depthwise
    im = IntegerModel.from_float(model, x, SCHEMES["w8a8-per-channel"])
    agree = mv2.agreement(ref, im(x))
    assert agree["top1_agreement"] >= 0.75 and agree["logit_sqnr_db"] > 10


def test_minilm_dynamic_and_weight_only_stay_close_to_fp32():
    from qkit.models import minilm

    model = minilm.load()
    texts = data.bbc_news()["x_test"][:6] + ["Quantization maps floats onto integers."]
    ref = minilm.embed(model, texts, max_len=48)
    np.testing.assert_allclose(np.linalg.norm(ref, axis=1), 1.0, rtol=1e-5)
    dyn = minilm.embed(minilm.quantize_linears(model, "dynamic"), texts, max_len=48)
    w8 = minilm.embed(minilm.quantize_linears(model, "weight-only", 8), texts, max_len=48)
    assert (dyn * ref).sum(1).min() > 0.98 and (w8 * ref).sum(1).min() > 0.999
    assert minilm.linear_bytes(minilm.quantize_linears(model, "dynamic")) < 0.26 * \
        minilm.linear_bytes(model)
    with pytest.raises(ValueError, match="mode must be"):
        minilm.quantize_linears(model, "static")
