"""Non-uniform grids: NF4 bit for bit, k-means and log levels, codebook bytes and the
lookup-table GEMM."""

import numpy as np
import pytest

from qkit import reference
from qkit.formats import nonuniform

QLORA_NF4 = np.array([-1.0, -0.6961928, -0.52507305, -0.39491749, -0.28444138, -0.18477343,
                      -0.09105004, 0.0, 0.0795803, 0.1609302, 0.2461123, 0.33791524, 0.44070983,
                      0.562617, 0.72295684, 1.0], np.float32)


def test_nf4_is_qloras_table():
    assert np.abs(nonuniform.nf_levels(4) - QLORA_NF4).max() < 2e-7
    for bits in (2, 3, 5):
        v = nonuniform.nf_levels(bits)
        assert v.size == 2**bits and 0.0 in v and v.min() == -1 and v.max() == 1


def test_uniform_and_log_levels():
    assert np.array_equal(nonuniform.uniform_levels(3) * 3, np.arange(-3, 4))
    assert np.array_equal(nonuniform.log_levels(3), [-1, -0.5, -0.25, 0, 0.25, 0.5, 1])


def test_nearest_sends_ties_down():
    levels = np.array([-1.0, 0.0, 1.0], np.float32)
    assert list(nonuniform.nearest(np.array([-0.5, 0.5, 0.49, 0.51]), levels)) == [0, 1, 1, 2]


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_fitted_grids_beat_uniform_on_gaussian_weights(bits):
    w = np.random.default_rng(bits).normal(size=(64, 256)).astype(np.float32)
    db = {g: nonuniform.report(w, g, bits)["sqnr_db"] for g in nonuniform.GRIDS}
    assert db["kmeans"] > db["uniform"] + 1
    assert db["nf"] > db["uniform"] or bits == 2  # NF2 has only 4 asymmetric levels


def test_codebook_bytes_and_block_scales():
    w = np.random.default_rng(0).normal(size=(10, 130)).astype(np.float32)
    cw = nonuniform.quantize(w, "nf", 4, block=64)
    assert cw.scales.shape == (10, 3)  # 130 = 64 + 64 + 2
    assert cw.nbytes() == 10 * 130 // 2 + 4 * 16 + 4 * 30
    w_hat = cw.dequantize()
    assert w_hat.shape == w.shape
    # every block's absmax is exactly representable (level +-1 times its scale)
    assert np.allclose(np.abs(w_hat[:, :64]).max(axis=1), np.abs(w[:, :64]).max(axis=1))


@pytest.mark.parametrize("grid", nonuniform.GRIDS)
@pytest.mark.parametrize("block", [None, 64])
def test_lut_matmul_matches_the_dequantized_product(grid, block):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(48, 200)).astype(np.float32)
    cw = nonuniform.quantize(w, grid, 3, block)
    x_q = rng.integers(0, 256, (7, 200)).astype(np.uint8)
    fast = nonuniform.lut_matmul(x_q, 0.05, 100, cw)
    # the same computation on the readable NumPy kernel gives the same floats (integer sums equal)
    assert np.array_equal(fast, nonuniform.lut_matmul(x_q, 0.05, 100, cw, backend=reference))
    c, unit = nonuniform.integer_codebook(cw.levels, min(cw.block, 200))
    per_weight = np.repeat(cw.scales, cw.block, axis=1)[:, :200]
    w_int = c[cw.idx].astype(np.float64) * unit * per_weight
    ref = ((x_q.astype(np.float64) - 100) * 0.05) @ w_int.T
    assert np.allclose(fast, ref, rtol=1e-5, atol=1e-4)
    exact = ((x_q.astype(np.float64) - 100) * 0.05) @ cw.dequantize().T.astype(np.float64)
    assert np.abs(fast - exact).max() < 1e-3 * np.abs(exact).max()


def test_integer_codebook_respects_int32():
    c, unit = nonuniform.integer_codebook(nonuniform.nf_levels(4), k=1280)
    assert 255 * 1280 * int(np.abs(c).max()) <= 2**31 - 1
    assert np.abs(c * unit - nonuniform.nf_levels(4)).max() <= unit / 2 + 1e-9


@pytest.mark.parametrize("bad,err", [
    (dict(w=np.array([[np.nan, 1.0]])), ValueError),
    (dict(w=np.ones((0, 4))), ValueError),
    (dict(w=np.ones(4)), ValueError),
    (dict(grid="float"), ValueError),
    (dict(bits=1), ValueError),
    (dict(bits=9), ValueError),
    (dict(bits=3.0), TypeError),
    (dict(block=0), ValueError),
])
def test_quantize_refuses_bad_input(bad, err):
    args = dict(w=np.ones((4, 8), np.float32), grid="nf", bits=4, block=None)
    args.update(bad)
    with pytest.raises(err):
        nonuniform.quantize(**args)


def test_constant_and_zero_rows_do_not_break():
    w = np.zeros((3, 8), np.float32)
    w[1] = 2.5
    for grid in nonuniform.GRIDS:
        w_hat = nonuniform.quantize(w, grid, 3).dequantize()
        assert np.isfinite(w_hat).all() and np.allclose(w_hat[0], 0)
