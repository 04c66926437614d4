"""Every numba kernel equals its NumPy reference, integer for integer.

Random shapes (1x1, odd sizes, non-contiguous views), extreme values
(-128/127, 0/255, zero points at their limits, all-zero and constant
channels) and hypothesis properties. This module also runs with
``NUMBA_DISABLE_JIT=1`` (``make test``), which catches missing casts.
"""

import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qkit.kernels as K
import qkit.reference as R
from qkit import AccumulatorOverflowError
from qkit.core.fixedpoint import quantize_multiplier
from qkit.core.qparams import QParams, qparams_from_tensor
from qkit.kernels import avx2, dispatch, loops, packing
from qkit.kernels import conv as kconv
from qkit.kernels.avx2 import int16_steps as avx2_int16_steps
from qkit.kernels.simd.cpu import avx2_available, vnni_available

pytestmark = pytest.mark.nojit

PAIRS = [n for n in K.__all__
         if n not in ("warmup", "gemm_packed", "pack_conv", "pack_weights", "pack_weights_int4")]
U8, S8 = np.uint8, np.int8


def ints(rng, shape, dtype, lo=None, hi=None):
    info = np.iinfo(dtype)
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi, shape, endpoint=True).astype(dtype)


PATHS = ["plain", "avx2", "vnni"]  # the kernel families `qkit.kernels.dispatch` chooses from


def use_path(monkeypatch, path):
    """Route gemm/conv/qlinear to one kernel family (skipped where the CPU lacks it)."""
    if path == "vnni" and not vnni_available():
        pytest.skip("no AVX-512 VNNI on this CPU (or JIT off)")
    if path == "avx2" and not avx2_available():
        pytest.skip("no AVX2 on this CPU (or JIT off)")
    monkeypatch.setattr(dispatch, "USE_VNNI", path == "vnni")
    monkeypatch.setattr(dispatch, "USE_AVX2", path == "avx2")


def assert_same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def test_every_kernel_has_a_reference_with_the_same_signature():
    for name in PAIRS:
        ref, ker = getattr(R, name), getattr(K, name)
        assert inspect.signature(ref) == inspect.signature(ker), name


GEMM_SHAPES = [(1, 1, 1), (1, 7, 3), (3, 1, 5), (5, 33, 7), (17, 64, 65), (9, 301, 2)]


@pytest.mark.parametrize("m,k,n", GEMM_SHAPES)
@pytest.mark.parametrize("adt", [U8, S8])
@pytest.mark.parametrize("name", ["gemm", "gemm_pairs16"])
def test_gemm_random(rng, m, k, n, adt, name):
    a, w = ints(rng, (m, k), adt), ints(rng, (n, k), S8)
    out = getattr(K, name)(a, w)
    assert_same(out, getattr(R, name)(a, w))
    if name == "gemm_pairs16":  # uint8 takes vpmaddubsw where there is AVX2: the loop too
        plain = np.empty_like(out)
        loops.pairs16_tiles(a, w, plain)
        assert_same(plain, out)
    if m * n > 4:
        assert np.unique(out).size > 1  # guard: not a constant output


@pytest.mark.parametrize("name", ["gemm", "gemm_pairs16"])
def test_gemm_extremes(name):
    for av, wv in [(255, 127), (255, -128), (0, -128), (127, -128)]:
        a = np.full((3, 257), av, U8 if av > 127 else S8)
        w = np.full((4, 257), wv, S8)
        assert_same(getattr(K, name)(a, w), getattr(R, name)(a, w))
    a = np.full((2, 4), 255, U8)
    w = np.array([[127, 127, 127, 127], [-128, -128, 1, 1]], S8)
    # pair saturation: 255*127*2 = 64770 -> 32767 per pair
    assert K.gemm_pairs16(a, w).tolist() == [[65534, -32768 + 510]] * 2
    assert K.gemm(a, w).tolist() == [[129540, -64770]] * 2


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("m,k,n", GEMM_SHAPES + [(8, 4, 32), (16, 8, 64), (25, 130, 97),
                                   (9, 12, 48), (1, 3, 16)])
