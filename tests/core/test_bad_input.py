"""Bad input raises a clear error naming the argument, in both implementations."""

import numpy as np
import pytest

import qkit.kernels as K
import qkit.reference as R
from qkit import AccumulatorOverflowError, QParams, qparams_from_range, qparams_from_tensor
from qkit.core.fixedpoint import quantize_multiplier

pytestmark = pytest.mark.nojit

BOTH = pytest.mark.parametrize("impl", [R, K], ids=["reference", "kernels"])
QP = QParams(np.float32(0.1), 0, bits=8, signed=True)


@BOTH
@pytest.mark.parametrize("bad,match", [
    (np.array([1.0, np.nan], np.float32), "NaN or Inf"),
    (np.array([np.inf, 0.0]), "NaN or Inf"),
    (np.array([1e300]), "NaN or Inf"),  # overflows float32
    (np.zeros(0, np.float32), "empty"),
    (np.array(["a", "b"]), "real-valued"),
])
def test_quantize_rejects_bad_floats(impl, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        impl.quantize(bad, QP)


@pytest.mark.parametrize("bits", [0, 1, 17, 32, 2.5, True])
def test_bits_out_of_range(bits):
    with pytest.raises((ValueError, TypeError), match="bits"):
        qparams_from_range(-1.0, 1.0, bits=bits)


def test_qparams_validation():
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        QParams(0.0, 0)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        QParams(np.nan, 0)
    with pytest.raises(ValueError, match="zero_point .* outside"):
        QParams(0.1, 200, bits=8, signed=True)
    with pytest.raises(TypeError, match="zero_point must be integer"):
        QParams(0.1, 1.5)
    with pytest.raises(ValueError, match="lo must be <= hi"):
        qparams_from_range(1.0, -1.0)
    with pytest.raises(ValueError, match="axis 3 out of range"):
        qparams_from_tensor(np.ones((2, 2), np.float32), axis=3)


@BOTH
def test_qparams_shape_must_match_tensor(impl):
    qp = qparams_from_tensor(np.ones((4, 3), np.float32), axis=0)
    with pytest.raises(ValueError, match="need scale of shape"):
        impl.quantize(np.ones((5, 3), np.float32), qp)


@BOTH
def test_dequantize_checks_dtype_and_range(impl):
    with pytest.raises(TypeError, match="q must have dtype"):
        impl.dequantize(np.array([1.0]), QP)
    qp4 = QParams(0.1, 0, bits=4, signed=True)
    with pytest.raises(ValueError, match=r"outside the declared range \[-8, 7\]"):
        impl.dequantize(np.array([9], np.int8), qp4)


@BOTH
def test_rounding_mode_checks(impl):
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="rounding must be one of"):
        impl.quantize(x, QP, rounding="banker")
    with pytest.raises(ValueError, match="needs rng"):
        impl.quantize(x, QP, rounding="stochastic")


@BOTH
def test_gemm_operand_checks(impl):
    a, w = np.ones((2, 3), np.uint8), np.ones((4, 3), np.int8)
    with pytest.raises(TypeError, match="a must have dtype"):
        impl.gemm(a.astype(np.float32), w)
    with pytest.raises(TypeError, match="w must have dtype int8"):
        impl.gemm(a, w.astype(np.uint8))
    with pytest.raises(ValueError, match="K must match"):
        impl.gemm(a, np.ones((4, 5), np.int8))
    with pytest.raises(ValueError, match="must be 2-D"):
        impl.gemm(a[0], w)
    with pytest.raises(ValueError, match="empty"):
        impl.gemm(np.ones((0, 3), np.uint8), w)


@BOTH
def test_gemm_overflow_bound(impl):
    k = 2**31 // (255 * 128) + 1  # 65,794: one term too many for the worst case
    a = np.full((1, k), 255, np.uint8)
    w = np.full((1, k), -128, np.int8)
    with pytest.raises(AccumulatorOverflowError, match="split K into chunks of at most 65,793"):
        impl.gemm(a, w)
    # the bound uses the actual operand ranges: small values make the same K exact
    a_small = np.full((1, k), 3, np.uint8)
    assert int(impl.gemm(a_small, w)[0, 0]) == 3 * -128 * k
    assert isinstance(AccumulatorOverflowError("x"), ValueError)


@BOTH
def test_int4_and_codebook_checks(impl):
    a = np.ones((2, 5), np.uint8)
    with pytest.raises(ValueError, match=r"w_packed must be \(N, ceil\(K/2\)\)"):
        impl.gemm_int4(a, np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match=r"outside the declared range \[-8, 7\]"):
        impl.pack_int4(np.array([8], np.int8))
    with pytest.raises(ValueError, match="only 4 entries"):
        impl.gemm_codebook(a, np.full((3, 5), 4, np.uint8), np.arange(4, dtype=np.int8))
    with pytest.raises(TypeError, match="codebook must have dtype"):
        impl.gemm_codebook(a, np.zeros((3, 5), np.uint8), np.arange(4.0))


@BOTH
def test_requantize_checks(impl):
    acc = np.zeros((2, 3), np.int32)
    with pytest.raises(TypeError, match="acc must have dtype int32"):
        impl.requantize_float(acc.astype(np.int64), 0.1, 0, 0, 255)
    with pytest.raises(ValueError, match="zero_point 300 outside"):
        impl.requantize_float(acc, 0.1, 300, 0, 255)
    with pytest.raises(ValueError, match="multiplier must have 1"):
        impl.requantize_float(acc, [0.1, 0.2], 0, 0, 255)
    with pytest.raises(ValueError, match="multiplier must be finite and > 0"):
        impl.requantize_float(acc, -0.1, 0, 0, 255)
    with pytest.raises(ValueError, match="bias must have N=3"):
        impl.requantize_fixed(acc, *quantize_multiplier(0.1), 0, 0, 255, bias=np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="qmin <= qmax"):
        impl.requantize_fixed(acc, *quantize_multiplier(0.1), 0, 6, 5)


