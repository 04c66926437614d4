"""The NumPy model of the SIMD instructions (`qkit.reference.simd`) against the IR kernels:
one VNNI tile and one AVX2 tile computed by the emitted instructions equal the model
instruction by instruction, and the model's packed layout is the kernels' layout."""

import numpy as np
import pytest

from qkit import reference
from qkit.kernels import avx2, packing
from qkit.kernels.simd.cpu import avx2_available, vnni_available
from qkit.kernels.vnni import gemm as vnni_gemm
from qkit.reference import simd

pytestmark = pytest.mark.nojit


def test_vpdpbusd_by_hand():
    a = np.zeros(64, np.uint8)
    b = np.zeros(64, np.int8)
    a[:4], b[:4] = (1, 2, 3, 255), (1, -1, 2, -128)  # lane 0: 1 - 2 + 6 - 32640
    acc = np.full(16, 10, np.int32)
    out = simd.vpdpbusd(acc, a, b)
    assert out[0] == 10 + 1 - 2 + 6 - 255 * 128 and (out[1:] == 10).all()


def test_vpmaddubsw_saturates_and_vpmaddwd_does_not():
    a, b = np.full(32, 255, np.uint8), np.full(32, 127, np.int8)
    assert (simd.vpmaddubsw(a, b) == 32767).all()  # 2 * 255 * 127 = 64770 saturates
    assert (simd.vpmaddwd(a[:16].astype(np.int16), b[:16].astype(np.int16)) == 64770).all()


@pytest.mark.parametrize("n,k", [(32, 4), (40, 13), (7, 64)])
def test_panel_layout_is_the_kernels(rng, n, k):
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    assert np.array_equal(simd.pack_panels(w), packing.PackedWeights(w).panels)


@pytest.mark.parametrize("rows", [8, 4, 1])
def test_one_vnni_ir_tile_equals_the_model(rng, rows):
    if not vnni_available():
        pytest.skip("no AVX-512 VNNI on this CPU (or JIT off)")
    k = 36
    a = rng.integers(0, 256, (rows, k), dtype=np.uint8)
    w = rng.integers(-128, 128, (32, k), dtype=np.int8)
    packed = packing.PackedWeights(w)
    out = np.zeros((rows, 32), np.int32)
    vnni_gemm._gemm_vnni(a, packed.panels, out)  # one panel, one tile of `rows` rows
    model = simd.vnni_tile(a, simd.pack_panels(w), 0, 0, rows)
    assert np.array_equal(out, model)
    assert np.array_equal(model, reference.gemm(a, w))


def test_one_avx2_ir_tile_equals_the_model(rng):
    if not avx2_available():
        pytest.skip("no AVX2 on this CPU (or JIT off)")
    rows, k = 6, 22
    a = rng.integers(-128, 128, (rows, k), dtype=np.int8)
    w = rng.integers(-128, 128, (16, k), dtype=np.int8)
    pairs = packing.pack_pairs(w, np.int16)
    out = np.zeros((rows, 16), np.int32)
    avx2.gemm_madd_wd(a.astype(np.int16), pairs, out)
    assert np.array_equal(out, simd.avx2_tile(a.astype(np.int16), pairs, 0, 0, rows))
    assert np.array_equal(out, reference.gemm(a, w))


def test_gemm_over_panels_is_the_gemm(rng):
    a = rng.integers(0, 256, (11, 30), dtype=np.uint8)
    w = rng.integers(-128, 128, (45, 30), dtype=np.int8)
    a_u = np.zeros((11, 32), np.uint8)
    a_u[:, :30] = a
    assert np.array_equal(simd.gemm_panels(a_u, simd.pack_panels(w), 45), reference.gemm(a, w))