@pytest.mark.parametrize("adt", [U8, S8])
def test_gemm_both_paths_and_packed(rng, monkeypatch, path, m, k, n, adt):
    use_path(monkeypatch, path)
    a, w = ints(rng, (m, k), adt), ints(rng, (n, k), S8)
    expected = R.gemm(a, w)
    assert_same(K.gemm(a, w), expected)
    assert_same(K.gemm_packed(a, K.pack_weights(w)), expected)
    ext = np.full((m, k), np.iinfo(adt).min, adt), np.full((n, k), -128, S8)  # extremes
    assert_same(K.gemm(*ext), R.gemm(*ext))


def test_int16_steps_is_the_exactness_bound():
    # 2 L A W <= 32767: the int16 lane of vpmaddubsw + vpaddw can neither saturate nor wrap
    assert avx2_int16_steps(255, 8) == 8  # W4A8
    assert avx2_int16_steps(127, 8) == 16  # W4A7
    assert avx2_int16_steps(127, 127) == 1
    assert avx2_int16_steps(255, 128) == 0  # full int8: one pair can saturate
    for a_max, w_max in [(255, 8), (127, 8), (100, 30), (255, 64)]:
        steps = avx2_int16_steps(a_max, w_max)
        assert 2 * steps * a_max * w_max <= 32767 < 2 * (steps + 1) * a_max * w_max


@pytest.mark.parametrize("a_max,w_max", [(255, 8), (127, 8), (127, 127), (255, 64), (1, 1)])
@pytest.mark.parametrize("m,k,n", [(5, 301, 17), (4, 32, 16), (1, 2, 1), (9, 33, 40)])
def test_avx2_int16_accumulation_exact_up_to_its_bound(rng, a_max, w_max, m, k, n):
    if not avx2_available():
        pytest.skip("no AVX2 on this CPU (or JIT off)")
    for w_val in (-w_max, w_max):  # worst case: every int16 partial sum at its limit
        a = np.full((m, k), a_max, U8)
        w = np.full((n, k), w_val, S8)
        assert_same(avx2.gemm_avx2(a, K.pack_weights(w), "int16"), R.gemm(a, w))
    a, w = ints(rng, (m, k), U8, 0, a_max), ints(rng, (n, k), S8, -w_max, w_max)
    for path in ("int16", "int32", "auto"):
        assert_same(avx2.gemm_avx2(a, K.pack_weights(w), path), R.gemm(a, w))
    s = ints(rng, (m, k), S8)  # signed activations are shifted to a + 128 and corrected
    for path in ("int32", "auto"):
        assert_same(avx2.gemm_avx2(s, K.pack_weights(w), path), R.gemm(s, w))


def test_avx2_int16_bound_is_needed():
    # one step past the bound the int16 sums wrap: the check in gemm_avx2 is what keeps it exact
    if not avx2_available():
        pytest.skip("no AVX2 on this CPU (or JIT off)")
    a, w = np.full((4, 64), 255, U8), np.full((16, 64), -8, S8)
    steps = avx2_int16_steps(255, 8)
    out = np.empty((4, 16), np.int32)
    avx2.gemm_madd_ub(a, packing.pack_pairs(w, np.int8), out, steps + 1)
    assert not np.array_equal(out, R.gemm(a, w))
    avx2.gemm_madd_ub(a, packing.pack_pairs(w, np.int8), out, steps)
    assert_same(out, R.gemm(a, w))
    with pytest.raises(ValueError, match="int16 accumulation is not exact"):
        avx2.gemm_avx2(a, K.pack_weights(np.full((2, 64), -128, S8)), "int16")


def test_gemm_packed_checks(rng):
    packed = K.pack_weights(ints(rng, (4, 6), S8))
    with pytest.raises(ValueError, match="packed weights have K=6"):
        K.gemm_packed(ints(rng, (2, 5), U8), packed)
    with pytest.raises(TypeError, match="must come from pack_weights"):
        K.gemm_packed(ints(rng, (2, 6), U8), ints(rng, (4, 6), S8))


def test_gemm_non_contiguous(rng):
    a = ints(rng, (20, 40), U8)[::2, 1::2]
    w = ints(rng, (30, 60), S8)[::3, ::3]
    assert not a.flags.c_contiguous
    assert_same(K.gemm(a, w), R.gemm(a, w))
    assert_same(K.gemm(a, w), R.gemm(np.ascontiguousarray(a), np.ascontiguousarray(w)))