@BOTH
def test_conv2d_checks(impl):
    x, w = np.ones((1, 4, 4, 6), np.uint8), np.ones((4, 3, 3, 3), np.int8)
    with pytest.raises(ValueError, match="groups=4 must divide"):
        impl.conv2d(x, w, groups=4)
    with pytest.raises(ValueError, match=r"w must be \(O,KH,KW,C/groups\)"):
        impl.conv2d(x, w, groups=1)
    with pytest.raises(ValueError, match="does not fit"):
        impl.conv2d(x, np.ones((2, 5, 5, 6), np.int8))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        impl.conv2d(x, np.ones((2, 1, 1, 6), np.int8), stride=0)
    with pytest.raises(ValueError, match="pad_value must be an integer"):
        impl.conv2d(x, np.ones((2, 1, 1, 6), np.int8), pad_value=300)


ACC = np.array([[1000, -1000, 5]], np.int32)
M0, SHIFT = quantize_multiplier(0.01)

# (call on an implementation, error class, words the message must contain): each is a
# silent wrong answer or an obscure error that an outside sweep found, now refused by name
TWIN_CASES = [
    (lambda i: i.requantize_fixed(ACC, 0.01, 0, 0, 0, 255), TypeError, "multiplier must be"),
    (lambda i: i.requantize_fixed(ACC, -5, 0, 0, 0, 255), ValueError, "multiplier must lie"),
    (lambda i: i.requantize_fixed(ACC, 2**31, 0, 0, 0, 255), ValueError, "multiplier must lie"),
    (lambda i: i.requantize_fixed(ACC, M0, 40, 0, 0, 255), ValueError, "shift must lie"),
    (lambda i: i.requantize_fixed(ACC, M0, -100, 0, 0, 255), ValueError, "shift must lie"),
    (lambda i: i.requantize_fixed(ACC, [M0, M0], [SHIFT], 0, 0, 255), ValueError,
     "same number of values"),
    (lambda i: i.requantize_fixed(ACC, M0, SHIFT, 0, 0, 255, bias=np.array([0.5, 0, 0])),
     ValueError, "bias must be int32 integers"),
    (lambda i: i.requantize_fixed(ACC, M0, SHIFT, 0, 0, 255, bias=np.array([np.nan, 0, 0])),
     ValueError, "bias must be finite"),
    (lambda i: i.requantize_float(ACC, 0.01, 0, 0, 255, bias=np.array([1e40, 0, 0])),
     ValueError, "bias must be finite"),
    (lambda i: i.requantize_float(ACC, 0.01, 2.5, 0, 255), TypeError, "zero_point must be an"),
    (lambda i: i.requantize_fixed(ACC, M0, SHIFT, 3.7, 0, 255), TypeError,
     "zero_point must be an"),
    (lambda i: i.quantize(np.ones(3, np.float32), 0.1), TypeError, "qp must be a QParams"),
    (lambda i: i.dequantize(np.ones(3, np.int8), 0.1), TypeError, "qp must be a QParams"),
    (lambda i: i.pack_int4(np.int8(3)), ValueError, "at least one axis"),
    (lambda i: i.qlinear(np.ones((2, 3), np.uint8), np.ones((4, 3), np.int8), 0, 0.1, 2.5, 0,
                         255), TypeError, "out_zero_point must be an integer"),
]


@BOTH
@pytest.mark.parametrize("case", range(len(TWIN_CASES)))
def test_twins_refuse_alike(impl, case):
    call, error, words = TWIN_CASES[case]
    with pytest.raises(error, match=words) as raised:
        call(impl)
    # the other twin raises the same class with the same message
    other = K if impl is R else R
    with pytest.raises(error) as raised_other:
        call(other)
    assert str(raised_other.value) == str(raised.value)


def test_schemes_and_models_refuse_bad_settings():
    import torch

    from qkit.engine import IntegerModel, Scheme, trace

    for kwargs, words in ((dict(weight_bits=12), "weight_bits must be an integer from 2 to 8"),
                          (dict(weight_bits=1), "weight_bits"),
                          (dict(observer="max"), "observer must be one of"),
                          (dict(rounding="up"), "rounding must be one of"),
                          (dict(range_loss="l1"), "range_loss must be one of"),
                          (dict(layer_bits=(("c1", 9),)), "layer_bits\\['c1'\\]")):
        with pytest.raises(ValueError, match=words):
            Scheme(**kwargs)
    with pytest.raises(TypeError, match="positional"):
        Scheme(4, True, "minmax", True)  # the flags are keyword-only
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        trace("not a model")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.rand(4, 3, 8, 8)
    with pytest.raises(TypeError, match="scheme must be a Scheme"):
        IntegerModel.from_float(model, x, scheme=8)
    with pytest.raises(ValueError, match="not one of SCHEMES"):
        IntegerModel.from_float(model, x, scheme="w8a8-pc")
    im = IntegerModel.from_float(model, x, scheme="w8a8-per-channel")
    q = im.quantize_input(x)
    with pytest.raises(TypeError, match="x_q must be a uint8"):
        im.run(q.view(np.int8))
    with pytest.raises(ValueError, match="NHWC with C=3"):
        im.run(np.ascontiguousarray(q.transpose(0, 3, 1, 2)))  # NCHW by mistake
