"""Timing the GEMM versions of the 'making int8 fast' notebook, and the roofline arithmetic."""

from __future__ import annotations

import numpy as np

from qkit import kernels
from qkit.bench import measure
from qkit.kernels import teaching
from qkit.kernels.avx2 import avx2_available, gemm_avx2
from qkit.kernels.gemms import _gemm_plain


def versions(m: int, k: int, n: int, seed: int = 0, python: bool = False) -> dict:
    """Zero-argument callables for each version on one (M,K) x (K,N) problem, checked equal."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = rng.integers(-127, 128, (n, k), dtype=np.int8)
    b_kn = np.ascontiguousarray(w.T)
    packed = kernels.pack_weights(w)
    out = np.empty((m, n), np.int32)
    a_f, bt_f = a.astype(np.float32), b_kn.astype(np.float32)
    impls = {}
    if python:
        impls["python loops"] = lambda: teaching.gemm_python(a, w)
    impls.update({
        "numba, B strided": lambda: teaching.gemm_strided(a, b_kn, out) or out,
        "numba, K contiguous": lambda: _gemm_plain(a, w),
        "qkit int8 (packed)": lambda: kernels.gemm_packed(a, packed),
    })
    if avx2_available():  # the micro-kernel of CPUs without VNNI (on them, the same as above)
        impls["AVX2 vpmaddwd (packed)"] = lambda: gemm_avx2(a, packed, "int32")
    impls["numpy fp32"] = lambda: a_f @ bt_f
    exact = kernels.gemm(a, w)
    for name, f in impls.items():
        got = np.asarray(f())
        same = np.array_equal(got, exact) if "fp32" not in name else np.allclose(got, exact)
        if not same:
            raise AssertionError(f"{name} gives a different result")
    return impls


def gops(m: int, k: int, n: int, rounds: int = 3, python: bool = False) -> dict[str, float]:
    """Measured GOP/s (2 M K N operations per call) of each version, interleaved medians."""
    impls = versions(m, k, n, python=python)
    seconds = measure(impls, rounds, min_time=0.02)
    return {name: 2.0 * m * k * n / s / 1e9 for name, s in seconds.items()}


def arithmetic_intensity(m: int, k: int, n: int, weight_bytes: float, act_bytes: float) -> float:
    """Operations per byte moved when each operand is read once and the output written once
    (int32/fp32 outputs: 4 bytes). GEMV (m = 1) reads each weight for a single use."""
    moved = n * k * weight_bytes + m * k * act_bytes + 4 * m * n
    return 2.0 * m * k * n / moved


def memory_vs_compute(shapes=((1, 4096, 4096), (256, 1024, 1024)), rounds: int = 3) -> dict:
    """GOP/s of qkit int8 (and int4 for GEMV), NumPy fp32 and PyTorch (if installed) on a
    weight-bound GEMV and a compute-bound GEMM: where int8's 4x fewer bytes pay and where only
    faster arithmetic does. Results are checked before timing (`qkit.bench.gemm_impls`)."""
    from qkit.bench import gemm_impls

    out = {}
    for m, k, n in shapes:
        impls = {name: f for name, f in gemm_impls(m, k, n).items() if "plain" not in name}
        seconds = measure(impls, rounds, min_time=0.02)
        out[(m, k, n)] = {name: 2.0 * m * k * n / s / 1e9 for name, s in seconds.items()}
    return out
