"""qlinear, bound layers, pooling, residual adds, and fused requantization at the
extremes of its multipliers.

Every numba kernel equals its NumPy reference, integer for integer: random shapes (1x1,
odd sizes, non-contiguous views), extreme values and hypothesis properties. These modules
also run with ``NUMBA_DISABLE_JIT=1`` (``make test``), which catches missing casts.
"""


import numpy as np
import pytest
from kernel_cases import PATHS, S8, U8, assert_same, ints, use_path

import qkit.kernels as K
import qkit.reference as R
from qkit import AccumulatorOverflowError

pytestmark = pytest.mark.nojit


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (9, 33, 65), (17, 130, 31), (9, 20, 48),
                                   (3, 64, 16)])
@pytest.mark.parametrize("adt,lo,hi", [(U8, 0, 255), (S8, -128, 127), (U8, 10, 200)])
def test_qlinear(rng, monkeypatch, path, m, k, n, adt, lo, hi):
    use_path(monkeypatch, path)
    a, w = ints(rng, (m, k), adt), ints(rng, (n, k), S8)
    info = np.iinfo(adt)
    for zx in (int(info.min), int(info.max), int(rng.integers(info.min, info.max + 1))):
        mult = rng.uniform(1e-4, 2e-2, n).astype(np.float32)
        bias = (rng.standard_normal(n) * 300).astype(np.float32)
        zy = int(rng.integers(lo, hi + 1))
        expected = R.qlinear(a, w, zx, mult, zy, lo, hi, bias=bias)
        assert_same(K.qlinear(a, w, zx, mult, zy, lo, hi, bias=bias), expected)
        assert_same(K.qlinear(a, K.pack_weights(w), zx, mult, zy, lo, hi, bias=bias), expected)
        per_tensor = R.qlinear(a, w, zx, mult[0], zy, lo, hi)
        assert_same(K.qlinear(a, w, zx, mult[0], zy, lo, hi), per_tensor)
    if m * n > 8:
        assert np.unique(expected).size > 1


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("adt,lo,hi", [(U8, 0, 255), (S8, -128, 127), (U8, 10, 200)])
def test_bound_qlinear(rng, monkeypatch, path, adt, lo, hi):
    # pack_weights(w).bind(x, ...) fixes every argument but the input: the same integers as
    # qlinear for later inputs of that shape; other shapes or dtypes are refused
    use_path(monkeypatch, path)
    for m, k, n in [(1, 1, 1), (9, 33, 65), (17, 132, 48), (3, 64, 16)]:
        w = ints(rng, (n, k), S8)
        mult = rng.uniform(1e-4, 2e-2, n).astype(np.float32)
        bias = (rng.standard_normal(n) * 300).astype(np.float32)
        zx, zy = int(rng.integers(np.iinfo(adt).min, np.iinfo(adt).max + 1)), (lo + hi) // 2
        a = ints(rng, (m, k), adt)
        bound = K.pack_weights(w).bind(a, zx, mult, zy, lo, hi, bias)
        for x in (a, ints(rng, (m, k), adt), a):
            assert_same(bound(x), R.qlinear(x, w, zx, mult, zy, lo, hi, bias=bias))
        with pytest.raises(ValueError, match="bound to"):
            bound(ints(rng, (m + 1, k), adt))
        with pytest.raises(ValueError, match="bound to"):
            bound(a.view(U8 if adt == S8 else S8))


def test_bound_calls_still_check_overflow_where_the_dtype_cannot(rng):
    # K so long that 8-bit inputs could overflow int32: binding on small values must not
    # excuse a later input whose values would overflow
    k = 70_000  # 70,000 * 255 * 127 > 2**31
    w = np.full((2, k), 127, S8)
    small, big = np.ones((1, k), U8), np.full((1, k), 255, U8)
    bound = K.pack_weights(w).bind(small, 0, 1e-6, 0, 0, 255)
    assert_same(bound(small), R.qlinear(small, w, 0, 1e-6, 0, 0, 255))
    with pytest.raises(AccumulatorOverflowError):
        bound(big)
    wc = np.full((2, 1, 1, k), 127, S8)
    xs, xb = small.reshape(1, 1, 1, k), big.reshape(1, 1, 1, k)
    packed = K.pack_conv(wc)
    assert_same(K.qconv2d(xs, packed, 0, 1e-6, 0, 0, 255), R.qconv2d(xs, wc, 0, 1e-6, 0, 0, 255))
    with pytest.raises(AccumulatorOverflowError):
        K.qconv2d(xb, packed, 0, 1e-6, 0, 0, 255)
    bound = packed.bind(xs, 0, 1e-6, 0, 0, 255)
    assert_same(bound(xs), R.qconv2d(xs, wc, 0, 1e-6, 0, 0, 255))
    with pytest.raises(AccumulatorOverflowError):
        bound(xb)


def test_qlinear_checks(rng):
    a, w = ints(rng, (2, 4), U8), ints(rng, (3, 4), S8)
    for impl in (R, K):
        with pytest.raises(ValueError, match="8-bit integers"):
            impl.qlinear(a, w, 0, 0.1, 0, -1000, 1000)
        with pytest.raises(ValueError, match="x_zero_point must be an integer"):
            impl.qlinear(a, w, 300, 0.1, 0, 0, 255)
        with pytest.raises(ValueError, match="bias must hold N=3"):
            impl.qlinear(a, w, 0, 0.1, 0, 0, 255, bias=np.zeros(2))
        with pytest.raises(ValueError, match="weights are"):
            impl.qlinear(ints(rng, (2, 5), U8), w, 0, 0.1, 0, 0, 255)


