"""Convolutions: conv2d and qconv2d on every path, chunked padding, prepared and
bound weights, the VNNI depthwise kernel.

Every numba kernel equals its NumPy reference, integer for integer: random shapes (1x1,
odd sizes, non-contiguous views), extreme values and hypothesis properties. These modules
also run with ``NUMBA_DISABLE_JIT=1`` (``make test``), which catches missing casts.
"""


import numpy as np
import pytest
from kernel_cases import PATHS, S8, U8, assert_same, ints, use_path

import qkit.kernels as K
import qkit.reference as R
from qkit.kernels import conv as kconv

pytestmark = pytest.mark.nojit


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


