"""A table of bad inputs to qkit's public API, one row per case: what to call, and the
argument its error must name (or, for inputs that are unusual but valid, a check of the result).

Classes of input: NaN/Inf, empty, constant, wrong dtype, wrong shape or rank, bit widths and
ranges out of bounds, wrong types (strings, floats where integers belong, booleans), int32
overflow, inconsistent quantization parameters, bad layer settings, unsupported models, bad
data. Used by tests/core/test_bad_input_table.py.
"""

from __future__ import annotations

import numpy as np

import qkit
from qkit import kernels, reference
from qkit.core.qparams import QParams

F = np.float32
NAN, INF = F("nan"), F("inf")
QP8 = QParams(np.float32(0.1), 0, bits=8, signed=False)
QPS = QParams(np.float32(0.1), 0, bits=8, signed=True)
A = np.arange(12, dtype=np.uint8).reshape(3, 4)
W = np.arange(-10, 10, dtype=np.int8)[:20].reshape(5, 4)
ACC = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
X4 = np.zeros((1, 5, 5, 3), np.uint8)  # NHWC
m0 = 1 << 30  # a valid fixed-point multiplier
W4 = np.ones((2, 3, 3, 3), np.int8)  # OHWI


def _x(*shape, value=0.5):
    return np.full(shape, value, F)


# (id, call, expected): expected is ("error", ExceptionClass, text the message must contain)
# or ("valid", check(result) -> bool)
CASES = []


def case(name, call, *expected):
    CASES.append((name, call, expected))


def _quantize_family(q, label):
    case(f"{label} NaN", lambda: q(np.array([1.0, NAN], F), QP8), "error", ValueError, "x")
    case(f"{label} +Inf", lambda: q(np.array([INF], F), QP8), "error", ValueError, "x")
    case(f"{label} -Inf", lambda: q(np.array([-INF], F), QP8), "error", ValueError, "x")
    case(f"{label} string", lambda: q("abc", QP8), "error", TypeError, "x")
    case(f"{label} complex", lambda: q(np.array([1j]), QP8), "error", TypeError, "x")
    case(f"{label} object array", lambda: q(np.array([None]), QP8), "error", TypeError, "x")
    case(f"{label} float scale instead of QParams", lambda: q(_x(3), 0.1), "error", TypeError,
         "qp")
    case(f"{label} None qparams", lambda: q(_x(3), None), "error", TypeError, "qp")
    case(f"{label} bad rounding", lambda: q(_x(3), QP8, "up"), "error", ValueError, "rounding")
    case(f"{label} empty", lambda: q(np.zeros(0, F), QP8), "error", ValueError, "x is empty")
    fake = label == "fake_quantize"  # returns the dequantized floats
    case(f"{label} constant", lambda: q(_x(5), QP8), "valid",
         lambda r, f=fake: np.allclose(r, 0.5 if f else 5))
    case(f"{label} 0-d", lambda: q(F(0.3), QP8), "valid",
         lambda r, f=fake: np.isclose(float(np.asarray(r)), 0.3 if f else 3))
    case(f"{label} huge values clip", lambda: q(np.array([1e30, -1e30], F), QP8), "valid",
         lambda r, f=fake: np.allclose(np.asarray(r, np.float64), [25.5, 0] if f else [255, 0]))
    case(f"{label} per-channel scale of the wrong size",
         lambda: q(_x(2, 3), QParams(np.full(5, 0.1, F), np.zeros(5, np.int32), bits=8,
                                     signed=True, axis=0)), "error", ValueError, "qp")


_quantize_family(kernels.quantize, "quantize")
_quantize_family(reference.quantize, "reference.quantize")
_quantize_family(kernels.fake_quantize, "fake_quantize")

for label, f in (("dequantize", kernels.dequantize), ("reference.dequantize",
                                                      reference.dequantize)):
    case(f"{label} float codes", lambda f=f: f(np.array([1.5], F), QP8), "error", TypeError, "q")
    case(f"{label} int32 codes", lambda f=f: f(np.array([3], np.int32), QP8), "error",
         TypeError, "q")
    case(f"{label} codes above the grid", lambda f=f: f(np.array([300], np.int16), QP8),
         "error", ValueError, "q")
    case(f"{label} negative codes on a uint8 grid", lambda f=f: f(np.array([-1], np.int8),
                                                                   QP8), "error", ValueError, "q")
    case(f"{label} string", lambda f=f: f("1", QP8), "error", TypeError, "q")
    case(f"{label} empty", lambda f=f: f(np.zeros(0, np.uint8), QP8), "error", ValueError,
         "q is empty")

