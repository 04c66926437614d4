"""Block formats (MX v1.0, NVFP4): hand-checked blocks, the rule block by block against the
vectorized path, properties of the shared scale, packing, and the integer MXFP4 product."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qkit import kernels, reference
from qkit.formats import blocks as B
from qkit.formats import floats as F

MX = [n for n, f in B.BLOCK_FORMATS.items() if f.scale == "e8m0"]


def test_hand_checked_mxfp4_block():
    x = np.zeros(32, np.float32)
    x[:6] = [0.1, -0.7, 2.5, 11.0, 5.0, -3.0]
    t = B.quantize(x, "mxfp4")
    # amax 11: floor(log2 11) = 3, emax(E2M1) = 2 -> X = 1, scale 2, E8M0 code 128
    assert t.scales.tolist() == [128]
    # x / 2 = 0.05 -0.35 1.25 5.5 2.5 -1.5 -> 0, -0.5, 1 (tie to even), 6, 2 (tie), -1.5
    assert t.dequantize()[:6].tolist() == [0.0, -1.0, 2.0, 12.0, 4.0, -3.0]
    assert t.codes[0, :6].tolist() == [0, 9, 2, 7, 4, 11]


def test_hand_checked_saturation_and_mxint8():
    # amax 7.9 -> X = 2 - 2 = 0: 7.9 is above E2M1's max 6 and saturates (the OCP rule clips)
    x = np.array([7.9, 0.4] + [0.0] * 30, np.float32)
    assert B.round_to_block_format(x, "mxfp4")[:2].tolist() == [6.0, 0.5]
    # MXINT8: amax 1.5 -> X = 0, elements round(x * 64) / 64, clamped to +-127/64
    x = np.array([1.5, -1.999, 0.0078125, 0.01] + [0.0] * 28, np.float32)
    t = B.quantize(x, "mxint8")
    assert t.scales.tolist() == [127] and t.codes[0, :4].tolist() == [96, -127, 0, 1]
    assert t.dequantize()[1] == np.float32(-127 / 64)


def test_hand_checked_nvfp4():
    x = np.zeros(32, np.float32)
    x[:3] = [6.0, -1.0, 0.2]
    x[16:18] = [1.5, 0.75]
    t = B.quantize(x, "nvfp4")
    assert t.tensor_scale == np.float32(6.0 / (6 * 448))
    # block 1: amax 6 -> 1/tensor_scale = 448 exactly (E4M3 max); elements x / 1 = 6, -1, 0 (0.2
    # rounds to 0); block 2: amax 1.5 -> 112 (E4M3 0x76), elements x / 0.25
    assert F.decode(t.scales, "fp8_e4m3").tolist() == [448.0, 112.0]
    assert t.codes[0, :3].tolist() == [7, 10, 0] and t.codes[1, :2].tolist() == [7, 5]
    # the float32 tensor scale 6/2688 is not exact, so the values are 6 etc. to float32 rounding
    np.testing.assert_allclose(t.dequantize()[[0, 1, 2, 16, 17]], [6.0, -1.0, 0.0, 1.5, 0.75],
                               rtol=2**-22)
    assert t.bits_per_element == (16 + 2 + 4) * 8 / 32


@pytest.mark.parametrize("fmt", MX)
def test_vectorized_equals_the_rule_block_by_block(fmt):
    rng = np.random.default_rng(MX.index(fmt))
    x = (rng.standard_normal((9, 64)) * np.exp2(rng.uniform(-20, 20, (9, 1)))).astype(np.float32)
    x[0] = 0.0  # an all-zero row
    x[1] = 3.0  # a constant row
    t = B.quantize(x, fmt)
    for r in range(9):
        for b in range(2):
            scale, codes = B.quantize_one_block(x[r, 32 * b:32 * (b + 1)], fmt)
            assert t.scales[r, b] == scale
            assert np.array_equal(t.codes[r, b], codes)


@pytest.mark.parametrize("fmt", list(B.BLOCK_FORMATS))
def test_any_axis_and_padding(fmt):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 40, 5)).astype(np.float32)
    for axis in (0, 1, 2, -1):
        y = B.round_to_block_format(x, fmt, axis=axis)
        assert y.shape == x.shape and y.dtype == np.float32
        # blocking along `axis` is blocking the moved-last copy along the last axis
        moved = B.round_to_block_format(np.moveaxis(x, axis, -1), fmt)
        np.testing.assert_array_equal(np.moveaxis(y, axis, -1), moved)


@given(arrays(np.float32, st.integers(1, 70),
              elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=True)),
       st.sampled_from(list(B.BLOCK_FORMATS)))
def test_block_properties(x, fmt):
    f = B.BLOCK_FORMATS[fmt]
    t = B.quantize(x, fmt)
    s = t.scale_values()
    dec = t.dequantize()
    assert np.isfinite(dec).all()  # saturation: a block never overflows to Inf or NaN
    d = np.abs(B._blocks(dec, 0, f.block))
    assert (d.max(axis=-1) <= f.element_max * s * (1 + 2.0**-23)).all()  # float32 rounding
    if f.scale == "e8m0":
        # the shared scale keeps the block max: it lands in [2^emax, 2^(emax+1)) before
        # clipping, so it is lost only to saturation and rounding, never to overflow
        amax = np.abs(B._blocks(x, 0, f.block)).max(axis=-1)
        mbits = 6 if f.element == "int8" else F.FORMATS[f.element].mbits
        big = amax > 2.0 ** -100  # far above the E8M0 floor and the elements' subnormals
        kept = np.minimum(amax, f.element_max * s) * (1 - 2.0 ** -(mbits + 1))
        assert (d.max(axis=-1)[big] >= kept[big] * (1 - 1e-6)).all()


@given(st.lists(st.integers(0, 63), min_size=0, max_size=99), st.sampled_from([4, 6, 8]))
def test_packing_round_trip(values, bits):
    codes = np.array([v % 2**bits for v in values], np.uint8)
    packed = B.pack_codes(codes, bits)
    assert packed.size == -(-codes.size * bits // 8)
    assert np.array_equal(B.unpack_codes(packed, bits, codes.size), codes)


def test_fp4_packing_layout():
    # first code in the low nibble, as PyTorch's float4_e2m1fn_x2 and qkit's int4 packing
    assert B.pack_codes(np.array([0x1, 0xF, 0x7], np.uint8), 4).tolist() == [0xF1, 0x07]
    t = B.quantize(np.ones(32, np.float32), "mxfp4")
    assert t.element_bytes().size == 16 and t.nbytes == 17
    assert np.array_equal(B.unpack_codes(t.element_bytes(), 4, 32), t.codes.reshape(-1))
    packed6 = B.pack_codes(np.array([1, 2, 3, 4], np.uint8), 6)
    assert packed6.tolist() == [1 | 2 << 6, 2 >> 2 | 3 << 4, 3 >> 4 | 4 << 2]


def test_bits_per_element():
    x = np.ones((8, 64), np.float32)
    got = {n: B.quantize(x, n).bits_per_element for n in B.BLOCK_FORMATS}
    assert got["mxfp4"] == 4.25 and got["mxfp6_e2m3"] == 6.25 and got["mxint8"] == 8.25
    assert got["nvfp4"] == 4.5 + 32 / x.size
    assert {n: f.bits_per_element for n, f in B.BLOCK_FORMATS.items()}["nvfp4"] == 4.5


def test_gemm_mxfp4_kernel_equals_reference_and_the_float_product():
    rng = np.random.default_rng(5)
    a_codes = rng.integers(0, 16, (7, 3, 32)).astype(np.uint8)
    w_codes = rng.integers(0, 16, (5, 3, 32)).astype(np.uint8)
    a_codes[0] = 7  # +6 everywhere: the largest products
    w_codes[0] = 15  # -6
    a_scales = rng.integers(0, 255, (7, 3)).astype(np.uint8)
    w_scales = rng.integers(0, 255, (5, 3)).astype(np.uint8)
    a_scales[1] = 0  # 2^-127
    w_scales[1] = 254  # 2^127
    k = kernels.gemm_mxfp4(a_codes, a_scales, w_codes, w_scales)
    r = reference.gemm_mxfp4(a_codes, a_scales, w_codes, w_scales)
    assert k.dtype == np.float64 and np.array_equal(k, r)
    # each block's product is exact: equal to the product of the decoded values, block by block
    def values(codes, scales):
        pow2 = np.ldexp(1.0, scales.astype(np.int64) - 127)[..., None]
        return F.decode(codes, "fp4_e2m1").astype(np.float64) * pow2

    va, vw = values(a_codes, a_scales), values(w_codes, w_scales)
    direct = np.zeros((7, 5))
    for b in range(3):
        direct += va[:, b] @ vw[:, b].T
    np.testing.assert_array_equal(k, direct)


def test_mxfp4_matmul_on_tensors():
    rng = np.random.default_rng(6)
    a = B.quantize(rng.standard_normal((4, 70)).astype(np.float32), "mxfp4")
    w = B.quantize(rng.standard_normal((3, 70)).astype(np.float32), "mxfp4")
    y = B.mxfp4_matmul(a, w)
    np.testing.assert_allclose(y, a.dequantize() @ w.dequantize().T, rtol=1e-5, atol=1e-5)
    assert np.array_equal(y, B.mxfp4_matmul(a, w, reference=True))
    with pytest.raises(TypeError, match="w must be an MXFP4 BlockTensor"):
        B.mxfp4_matmul(a, B.quantize(np.ones((3, 70), np.float32), "nvfp4"))
    with pytest.raises(ValueError, match="a has 70 columns but w has 64"):
        B.mxfp4_matmul(a, B.quantize(np.ones((3, 64), np.float32), "mxfp4"))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="fmt must be one of"):
        B.quantize(np.ones(4), "mxfp3")
    with pytest.raises(ValueError, match="x contains 1 NaN or Inf"):
        B.quantize(np.array([1.0, np.nan]), "mxfp4")
    with pytest.raises(ValueError, match="x is empty"):
        B.quantize(np.zeros((0, 32)), "nvfp4")
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        B.quantize(np.ones((2, 2)), "mxfp4", axis=2)
    with pytest.raises(TypeError, match="axis must be an integer"):
        B.quantize(np.ones((2, 2)), "mxfp4", axis=1.0)
    with pytest.raises(ValueError, match="codes must be below 2\\^4"):
        B.pack_codes(np.array([16], np.uint8), 4)
    with pytest.raises(ValueError, match="count 9 needs 36 bits"):
        B.unpack_codes(np.zeros(4, np.uint8), 4, 9)
    assert B.round_to_block_format(np.float32(3.0), "mxfp4").shape == ()
    assert np.array_equal(B.round_to_block_format(np.zeros(5), "nvfp4"), np.zeros(5))
