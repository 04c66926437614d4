"""4-bit formats at equal bits per weight: each round trip checked by hand on small blocks,
scale bits counted, and the comparison on real tensors."""

import numpy as np
import pytest

from qkit.formats import blocks
from qkit.formats.nonuniform import nf_levels
from qkit.topics import lowbit as L


def test_int4_blocks_by_hand():
    x = np.array([[7.0, -3.2, 0.4, 1.0, 14.0, 2.0, -1.0, 0.0]], np.float32)
    # block 4: scales 1 and 2 (absmax / 7); 3.2 -> -3, 0.4 -> 0; 2 / 2 = 1, -1 / 2 -> -0 (even)
    np.testing.assert_array_equal(L.int4_blocks(x, 4), [[7, -3, 0, 1, 14, 2, -0.0, 0]])
    # float16 scale: 1/7 is not exact in fp16 and the result shows it
    y = L.int4_blocks(np.array([[1.0, 0.5]], np.float32), 2)
    assert y[0, 0] == np.float32(np.float16(1 / 7)) * 7 and y[0, 0] != 1.0


def test_nf4_blocks_by_hand():
    lv = nf_levels(4)
    x = np.array([[2.0, 2.0 * lv[3] + 1e-4, 0.0, -2.0]], np.float32)
    np.testing.assert_allclose(L.nf4_blocks(x, 4), [[2.0, 2 * lv[3], 0.0, -2.0]], rtol=1e-6)


def test_padding_constant_and_zero_blocks():
    x = np.full((3, 40), 0.3, np.float32)  # 40 = one block of 32 + a padded one
    for name, (fn, _) in L.METHODS.items():
        y = fn(x)
        assert y.shape == x.shape and np.isfinite(y).all(), name
    z = np.zeros((2, 64), np.float32)
    assert all((fn(z) == 0).all() for fn, _ in L.METHODS.values())


def test_bits_per_element_count_the_scales():
    assert L.bits_per_element("MXFP4") == blocks.get_block_format("mxfp4").bits_per_element == 4.25
    assert L.bits_per_element("NVFP4") == blocks.get_block_format("nvfp4").bits_per_element == 4.5
    assert L.bits_per_element("int4 g64") == L.bits_per_element("NF4 g64") == 4.25
    assert L.bits_per_element("int4 g32") == L.bits_per_element("NF4 g32") == 4.5


def test_error_table_shapes_and_bad_input(rng):
    t = {"gauss": rng.standard_normal((8, 3, 4, 4)).astype(np.float32)}
    rows = L.error_table(t)
    assert rows[0]["shape"] == (8, 3, 4, 4) and set(L.METHODS) <= set(rows[0])
    assert all(15 < rows[0][m] < 25 for m in L.METHODS)
    with pytest.raises(ValueError, match="NaN"):
        L.error_table({"bad": np.full((2, 32), np.nan)})


def test_on_gaussian_weights_nf4_beats_int4_and_finer_blocks_help(rng):
    w = rng.standard_normal((256, 512)).astype(np.float32)
    r = L.error_table({"w": w})[0]
    assert r["NF4 g64"] > r["int4 g64"] and r["NF4 g32"] > r["int4 g32"]
    assert r["int4 g32"] > r["int4 g64"]


@pytest.mark.slow
def test_real_tensor_table():
    rows = {r["tensor"]: r for r in L.error_table(L.real_tensors(16))}
    assert len(rows) == 5
    for name, r in rows.items():
        assert r["NF4 g64"] > r["MXFP4"] and r["NF4 g32"] > r["int4 g32"], name
    act = next(r for n, r in rows.items() if "activations" in n)
    assert act["NVFP4"] > act["int4 g32"] and act["MXFP4"] > act["int4 g64"]