# qparams
for label, f in (("qparams_from_tensor", qkit.qparams_from_tensor),):
    case(f"{label} NaN", lambda f=f: f(np.array([0, NAN], F)), "error", ValueError, "x")
    case(f"{label} Inf", lambda f=f: f(np.array([0, INF], F)), "error", ValueError, "x")
    case(f"{label} empty", lambda f=f: f(np.zeros(0, F)), "error", ValueError, "x is empty")
    case(f"{label} constant zero", lambda f=f: f(np.zeros(4, F)), "valid",
         lambda qp: float(qp.scale) > 0)
    case(f"{label} constant nonzero", lambda f=f: f(np.full(4, 2.0, F)), "valid",
         lambda qp: float(qp.scale) > 0)
    case(f"{label} range beyond float32", lambda f=f: f(np.array([-3e38, 3e38], F)), "error",
         ValueError, "x")
    for bits in (0, 1, 17, -3):
        case(f"{label} bits={bits}", lambda f=f, b=bits: f(_x(4), bits=b), "error", ValueError,
             "bits")
    case(f"{label} bits=8.0", lambda f=f: f(_x(4), bits=8.0), "error", TypeError, "bits")
    case(f"{label} bits='8'", lambda f=f: f(_x(4), bits="8"), "error", TypeError, "bits")
    case(f"{label} bits=True", lambda f=f: f(_x(4), bits=True), "error", TypeError, "bits")
    case(f"{label} axis out of range", lambda f=f: f(_x(2, 3), axis=2), "error", ValueError,
         "axis")
    case(f"{label} axis float", lambda f=f: f(_x(2, 3), axis=0.0), "error", TypeError, "axis")
    case(f"{label} group size not dividing", lambda f=f: f(_x(2, 6), axis=1, group_size=4),
         "error", ValueError, "group_size")
    case(f"{label} group size zero", lambda f=f: f(_x(2, 6), axis=1, group_size=0), "error",
         ValueError, "group_size")
    case(f"{label} group size without axis", lambda f=f: f(_x(2, 6), group_size=3), "error",
         ValueError, "group_size")
    case(f"{label} narrow range unsigned", lambda f=f: f(_x(4), signed=False, narrow_range=True),
         "valid", lambda qp: qp.qmin >= 0)
for lo, hi, what in ((NAN, 1.0, "lo"), (0.0, INF, "hi"), (2.0, 1.0, "lo"), ("a", 1.0, "lo"),
                     (None, 1.0, "lo")):
    case(f"qparams_from_range lo={lo} hi={hi}",
         lambda lo=lo, hi=hi: qkit.qparams_from_range(lo, hi), "error",
         (ValueError, TypeError), what)
case("qparams_from_range lo == hi", lambda: qkit.qparams_from_range(1.0, 1.0), "valid",
     lambda qp: float(qp.scale) > 0)
for bits in (0, 33):
    case(f"qrange bits={bits}", lambda b=bits: qkit.qrange(b, True), "error", ValueError, "bits")
case("QParams negative scale", lambda: QParams(np.float32(-0.1), 0, bits=8, signed=True),
     "error", ValueError, "scale")
case("QParams zero scale", lambda: QParams(np.float32(0.0), 0, bits=8, signed=True), "error",
     ValueError, "scale")
case("QParams NaN scale", lambda: QParams(NAN, 0, bits=8, signed=True), "error", ValueError,
     "scale")
case("QParams fractional zero point", lambda: QParams(np.float32(0.1), 1.5, bits=8,
                                                      signed=True), "error", TypeError,
     "zero_point")
case("QParams zero point off the grid", lambda: QParams(np.float32(0.1), 300, bits=8,
                                                        signed=False), "error", ValueError,
     "zero_point")