def test_gemm_serial_equals_parallel(rng):
    a, w = ints(rng, (37, 129), U8), ints(rng, (131, 129), S8)
    serial, parallel = np.empty((37, 131), np.int32), np.empty((37, 131), np.int32)
    loops._gemm_tile(a, w, serial, 0, 37, 0, 131)
    loops.gemm_tiles(a, w, parallel)
    assert_same(serial, parallel)
    loops._pairs16_tile(a, w, serial, 0, 37, 0, 131)
    loops.pairs16_tiles(a, w, parallel)
    assert_same(serial, parallel)
    wp = K.pack_int4(ints(rng, (131, 129), S8, -8, 7))
    loops._int4_tile(a, wp, serial, 0, 37, 0, 131)
    loops.int4_tiles(a, wp, parallel)
    assert_same(serial, parallel)
    idx, cb = ints(rng, (131, 129), U8, 0, 15), ints(rng, (131, 16), np.int16, -999, 999)
    loops._codebook_tile(a, idx, cb, serial, 0, 37, 0, 131)
    loops.codebook_tiles(a, idx, cb, parallel)
    assert_same(serial, parallel)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("k", [1, 2, 7, 8, 64, 129])
def test_int4_pack_and_gemm(rng, monkeypatch, path, k):
    use_path(monkeypatch, path)
    w4 = ints(rng, (5, k), S8, -8, 7)
    packed = R.pack_int4(w4)
    assert_same(K.pack_int4(w4), packed)
    assert_same(K.unpack_int4(packed, k), w4)
    assert_same(R.unpack_int4(packed, k), w4)
    u4 = ints(rng, (3, k), U8, 0, 15)
    assert_same(K.unpack_int4(K.pack_int4(u4), k, signed=False), u4)
    for adt in (U8, S8):
        for m, n in ((4, 5), (9, 48), (1, 33)):
            a, w4 = ints(rng, (m, k), adt), ints(rng, (n, k), S8, -8, 7)
            packed = R.pack_int4(w4)
            out = K.gemm_int4(a, packed)
            assert_same(out, R.gemm_int4(a, packed))
            assert_same(out, R.gemm(a, w4))
            assert_same(K.gemm_packed(a, K.pack_weights_int4(w4)), out)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("levels,cdt", [(4, S8), (16, np.int16), (256, S8)])
def test_codebook_gemm(rng, shared, levels, cdt):
    a = ints(rng, (6, 77), U8)
    idx = rng.integers(0, levels, (9, 77)).astype(U8)
    cb = ints(rng, (levels,) if shared else (9, levels), cdt, -300 if cdt == np.int16 else None,
              300 if cdt == np.int16 else None)
    out = K.gemm_codebook(a, idx, cb)
    assert_same(out, R.gemm_codebook(a, idx, cb))
    w = (cb[idx] if shared else np.take_along_axis(cb, idx.astype(int), 1)).astype(np.int64)
    np.testing.assert_array_equal(out, a.astype(np.int64) @ w.T)


