"""What the kernel tests share: seeded integer arrays, exact comparison, and running one
kernel family (plain loops, AVX2, VNNI) where the CPU has it."""

import numpy as np
import pytest

import qkit.kernels as K
from qkit.kernels import dispatch
from qkit.kernels.simd.cpu import avx2_available, vnni_available

PAIRS = [n for n in K.__all__
         if n not in ("warmup", "gemm_packed", "pack_conv", "pack_weights", "pack_weights_int4",
                      "block_dot_packed", "pack_blocks", "block_dot_q8_packed", "pack_q8")]
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