POOL_CASES = [((1, 4, 4, 1), 2, None), ((2, 7, 9, 3), 3, 2), ((3, 5, 6, 4), (2, 3), (1, 2)),
              ((1, 3, 3, 5), (3, 3), None)]


@pytest.mark.parametrize("shape,kernel,stride", POOL_CASES)
@pytest.mark.parametrize("adt", [U8, S8])
def test_pooling(rng, shape, kernel, stride, adt):
    x = ints(rng, shape, adt)
    for name in ("maxpool2d", "avgpool2d"):
        assert_same(getattr(K, name)(x, kernel, stride), getattr(R, name)(x, kernel, stride))
    ext = np.full(shape, np.iinfo(adt).max, adt)
    assert_same(K.avgpool2d(ext, kernel, stride), R.avgpool2d(ext, kernel, stride))
    assert (K.avgpool2d(ext, kernel, stride) == np.iinfo(adt).max).all()


@pytest.mark.parametrize("adt,lo,hi", [(U8, 0, 255), (S8, -128, 127), (U8, 7, 200)])
def test_qadd_and_relu(rng, adt, lo, hi):
    a, b = ints(rng, (3, 5, 4, 6), adt), ints(rng, (3, 5, 4, 6), adt)
    info = np.iinfo(adt)
    for za, zb in ((int(info.min), int(info.max)), (0, 0), (3, -1 if adt == S8 else 9)):
        ma, mb = rng.uniform(0.05, 3, 2)
        zy = int(rng.integers(lo, hi + 1))
        out = K.qadd(a, za, ma, b, zb, mb, zy, lo, hi)
        assert_same(out, R.qadd(a, za, ma, b, zb, mb, zy, lo, hi))
        assert np.unique(out).size > 1
    assert_same(K.relu(a, 5), R.relu(a, 5))
    with pytest.raises(ValueError, match="same shape"):
        K.qadd(a, 0, 1.0, b[:1], 0, 1.0, 0, lo, hi)
    with pytest.raises(ValueError, match="larger than the input"):
        K.maxpool2d(a, 9)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("adt,lo,hi", [(U8, 0, 255), (S8, -128, 127), (U8, 10, 200),
                                       (S8, -5, 90)])
def test_fused_requantization_at_the_extremes(rng, monkeypatch, path, adt, lo, hi):
    # multipliers from 1e-6 to 1e30 push products past int32 and int64 and to inf, which must
    # still land on lo or hi: every row count (8-, 4- and 1-row tiles) and a half panel (48
    # columns), against the reference and against the sign rule
    use_path(monkeypatch, path)
    from qkit.kernels.vnni import conv as vnni

    monkeypatch.setattr(vnni, "MIN_CHUNKS", 1)
    n = 48
    mult = np.float32(10.0) ** rng.uniform(-6, 30, n).astype(np.float32)
    bias = (rng.standard_normal(n) * 1e6).astype(np.float32)
    for m in (1, 3, 4, 6, 13):
        a, w = ints(rng, (m, 37), adt), ints(rng, (n, 37), S8)
        for zx in (int(np.iinfo(adt).min), int(np.iinfo(adt).max)):
            for zy in (lo, hi, (lo + hi) // 2):
                expected = R.qlinear(a, w, zx, mult, zy, lo, hi, bias=bias)
                assert_same(K.qlinear(a, w, zx, mult, zy, lo, hi, bias=bias), expected)
        x = ints(rng, (m, 3, 4, 8), adt)
        wc = ints(rng, (n, 3, 3, 8), S8)
        args = (int(np.iinfo(adt).max), mult, (lo + hi) // 2, lo, hi, bias, 1, 1, 1, 1)
        assert_same(K.qconv2d(x, wc, *args), R.qconv2d(x, wc, *args))
    # depthwise on uint8 input (the VNNI kernel's 64- and 16-channel steps) into every range
    c = 144
    mult = np.float32(10.0) ** rng.uniform(-6, 30, c).astype(np.float32)
    bias = (rng.standard_normal(c) * 1e6).astype(np.float32)
    x, wd = ints(rng, (2, 5, 6, c), U8), ints(rng, (c, 3, 3, 1), S8)
    for zx in (0, 255):
        args = (zx, mult, (lo + hi) // 2, lo, hi, bias, 1, 1, 1, c)
        assert_same(K.qconv2d(x, wd, *args), R.qconv2d(x, wd, *args))
    # without bias, a huge multiplier sends every nonzero sum to its end of the range
    a, w = ints(rng, (13, 37), adt), ints(rng, (n, 37), S8)
    zy = (lo + hi) // 2
    raw = a.astype(np.int64) @ w.T.astype(np.int64)
    expected = np.where(raw > 0, hi, np.where(raw < 0, lo, zy))
    for huge in (np.float32(1e12), np.float32(3e38)):
        out = K.qlinear(a, w, 0, huge, zy, lo, hi)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(R.qlinear(a, w, 0, huge, zy, lo, hi), expected)