# gemm family
for label, g in (("gemm", kernels.gemm), ("reference.gemm", reference.gemm),
                 ("gemm_pairs16", kernels.gemm_pairs16)):
    case(f"{label} K mismatch", lambda g=g: g(A, W[:, :3]), "error", ValueError, "K")
    case(f"{label} float activations", lambda g=g: g(A.astype(F), W), "error", TypeError, "a")
    case(f"{label} int16 weights", lambda g=g: g(A, W.astype(np.int16)), "error", TypeError, "w")
    case(f"{label} 1-d activations", lambda g=g: g(A[0], W), "error", ValueError, "a")
    case(f"{label} 3-d weights", lambda g=g: g(A, W[None]), "error", ValueError, "w")
    case(f"{label} lists", lambda g=g: g([[1, 2]], [[1, 2]]), "error", TypeError, "a")
    case(f"{label} M=0", lambda g=g: g(A[:0], W), "error", ValueError, "a is empty")
    case(f"{label} N=0", lambda g=g: g(A, W[:0]), "error", ValueError, "w is empty")
    case(f"{label} K=0", lambda g=g: g(A[:, :0], W[:, :0]), "error", ValueError, "a is empty")
    case(f"{label} None", lambda g=g: g(None, W), "error", TypeError, "a")
case("gemm int32 overflow", lambda: kernels.gemm(np.full((1, 65_794), 255, np.uint8),
                                                  np.full((1, 65_794), -128, np.int8)),
     "error", qkit.AccumulatorOverflowError, "int32")
case("reference.gemm int32 overflow", lambda: reference.gemm(
    np.full((1, 65_794), 255, np.uint8), np.full((1, 65_794), -128, np.int8)),
    "error", qkit.AccumulatorOverflowError, "int32")
case("gemm int8 activations", lambda: kernels.gemm(A.astype(np.int8), W), "valid",
     lambda r: np.array_equal(r, reference.gemm(A.astype(np.int8), W)))
case("pack_weights float", lambda: kernels.pack_weights(W.astype(F)), "error", TypeError, "w")
case("pack_weights 1-d", lambda: kernels.pack_weights(W[0]), "error", ValueError, "w")
case("gemm_packed K mismatch", lambda: kernels.gemm_packed(A[:, :3], kernels.pack_weights(W)),
     "error", ValueError, "K")
case("gemm_packed not packed", lambda: kernels.gemm_packed(A, W), "error", TypeError, "packed")
case("pack_weights_int4 out of range", lambda: kernels.pack_weights_int4(W * 10), "error",
     ValueError, "w4")
case("pack_int4 out of range", lambda: kernels.pack_int4(np.array([9], np.int8)), "error",
     ValueError, "q")
case("pack_int4 0-d", lambda: kernels.pack_int4(np.int8(3)), "error", ValueError, "q")
case("pack_int4 float", lambda: kernels.pack_int4(np.array([1.0], F)), "error", TypeError, "q")
case("unpack_int4 length too long", lambda: kernels.unpack_int4(np.zeros(2, np.uint8), 9),
     "error", ValueError, "length")
case("unpack_int4 negative length", lambda: kernels.unpack_int4(np.zeros(2, np.uint8), -1),
     "error", ValueError, "length")
case("gemm_codebook index out of the codebook", lambda: kernels.gemm_codebook(
    A, np.full((5, 4), 20, np.uint8), np.zeros((5, 16), np.int16)), "error", ValueError, "idx")
case("gemm_codebook float codebook", lambda: kernels.gemm_codebook(
    A, np.zeros((5, 4), np.uint8), np.zeros((5, 16), F)), "error", TypeError, "codebook")