CONV_CASES = [
    # (N,H,W,C), (O,KH,KW), stride, padding, dilation, groups
    ((1, 1, 1, 1), (1, 1, 1), 1, 0, 1, 1),
    ((2, 7, 9, 3), (4, 3, 3), 1, 1, 1, 1),
    ((1, 8, 8, 6), (6, 3, 3), 2, 1, 1, 6),  # depthwise
    ((2, 9, 11, 6), (9, 3, 2), (2, 1), (1, 0), (1, 2), 3),  # grouped, asymmetric
    ((1, 5, 5, 4), (2, 5, 5), 1, 2, 1, 1),
    ((3, 6, 7, 2), (5, 1, 1), 1, 0, 1, 1),  # pointwise
    ((2, 6, 7, 5), (48, 3, 3), 1, 1, 1, 1),  # 48 = 32 + 16 outputs: half a panel, in place
    ((1, 9, 9, 6), (32, 3, 3), 2, 1, 1, 2),  # grouped, 16 outputs per group
    ((2, 5, 6, 8), (16, 1, 1), 1, 0, 1, 1),  # uint8, C % 4 == 0, no padding: reads x in place
    ((2, 7, 7, 4), (8, 3, 3), 2, 0, 1, 1),  # the same for a strided 3x3
    ((2, 9, 10, 32), (32, 3, 3), 1, 1, 1, 32),  # depthwise in blocks of 16 channels (VNNI)
    ((1, 11, 9, 16), (16, 3, 3), (2, 1), (2, 1), (2, 1), 16),  # the same, strided and dilated
    ((1, 48, 44, 16), (16, 3, 3), 1, 1, 1, 16),  # large map: border pixels through pointers
    ((2, 7, 8, 96), (96, 3, 3), 1, 1, 1, 96),  # depthwise: a 64-channel step, then 2 of 16
    ((1, 6, 9, 144), (144, 3, 3), (2, 1), 1, (1, 2), 144),  # two 64-channel steps, one of 16
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("xshape,wshape,stride,padding,dilation,groups", CONV_CASES)
@pytest.mark.parametrize("adt", [U8, S8])
def test_conv2d(rng, monkeypatch, path, xshape, wshape, stride, padding, dilation, groups,
                adt):
    use_path(monkeypatch, path)
    x = ints(rng, xshape, adt)
    w = ints(rng, wshape + (xshape[3] // groups,), S8)
    pad = int(np.iinfo(adt).max)  # zero point at its limit
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, pad_value=pad)
    out = K.conv2d(x, w, **args)
    assert_same(out, R.conv2d(x, w, **args))
    serial = np.empty_like(out)
    st_, pd, dl = (np.broadcast_to(v, 2).astype(np.int64) for v in (stride, padding, dilation))
    geometry = (groups, *(int(v) for v in (st_[0], st_[1], pd[0], pd[1], dl[0], dl[1])))
    kconv.conv_plain(x, w, serial, geometry, pad)
    assert_same(serial, out)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("xshape,wshape,stride,padding,dilation,groups", CONV_CASES)
@pytest.mark.parametrize("adt,lo,hi", [(U8, 0, 255), (S8, -128, 127)])
def test_qconv2d(rng, monkeypatch, path, xshape, wshape, stride, padding, dilation, groups,
                 adt, lo, hi):
    use_path(monkeypatch, path)
    x = ints(rng, xshape, adt)
    w = ints(rng, wshape + (xshape[3] // groups,), S8)
    o = wshape[0]
    info = np.iinfo(adt)
    for zx in (int(info.min), int(info.max), int(rng.integers(info.min, info.max + 1))):
        mult = rng.uniform(1e-4, 2e-2, o).astype(np.float32)
        bias = (rng.standard_normal(o) * 300).astype(np.float32)
        args = (zx, mult, int(rng.integers(lo, hi + 1)), lo, hi, bias, stride, padding, dilation,
                groups)
        assert_same(K.qconv2d(x, w, *args), R.qconv2d(x, w, *args))


@pytest.mark.parametrize("xshape,wshape,stride,padding,dilation,groups", [
    c for c in CONV_CASES if c[5] == 1 or c[5] < c[0][3]] + [
    ((3, 14, 14, 32), (64, 3, 3), 1, 1, 1, 1),  # the MNIST CNN's conv3: 2 images per chunk
    ((9, 7, 7, 8), (40, 3, 3), 1, 1, 1, 1),  # 49 pixels: 8 images per chunk, the last has 1
    ((5, 9, 8, 4), (16, 3, 3), (2, 1), (0, 2), (2, 1), 1),  # padding only along the width
])
@pytest.mark.parametrize("adt,lo,hi", [(U8, 0, 255), (S8, -128, 127)])
def test_qconv2d_pads_in_chunks(rng, monkeypatch, xshape, wshape, stride, padding, dilation,
                                groups, adt, lo, hi):
    # large batches pad a few images at a time, inside the parallel loop
    # (qkit.kernels.vnni.conv._qconv_chunks):
    # forced here on small batches
    from qkit.kernels.vnni import conv as vnni

    use_path(monkeypatch, "vnni")
    monkeypatch.setattr(vnni, "MIN_CHUNKS", 1)
    used = []
    real = vnni._qconv_chunks
    monkeypatch.setattr(vnni, "_qconv_chunks", lambda *a: used.append(a[1][0]) or real(*a))
    x = ints(rng, xshape, adt)
    w = ints(rng, wshape + (xshape[3] // groups,), S8)
    o = wshape[0]
    info = np.iinfo(adt)
    for zx in (int(info.min), int(info.max)):
        mult = rng.uniform(1e-4, 2e-2, o).astype(np.float32)
        bias = (rng.standard_normal(o) * 300).astype(np.float32)
        args = (zx, mult, int(rng.integers(lo, hi + 1)), lo, hi, bias, stride, padding, dilation,
                groups)
        out = K.qconv2d(x, w, *args)
        assert_same(out, R.qconv2d(x, w, *args))
    copies = adt == S8 or np.any(padding)  # else x is read in place
    chunk = vnni.chunk_images(out.shape[1] * out.shape[2])
    whole_quads = xshape[3] // groups % 4 == 0  # else the whole input is padded once
    assert used == [chunk] * len(used)
    assert bool(used) == bool(copies and whole_quads and xshape[0] >= chunk)


def test_qconv2d_packed_weights_follow_the_weights(rng, monkeypatch):
    # the VNNI conv keeps small packed weights by their bytes: weights edited in place, or new
    # weights of the same shape, must never meet an old packing
    use_path(monkeypatch, "vnni")
    x, w = ints(rng, (2, 6, 6, 8), U8), ints(rng, (16, 3, 3, 8), S8)
    mult, bias = np.full(16, 0.01, np.float32), np.zeros(16, np.float32)
    args = (3, mult, 7, 0, 255, bias, 1, 1, 1, 1)
    for _ in range(3):
        assert_same(K.qconv2d(x, w, *args), R.qconv2d(x, w, *args))
        w[rng.integers(0, 16), 1, 1, rng.integers(0, 8)] += 1  # in place
    w = ints(rng, (16, 3, 3, 8), S8)
    assert_same(K.qconv2d(x, w, *args), R.qconv2d(x, w, *args))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("xshape,wshape,stride,padding,dilation,groups", CONV_CASES)
def test_qconv2d_with_prepared_weights(rng, monkeypatch, path, xshape, wshape, stride, padding,
                                       dilation, groups):
    # qconv2d(x, pack_conv(w), ...) is qconv2d(x, w, ...), for every conv case and both paths
    # through the chunked kernel; the packing holds a copy, so editing w later changes nothing
    from qkit.kernels.vnni import conv as vnni

    use_path(monkeypatch, path)
    x = ints(rng, xshape, U8)
    w = ints(rng, wshape + (xshape[3] // groups,), S8)
    o = wshape[0]
    args = (17, rng.uniform(1e-4, 2e-2, o).astype(np.float32), 5, 0, 255,
            (rng.standard_normal(o) * 300).astype(np.float32), stride, padding, dilation, groups)
    expected = R.qconv2d(x, w, *args)
    x2 = ints(rng, xshape, U8)
    expected2 = R.qconv2d(x2, w, *args)
    packed = K.pack_conv(w)
    w += np.int8(1)
    for chunks in (10**9, 1):
        monkeypatch.setattr(vnni, "MIN_CHUNKS", chunks)
        assert_same(K.qconv2d(x, packed, *args), expected)
        bound = packed.bind(x, *args)  # every argument fixed but the input
        assert_same(bound(x), expected)
        assert_same(bound(x2), expected2)
        assert_same(bound(x), expected)
    with pytest.raises(ValueError, match="bound to uint8 inputs of shape"):
        bound(x[:, :-1])
    with pytest.raises(ValueError, match="bound to uint8 inputs of shape"):
        bound(x.view(np.int8))
    assert not packed.w.flags.writeable
    with pytest.raises(TypeError, match="w must have dtype int8"):
        K.pack_conv(w.astype(np.int16))
    with pytest.raises(ValueError, match="w must be 4-D"):
        K.pack_conv(w[0])


def test_fbgemm_conv_layer_repacks_new_weights(rng):
    # FbgemmLayer packs its conv weights on the first call; assigning new weights repacks
    from qkit.engine.fbgemm import FbgemmLayer

    x = ints(rng, (2, 6, 6, 8), U8)
    layer = FbgemmLayer(ints(rng, (16, 3, 3, 8), S8), np.full(16, 0.02, np.float32),
                        np.zeros(16, np.int32), 0.1, 3, conv=dict(stride=(1, 1), padding=(1, 1),
                                                                 dilation=(1, 1), groups=1))
    first = layer(x, 0.05, 2, "exact")
    layer.w = ints(rng, (16, 3, 3, 8), S8)
    mult, bias = layer.requant_params(0.05)
    assert_same(layer(x, 0.05, 2, "exact"), R.qconv2d(x, layer.w, 2, mult, 3, 0, 255, bias, 1, 1))
    assert not np.array_equal(first, layer(x, 0.05, 2, "exact"))


def test_conv2d_reuses_its_workspace_safely(rng, monkeypatch):
    # the VNNI path keeps its padded input buffer per shape: consecutive calls with the same
    # shape but another dtype, padding value or image must not see the previous call's bytes
    use_path(monkeypatch, "vnni")
    w = ints(rng, (40, 3, 3, 8), S8)
    for adt, pad in [(U8, 0), (U8, 255), (S8, -128), (S8, 127), (U8, 7)]:
        x = ints(rng, (3, 10, 13, 8), adt)  # 390 output pixels: 48 full tiles and a tail of 6
        out = K.conv2d(x, w, padding=1, pad_value=pad)
        assert_same(out, R.conv2d(x, w, padding=1, pad_value=pad))


def test_conv2d_over_half_a_million_pixels(rng, monkeypatch):
    # above 2**19 output pixels the window offsets are not cached (a separate code path)
    use_path(monkeypatch, "vnni")
    x, w = ints(rng, (3, 420, 420, 4), U8), ints(rng, (4, 3, 3, 4), S8)
    assert 3 * 420 * 420 > 1 << 19
    assert_same(K.conv2d(x, w, padding=1), R.conv2d(x, w, padding=1))


def test_conv2d_matches_gemm_for_pointwise(rng):
    x, w = ints(rng, (2, 3, 4, 5), U8), ints(rng, (6, 1, 1, 5), S8)
    out = K.conv2d(x, w)
    assert_same(out.reshape(-1, 6), R.gemm(x.reshape(-1, 5), w.reshape(6, 5)))


QPARAM_CASES = [
    dict(bits=8, signed=True, symmetric=True, narrow_range=True),
    dict(bits=8, signed=False),
    dict(bits=4, signed=True, axis=0),
    dict(bits=3, signed=False, axis=1, group_size=4),
    dict(bits=16, signed=True),
    dict(bits=2, signed=True, symmetric=True),
]


@pytest.mark.parametrize("kw", QPARAM_CASES)
@pytest.mark.parametrize("rounding", ["half_even", "half_away", "floor", "stochastic"])
def test_quantize_dequantize(rng, kw, rounding):
    x = (rng.standard_normal((6, 8)) * 3).astype(np.float32)
    x[1] = 0.0  # an all-zero channel
    x[2] = 1.5  # a constant channel
    qp = qparams_from_tensor(x, **kw)
    q = K.quantize(x, qp, rounding, rng=np.random.default_rng(1))
    assert_same(q, R.quantize(x, qp, rounding, rng=np.random.default_rng(1)))
    assert q.min() >= qp.qmin and q.max() <= qp.qmax
    assert_same(K.dequantize(q, qp), R.dequantize(q, qp))


def test_quantize_ties_and_limits():
    qp = QParams(np.float32(1.0), 127, bits=8, signed=False)
    x = np.array([-0.5, 0.5, 1.5, 2.5, -127.5, 128.5, -1e6, 1e6], np.float32)
    for rounding in ("half_even", "half_away", "floor"):
        assert_same(K.quantize(x, qp, rounding), R.quantize(x, qp, rounding))
    assert K.quantize(x, qp).tolist() == [127, 127, 129, 129, 0, 255, 0, 255]
    assert K.quantize(x, qp, "half_away").tolist() == [126, 128, 129, 130, 0, 255, 0, 255]


REQUANT_RANGES = [(0, 255, 0), (0, 255, 255), (-128, 127, -128), (-128, 127, 127), (7, 200, 9)]


@pytest.mark.parametrize("qmin,qmax,zp", REQUANT_RANGES)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_requantize(rng, qmin, qmax, zp, per_channel, with_bias):
    acc = ints(rng, (9, 13), np.int32)
    acc[0, :4] = [np.iinfo(np.int32).min, np.iinfo(np.int32).max, 0, -1]
    n = 13 if per_channel else 1
    m0, shift = quantize_multiplier(rng.uniform(1e-9, 1.5, n))
    bias_i = ints(rng, (13,), np.int32, -(2**20), 2**20) if with_bias else None
    out = K.requantize_fixed(acc, m0, shift, zp, qmin, qmax, bias=bias_i)
    assert_same(out, R.requantize_fixed(acc, m0, shift, zp, qmin, qmax, bias=bias_i))
    mult = rng.uniform(1e-9, 1e-2, n).astype(np.float32)
    bias_f = (rng.standard_normal(13) * 1e5).astype(np.float32) if with_bias else None
    out = K.requantize_float(acc, mult, zp, qmin, qmax, bias=bias_f)
    assert_same(out, R.requantize_float(acc, mult, zp, qmin, qmax, bias=bias_f))


# --- hypothesis properties ------------------------------------------------------------------


@given(hnp.arrays(np.float32, st.integers(1, 40),
                  elements=st.floats(-1e3, 1e3, width=32, allow_subnormal=False)),
       st.integers(2, 16), st.booleans(), st.booleans())
def test_round_trip_error_at_most_half_a_step(x, bits, signed, symmetric):
    qp = qparams_from_tensor(x, bits=bits, signed=signed, symmetric=symmetric)
    q = K.quantize(x, qp)
    assert_same(q, R.quantize(x, qp))
    assert qp.qmin <= q.min() and q.max() <= qp.qmax
    err = np.abs(K.dequantize(q, qp).astype(np.float64) - x)
    # inside the range: <= scale/2 (+ float32 rounding of x/scale and of (q-zp)*scale)
    step = float(qp.scale)
    tol = step / 2 + 4 * np.finfo(np.float32).eps * (np.abs(x).max() + step)
    assert err.max() <= tol


@given(hnp.arrays(np.int32, st.tuples(st.integers(1, 5), st.integers(1, 6))),
       st.floats(1e-10, 4.0), st.integers(-128, 127))
def test_requantize_fixed_matches_reference(acc, m, zp):
    m0, shift = quantize_multiplier(m)
    assert_same(K.requantize_fixed(acc, m0, shift, zp, -128, 127),
                R.requantize_fixed(acc, m0, shift, zp, -128, 127))


@given(st.integers(1, 9), st.integers(1, 70), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_gemm_property(m, k, n, seed):
    r = np.random.default_rng(seed)
    a, w = ints(r, (m, k), U8), ints(r, (n, k), S8)
    assert_same(K.gemm(a, w), R.gemm(a, w))
    assert_same(K.gemm_pairs16(a, w), R.gemm_pairs16(a, w))
    a7 = ints(r, (m, k), U8, 0, 127)  # reduce_range activations: pairs cannot saturate
    assert_same(K.gemm_pairs16(a7, w), R.gemm(a7, w))


@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
def test_fused_activation_clamps(rng, activation):
    from qkit.core.qparams import activation_range

    scale, zp = 0.05, 10  # uint8 output grid: real 0 at 10, real 6 at 130
    lo, hi = activation_range(activation, scale, zp, 0, 255)
    acc = ints(rng, (6, 9), np.int32, -(2**16), 2**16)
    mult = np.float32(0.01)
    out = K.requantize_float(acc, mult, zp, lo, hi)
    assert_same(out, R.requantize_float(acc, mult, zp, lo, hi))
    y = np.clip(np.rint(acc.astype(np.float32) * mult) + zp, 0, 255)  # no activation
    expected = {None: y, "relu": np.maximum(y, zp), "relu6": np.clip(y, zp, 130)}[activation]
    np.testing.assert_array_equal(out, expected)


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
