"""The layer kernels (lookup tables, quantized products, padding, upsampling) against their
NumPy references, exactly, on random and edge inputs; and bad input refused by name."""

import numpy as np
import pytest
from kernel_cases import S8, U8, assert_same, ints

import qkit.kernels as K
import qkit.reference as R

pytestmark = pytest.mark.nojit


@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3, 5, 4), (3, 1, 1, 9)])
@pytest.mark.parametrize("dt", [U8, S8])
def test_lut_random_and_every_index(rng, shape, dt):
    table = ints(rng, 256, U8)
    x = ints(rng, shape, dt)
    assert_same(K.lut(x, table), R.lut(x, table))
    every = np.arange(256).astype(U8) if dt == U8 else np.arange(-128, 128).astype(S8)
    assert_same(K.lut(every, table), table)  # each input value reads its own entry, in order


SHAPES = [((2, 4, 5, 3), (2, 1, 1, 3)), ((2, 4, 5, 3), (2, 4, 5, 3)), ((4, 6), (1, 6)),
          ((3,), ()), ((1, 1, 1, 1), (2, 3, 4, 5))]


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_qmul_broadcast_random_and_extremes(rng, sa, sb):
    a, b = ints(rng, sa, U8), ints(rng, sb, U8)
    for za, zb, m, zp in [(0, 0, 1e-4, 0), (255, 0, 3e-3, 128), (17, 200, 0.8, 255),
                          (128, 128, 1.0 / 255, 3)]:
        out = K.qmul(a, za, b, zb, m, zp, 0, 255)
        assert_same(out, R.qmul(a, za, b, zb, m, zp, 0, 255))
    direct = np.clip(np.rint(((a.astype(np.int64) - 3) * (b.astype(np.int64) - 9))
                             .astype(np.float32) * np.float32(0.01)) + 7, 0, 255)
    assert_same(K.qmul(a, 3, b, 9, 0.01, 7, 0, 255), direct.astype(U8))


def test_qmul_rounds_ties_to_even():
    a = np.array([1, 3, 5, 7], U8)
    assert K.qmul(a, 0, np.array([1], U8), 0, 0.5, 0, 0, 255).tolist() == [0, 2, 2, 4]


@pytest.mark.parametrize("pad", [(0, 0, 0, 0), (0, 1, 0, 1), (1, 2, 1, 2), (3, 0, 0, 4)])
def test_pad2d(rng, pad):
    x = ints(rng, (2, 3, 4, 5), U8)
    out = K.pad2d(x, pad, 77)
    assert_same(out, R.pad2d(x, pad, 77))
    t, b, left, r = pad
    assert (out[:, t:t + 3, left:left + 4] == x).all()
    assert out.shape == (2, 3 + t + b, 4 + left + r, 5)


@pytest.mark.parametrize("scale", [1, 2, 3, (2, 1), (1, 4)])
@pytest.mark.parametrize("mode,align", [("nearest", False), ("bilinear", False),
                                        ("bilinear", True)])
@pytest.mark.parametrize("dt", [U8, S8])
def test_upsample2d_matches_reference_and_torch(rng, scale, mode, align, dt):
    torch = pytest.importorskip("torch")
    x = ints(rng, (2, 3, 5, 4), dt)
    out = K.upsample2d(x, scale, mode, align)
    assert_same(out, R.upsample2d(x, scale, mode, align))
    s = (scale, scale) if isinstance(scale, int) else scale
    f = torch.nn.functional.interpolate(
        torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float32)), scale_factor=s, mode=mode,
        align_corners=align if mode == "bilinear" else None).numpy().transpose(0, 2, 3, 1)
    # torch's float result on the same integers, rounded: within half a step (ties may
    # break either way after float32 rounding of the weights)
    assert np.abs(out.astype(np.float32) - f).max() <= 0.5 + 1e-4


def test_extreme_values_stay_in_range():
    x = np.full((1, 2, 2, 1), 255, U8)
    assert (K.upsample2d(x, 3, "bilinear") == 255).all()
    assert (R.upsample2d(np.full((1, 2, 2, 1), -128, S8), 2, "bilinear", True) == -128).all()


@pytest.mark.parametrize("call,match", [
    (lambda m: m.lut(np.zeros(3, np.int32), np.zeros(256, U8)), "x must have dtype"),
    (lambda m: m.lut(np.zeros(3, U8), np.zeros(255, U8)), "table must hold 256"),
    (lambda m: m.lut(np.zeros(0, U8), np.zeros(256, U8)), "x is empty"),
    (lambda m: m.qmul(np.zeros((2, 3), U8), 0, np.zeros((2, 4), U8), 0, 0.1, 0, 0, 255),
     "broadcast"),
    (lambda m: m.qmul(np.zeros(3, U8), 300, np.zeros(3, U8), 0, 0.1, 0, 0, 255),
     "a_zero_point"),
    (lambda m: m.qmul(np.zeros(3, U8), 0, np.zeros(3, U8), 0, float("nan"), 0, 0, 255),
     "multiplier"),
    (lambda m: m.qmul(np.zeros(3, U8), 0, np.zeros(3, U8), 0, 0.1, 300, 0, 255),
     "zero_point"),
    (lambda m: m.pad2d(np.zeros((1, 2, 2, 1), U8), (1, 1), 0), "padding must be"),
    (lambda m: m.pad2d(np.zeros((1, 2, 2, 1), U8), (1, 1, -1, 0), 0), "padding must be >= 0"),
    (lambda m: m.pad2d(np.zeros((1, 2, 2, 1), U8), (1, 1, 1, 1), 256), "value"),
    (lambda m: m.pad2d(np.zeros((2, 2, 1), U8), (1, 1, 1, 1), 0), "4-D"),
    (lambda m: m.upsample2d(np.zeros((1, 2, 2, 1), U8), 0), "scale must be >= 1"),
    (lambda m: m.upsample2d(np.zeros((1, 2, 2, 1), U8), 1.5), "scale must be an int"),
    (lambda m: m.upsample2d(np.zeros((1, 2, 2, 1), U8), 2, "bicubic"), "mode must be"),
    (lambda m: m.upsample2d(np.zeros((1, 2, 2, 1), U8), 2, "nearest", True), "align_corners"),
])
@pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])
def test_bad_input_is_named(module, call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call(module)