# requantization
for label, rq in (("requantize_fixed", kernels.requantize_fixed),
                  ("reference.requantize_fixed", reference.requantize_fixed)):
    case(f"{label} float M0", lambda rq=rq: rq(ACC, 0.01, 0, 0, 0, 255), "error", TypeError,
         "multiplier")
    case(f"{label} M0 below 2^30 (valid, just coarse)", lambda rq=rq: rq(ACC, 5, 0, 0, 0, 255),
         "valid", lambda r: np.array_equal(r, reference.requantize_fixed(ACC, 5, 0, 0, 0, 255)))
    case(f"{label} M0 = 2^31", lambda rq=rq: rq(ACC, 1 << 31, 0, 0, 0, 255), "error",
         ValueError, "multiplier")
    case(f"{label} negative M0", lambda rq=rq: rq(ACC, -m0, 0, 0, 0, 255), "error", ValueError,
         "multiplier")
    case(f"{label} shift 40", lambda rq=rq: rq(ACC, m0, 40, 0, 0, 255), "error", ValueError,
         "shift")
    case(f"{label} shift -100", lambda rq=rq: rq(ACC, m0, -100, 0, 0, 255), "error", ValueError,
         "shift")
    case(f"{label} float shift", lambda rq=rq: rq(ACC, m0, 0.5, 0, 0, 255), "error", TypeError,
         "shift")
    case(f"{label} float accumulator", lambda rq=rq: rq(ACC.astype(F), m0, 0, 0, 0, 255),
         "error", TypeError, "acc")
    case(f"{label} qmin > qmax", lambda rq=rq: rq(ACC, m0, 0, 0, 255, 0), "error", ValueError,
         "qmin")
    case(f"{label} zero point off the range", lambda rq=rq: rq(ACC, m0, 0, 300, 0, 255),
         "error", ValueError, "zero_point")
    case(f"{label} fractional zero point", lambda rq=rq: rq(ACC, m0, 0, 1.5, 0, 255), "error",
         (TypeError, ValueError), "zero_point")
    case(f"{label} float bias", lambda rq=rq: rq(ACC, m0, 0, 0, 0, 255, np.full(4, 0.5, F)),
         "error", (TypeError, ValueError), "bias")
    case(f"{label} NaN bias", lambda rq=rq: rq(ACC, m0, 0, 0, 0, 255, np.full(4, NAN, F)),
         "error", (TypeError, ValueError), "bias")
    case(f"{label} bias of the wrong length", lambda rq=rq: rq(ACC, m0, 0, 0, 0, 255,
                                                             np.zeros(3, np.int32)),
         "error", ValueError, "bias")
    case(f"{label} per-channel M0 of the wrong length",
         lambda rq=rq: rq(ACC, np.full(3, m0, np.int64), np.zeros(3, np.int64), 0, 0, 255),
         "error", ValueError, "multiplier")
for label, rq in (("requantize_float", kernels.requantize_float),
                  ("reference.requantize_float", reference.requantize_float)):
    case(f"{label} NaN multiplier", lambda rq=rq: rq(ACC, NAN, 0, 0, 255), "error", ValueError,
         "multiplier")
    case(f"{label} negative multiplier", lambda rq=rq: rq(ACC, -0.1, 0, 0, 255), "error",
         ValueError, "multiplier")
    case(f"{label} zero multiplier", lambda rq=rq: rq(ACC, 0.0, 0, 0, 255), "error", ValueError,
         "multiplier")
    case(f"{label} string multiplier", lambda rq=rq: rq(ACC, "0.1", 0, 0, 255), "error",
         TypeError, "multiplier")
    case(f"{label} float accumulator", lambda rq=rq: rq(ACC.astype(F), 0.1, 0, 0, 255), "error",
         TypeError, "acc")
    case(f"{label} Inf bias", lambda rq=rq: rq(ACC, 0.1, 0, 0, 255, np.full(4, INF, F)),
         "error", ValueError, "bias")
    case(f"{label} 1e40 bias", lambda rq=rq: rq(ACC, 0.1, 0, 0, 255, np.full(4, 1e40)), "error",
         ValueError, "bias")
    case(f"{label} multiplier of the wrong length", lambda rq=rq: rq(ACC, np.full(3, 0.1, F), 0,
                                                                     0, 255),
         "error", ValueError, "multiplier")
    case(f"{label} qmin > qmax", lambda rq=rq: rq(ACC, 0.1, 0, 255, 0), "error", ValueError,
         "qmin")
case("quantize_multiplier 0", lambda: qkit.quantize_multiplier(0.0), "valid",
     lambda r: tuple(map(int, r)) == (0, 0))
for m, what in ((-0.5, "m"), (NAN, "m"), (INF, "m"), ("0.3", "m"), (None, "m"),
                (np.array([0.5, -1.0]), "m")):
    case(f"quantize_multiplier {m!r}", lambda m=m: qkit.quantize_multiplier(m), "error",
         (ValueError, TypeError), what)
# below 2^-31 the multiplier cannot be represented with shift >= -31: (0, 0), as TFLite
case("quantize_multiplier below 2^-31", lambda: qkit.quantize_multiplier(1e-12), "valid",
     lambda r: tuple(map(int, r)) == (0, 0))

