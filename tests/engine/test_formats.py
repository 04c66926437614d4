"""Format schemes (fake-quantized FP8 / MX / NVFP4): the rounding of weights and activations
is the formats' own, stored bytes count every scale, rotation leaves the float model
unchanged, and bad schemes are refused by name."""

import numpy as np
import pytest
import torch

from qkit.engine import formats as EF
from qkit.formats import blocks, floats


def test_round_weight_uses_blocks_along_the_reduction_axis(rng):
    w = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
    got = EF.round_weight(w, "mxfp4")
    want = blocks.round_to_block_format(w.reshape(6, -1), "mxfp4").reshape(w.shape)
    np.testing.assert_array_equal(got, want)
    # 72 inputs per output channel -> 3 blocks of 32 (zero padded): 6 * 96 codes of 4 bits and
    # 6 * 3 E8M0 scale bytes
    assert EF.weight_bytes(w, "mxfp4") == 6 * 96 // 2 + 18
    assert EF.weight_bytes(w, "nvfp4") == 6 * 80 // 2 + 6 * 5 + 4
    assert EF.weight_bytes(w, "fp8_e4m3") == w.size + 4 * 6


def test_fp8_weights_are_scaled_per_output_channel():
    w = np.array([[1.0, -0.5, 0.25], [300.0, 10.0, -1000.0]], np.float32)
    got = EF.round_weight(w, "fp8_e4m3")
    assert np.abs(got).max(axis=1).tolist() == [1.0, 1000.0]  # each row's max maps to 448
    s = np.float32(1000.0 / 448)
    np.testing.assert_array_equal(got[1], floats.round_to_format(w[1] / s, "fp8_e4m3") * s)
    x = np.array([[0.0, 2.0], [-4.0, 1e-3]], np.float32)
    a = EF.round_activation(x, "fp8_e5m2")  # one scale for the whole tensor
    assert a[1, 0] == -4.0 and a[0, 0] == 0.0


def test_activation_blocks_run_along_the_channel_axis(rng):
    x = rng.standard_normal((2, 64, 3, 3)).astype(np.float32)
    x[:, 5] *= 100  # an outlier channel only spoils the block it is in
    got = EF.round_activation(x, "mxfp4", axis=1)
    np.testing.assert_array_equal(got, blocks.round_to_block_format(x, "mxfp4", axis=1))
    err = np.abs(got - x).mean(axis=(0, 2, 3))
    assert err[32:].max() < err[:32].mean()


@pytest.mark.parametrize("kw,err", [({"weights": "fp5"}, "weights must be one of"),
                                    ({"weights": "mxfp4", "activations": "int3"},
                                     "activations must be one of"),
                                    ({"weights": "mxfp4", "rotate": 1}, "rotate must be")])
def test_bad_schemes_name_the_field(kw, err):
    with pytest.raises((ValueError, TypeError), match=err):
        EF.FormatScheme(**kw)


def test_format_model_refuses_a_non_scheme():
    from qkit.models import mnist_cnn

    with pytest.raises(TypeError, match="scheme must be a FormatScheme"):
        EF.FormatModel(mnist_cnn.MnistCNN().eval(), "mxfp4")


@pytest.fixture(scope="module")
def cnn():
    from qkit.lab.claims.shared import mnist

    model, _, x, y = mnist()
    with torch.no_grad():
        ref = model(torch.from_numpy(x[:200])).numpy()
    return model, x[:200], y[:200], ref


def test_rotation_alone_keeps_the_cnn_float_output(cnn):
    model, x, _, ref = cnn
    rotated = EF.FormatModel(model, EF.FormatScheme(None, None, rotate=True))
    assert rotated.rotations  # the convs with groups = 1 and the linear were rotated
    np.testing.assert_allclose(rotated(x), ref, atol=2e-4, rtol=1e-4)
    plain = EF.FormatModel(model, EF.FormatScheme(None))
    np.testing.assert_allclose(plain(x), ref, atol=2e-4, rtol=1e-4)  # BN folded, float
    assert plain.size_bytes() == sum(
        4 * (o.params["weight"].size + o.params["bias"].size) for o in plain.ops
        if o.kind in ("conv", "linear"))


def test_every_format_scheme_runs_the_cnn_and_counts_its_bytes(cnn):
    model, x, y, ref = cnn
    fp32 = EF.FormatModel(model, EF.FormatScheme(None)).size_bytes()
    acc = {}
    for name, s in EF.FORMAT_SCHEMES.items():
        m = EF.FormatModel(model, s)
        out = m(x)
        assert out.shape == ref.shape and np.isfinite(out).all()
        acc[name] = (out.argmax(1) == y).mean()
        bits = blocks.get_block_format(s.weights).bits_per_element if s.weights in \
            blocks.BLOCK_FORMATS else 8
        assert m.size_bytes() < fp32 * (bits + 1) / 32, name  # scales and padding included
        assert not np.array_equal(out, ref), name  # the rounding happened
    assert min(acc.values()) > 0.9


@pytest.mark.parametrize("fn", [EF.round_weight, EF.weight_bytes])
@pytest.mark.parametrize("bad,err,word", [
    (np.full((2, 32), np.nan, np.float32), ValueError, "NaN"),
    (np.zeros(32, np.float32), ValueError, "at least 2 axes"),
    (np.zeros((0, 32), np.float32), ValueError, "empty"),
])
def test_bad_weights_are_refused_by_name(fn, bad, err, word):
    with pytest.raises(err, match=word):
        fn(bad, "fp8_e4m3")


def test_bad_activations_and_formats_are_refused_by_name():
    with pytest.raises(ValueError, match="NaN"):
        EF.round_activation(np.array([1.0, np.inf], np.float32), "fp8_e4m3")
    with pytest.raises(ValueError, match="fmt must be one of"):
        EF.round_activation(np.ones(4, np.float32), "fp3")
    with pytest.raises(ValueError, match="fmt must be one of"):
        EF.round_weight(np.ones((2, 4), np.float32), "int4")
