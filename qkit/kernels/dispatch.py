"""The one place that decides which kernel family runs: the VNNI micro-kernels where the CPU
has AVX-512 VNNI, else the AVX2 ones, else the plain numba loops.

Every public kernel reads ``dispatch.USE_VNNI`` / ``dispatch.USE_AVX2`` when it is called
(the tests set them to run each family the CPU can execute).
"""

from __future__ import annotations

from qkit.kernels.simd.cpu import avx2_available, vnni_available

USE_VNNI = vnni_available()
USE_AVX2 = not USE_VNNI and avx2_available()


def path() -> str:
    """The family the kernels take on this CPU: ``"avx512vnni"``, ``"avx2"`` or ``"plain"``."""
    return "avx512vnni" if USE_VNNI else "avx2" if USE_AVX2 else "plain"