# convolution
for label, cv in (("conv2d", kernels.conv2d), ("reference.conv2d", reference.conv2d)):
    case(f"{label} NCHW input", lambda cv=cv: cv(np.zeros((1, 3, 5, 5), np.uint8), W4), "error",
         ValueError, "x")
    case(f"{label} 3-d input", lambda cv=cv: cv(X4[0], W4), "error", ValueError, "x")
    case(f"{label} float input", lambda cv=cv: cv(X4.astype(F), W4), "error", TypeError, "x")
    case(f"{label} float weights", lambda cv=cv: cv(X4, W4.astype(F)), "error", TypeError, "w")
    case(f"{label} channel mismatch", lambda cv=cv: cv(X4, W4[..., :2]), "error", ValueError,
         "w")
    case(f"{label} stride 0", lambda cv=cv: cv(X4, W4, stride=0), "error", ValueError, "stride")
    case(f"{label} stride 'a'", lambda cv=cv: cv(X4, W4, stride="a"), "error", TypeError,
         "stride")
    case(f"{label} stride 1.5", lambda cv=cv: cv(X4, W4, stride=1.5), "error", TypeError,
         "stride")
    case(f"{label} groups 1.0", lambda cv=cv: cv(X4, W4, groups=1.0), "error", TypeError,
         "groups")
    case(f"{label} negative padding", lambda cv=cv: cv(X4, W4, padding=-1), "error", ValueError,
         "padding")
    case(f"{label} dilation 0", lambda cv=cv: cv(X4, W4, dilation=0), "error", ValueError,
         "dilation")
    case(f"{label} groups not dividing", lambda cv=cv: cv(X4, W4, groups=2), "error", ValueError,
         "groups")
    case(f"{label} groups 0", lambda cv=cv: cv(X4, W4, groups=0), "error", ValueError, "groups")
    case(f"{label} kernel larger than the input", lambda cv=cv: cv(X4, np.ones((2, 7, 7, 3),
                                                                              np.int8)),
         "error", ValueError, "w")
    case(f"{label} pad value off uint8", lambda cv=cv: cv(X4, W4, padding=1, pad_value=300),
         "error", ValueError, "pad_value")
    case(f"{label} stride tuple of 3", lambda cv=cv: cv(X4, W4, stride=(1, 1, 1)), "error",
         ValueError, "stride")
    case(f"{label} empty batch", lambda cv=cv: cv(X4[:0], W4), "error", ValueError,
         "x is empty")
    case(f"{label} int32 overflow", lambda cv=cv: cv(np.full((1, 3, 3, 8200), 255, np.uint8),
                                                     np.full((1, 3, 3, 8200), -128, np.int8)),
         "error", qkit.AccumulatorOverflowError, "int32")
case("qconv2d NaN multiplier", lambda: kernels.qconv2d(X4, W4, 0, np.full(2, NAN, F), 0, 0,
                                                       255), "error", ValueError, "multiplier")
case("qconv2d zero point off uint8", lambda: kernels.qconv2d(X4, W4, 300, np.full(2, 0.1, F), 0,
                                                             0, 255), "error", ValueError,
     "x_zero_point")
case("qconv2d bias of the wrong length", lambda: kernels.qconv2d(
    X4, W4, 0, np.full(2, 0.1, F), 0, 0, 255, bias=np.zeros(5, F)), "error", ValueError, "bias")
case("qlinear weights of the wrong K", lambda: kernels.qlinear(
    A, W[:, :3], 0, np.full(5, 0.1, F), 0, 0, 255), "error", ValueError, "K")
case("qlinear NaN multiplier", lambda: kernels.qlinear(A, W, 0, np.full(5, NAN, F), 0, 0, 255),
     "error", ValueError, "multiplier")
for label, pool in (("maxpool2d", kernels.maxpool2d), ("avgpool2d", kernels.avgpool2d)):
    case(f"{label} kernel 0", lambda p=pool: p(X4, 0), "error", ValueError, "kernel")
    case(f"{label} kernel larger than the input", lambda p=pool: p(X4, 9), "error", ValueError,
         "kernel")
    case(f"{label} float input", lambda p=pool: p(X4.astype(F), 2), "error", TypeError, "x")
    case(f"{label} 3-d input", lambda p=pool: p(X4[0], 2), "error", ValueError, "x")
    case(f"{label} stride 0", lambda p=pool: p(X4, 2, 0), "error", ValueError, "stride")
case("relu zero point off uint8", lambda: kernels.relu(X4, 300), "error", ValueError,
     "zero_point")
