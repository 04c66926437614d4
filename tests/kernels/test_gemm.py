"""GEMMs: every gemm kernel family against the reference, packed weights, the AVX2
int16 bound, int4 and codebook GEMMs.

Every numba kernel equals its NumPy reference, integer for integer: random shapes (1x1,
odd sizes, non-contiguous views), extreme values and hypothesis properties. These modules
also run with ``NUMBA_DISABLE_JIT=1`` (``make test``), which catches missing casts.
"""

import inspect

import numpy as np
import pytest
from kernel_cases import PAIRS, PATHS, S8, U8, assert_same, ints, use_path

import qkit.kernels as K
import qkit.reference as R
from qkit.kernels import avx2, loops, packing
from qkit.kernels.avx2 import int16_steps as avx2_int16_steps
from qkit.kernels.simd.cpu import avx2_available

pytestmark = pytest.mark.nojit


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


