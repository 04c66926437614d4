"""Which SIMD instructions this CPU has, as LLVM (and so numba's code) sees them.

``QKIT_DISABLE_VNNI=1`` and ``QKIT_DISABLE_AVX2=1`` switch a path off (for teaching and
testing); with ``NUMBA_DISABLE_JIT=1`` no IR kernel can run, so both report False.
`qkit.kernels.dispatch` turns these answers into the path each kernel takes.
"""

from __future__ import annotations

import os

import llvmlite.binding as llvm
import numba


def _features() -> dict:
    return llvm.get_host_cpu_features()


def vnni_available() -> bool:
    """True where the CPU has AVX-512 VNNI and the JIT is on (``QKIT_DISABLE_VNNI=1``: off)."""
    if numba.config.DISABLE_JIT or os.environ.get("QKIT_DISABLE_VNNI") == "1":
        return False
    features = _features()
    return all(features.get(f, False) for f in ("avx512f", "avx512bw", "avx512vnni"))


def avx2_available() -> bool:
    """True where the CPU has AVX2 and the JIT is on (``QKIT_DISABLE_AVX2=1``: off)."""
    if numba.config.DISABLE_JIT or os.environ.get("QKIT_DISABLE_AVX2") == "1":
        return False
    return bool(_features().get("avx2", False))