case("relu float input", lambda: kernels.relu(X4.astype(F), 0), "error", TypeError, "x")
case("qadd shape mismatch", lambda: kernels.qadd(X4, 0, 0.5, X4[:, :2], 0, 0.5, 0, 0, 255),
     "error", ValueError, "b")
case("qadd NaN multiplier", lambda: kernels.qadd(X4, 0, NAN, X4, 0, 0.5, 0, 0, 255), "error",
     ValueError, "a_mult")
case("activation_range bad activation", lambda: qkit.activation_range("gelu", 0.1, 0, 0, 255),
     "error", ValueError, "activation")

# the engine: schemes, models, calibration data, inputs, PyTorch modules


def _engine():
    import torch

    from qkit.engine import IntegerModel

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.rand(4, 3, 8, 8)
    return model, x, IntegerModel.from_float(model, x, "w8a8-per-channel")


def _scheme(**kw):
    from qkit.engine import Scheme

    return Scheme(**kw)


for kw, arg in ((dict(weight_bits=12), "weight_bits"), (dict(weight_bits=1), "weight_bits"),
                (dict(weight_bits=4.0), "weight_bits"), (dict(weight_bits=True), "weight_bits"),
                (dict(observer="max"), "observer"), (dict(rounding="up"), "rounding"),
                (dict(range_loss="l1"), "range_loss"), (dict(per_channel="yes"), "per_channel"),
                (dict(layer_bits=(("c1", 9),)), "layer_bits")):
    case(f"Scheme {kw}", lambda kw=kw: _scheme(**kw), "error", (ValueError, TypeError), arg)
case("Scheme positional flags", lambda: __import__("qkit.engine", fromlist=["Scheme"]).Scheme(
    4, True), "error", TypeError, "positional")


def _from_float(model=None, calib=None, scheme="w8a8-per-channel"):

    from qkit.engine import IntegerModel

    m, x, _ = _engine()
    return IntegerModel.from_float(m if model is None else model,
                                   x if calib is None else calib, scheme)


case("from_float a string model", lambda: _from_float(model="resnet"), "error", TypeError,
     "model")
case("from_float unknown scheme name", lambda: _from_float(scheme="w8a8-pc"), "error",
     ValueError, "scheme")
case("from_float scheme as a number", lambda: _from_float(scheme=8), "error", TypeError,
     "scheme")
case("from_float calibration of the wrong channels", lambda: _from_float(
    calib=np.zeros((2, 5, 8, 8), F)), "error", ValueError, "calibration")
case("from_float empty calibration", lambda: _from_float(calib=np.zeros((0, 3, 8, 8), F)),
     "error", ValueError, "calibration")
case("from_float NaN calibration", lambda: _from_float(calib=np.full((2, 3, 8, 8), NAN, F)),
     "error", ValueError, "calibration")


def _unsupported():
    import torch

    class Odd(torch.nn.Module):
        def forward(self, x):
            return torch.fft.fft(x).real

    return Odd().eval()


case("from_float unsupported op", lambda: _from_float(model=_unsupported()), "error",
     __import__("qkit.engine", fromlist=["UnsupportedLayer"]).UnsupportedLayer, "fft")
case("run int8 input", lambda: _engine()[2].run(np.zeros((1, 8, 8, 3), np.int8)), "error",
     TypeError, "x_q")
case("run NCHW input", lambda: _engine()[2].run(np.zeros((1, 3, 8, 8), np.uint8)), "error",
     ValueError, "NHWC")
case("run float input", lambda: _engine()[2].run(np.zeros((1, 8, 8, 3), F)), "error",
     TypeError, "x_q")
case("call with NaN images", lambda: _engine()[2](np.full((1, 3, 8, 8), NAN, F)), "error",
     ValueError, "x")
case("call with the wrong channels", lambda: _engine()[2](np.zeros((1, 5, 8, 8), F)), "error",
     ValueError, "x")


def _dynamic_linear():
    import torch.ao.nn.quantized.dynamic as nnqd

    from qkit.engine import fbgemm

    return fbgemm.from_torch(nnqd.Linear(8, 4))


case("fbgemm.from_torch dynamic Linear", _dynamic_linear, "error", TypeError, "dynamic")
case("fbgemm.from_torch a float Linear", lambda: __import__(
    "qkit.engine.fbgemm", fromlist=["from_torch"]).from_torch(
    __import__("torch").nn.Linear(8, 4)), "error", TypeError, "module")
