"""The one place that decides which kernel family runs: the VNNI micro-kernels where the CPU
has AVX-512 VNNI, else the AVX2 ones, else the plain numba loops.

Every public kernel reads ``dispatch.USE_VNNI`` / ``dispatch.USE_AVX2`` when it is called
(the tests set them to run each family the CPU can execute). ``QKIT_ISA`` chooses a family
by name for teaching and testing (``avx512vnni``, ``avx2`` or ``plain``); it must be one the
CPU can execute. `reason` says why the family was chosen (``python -m qkit doctor``).
"""

from __future__ import annotations

import os

from qkit.kernels.simd.cpu import avx2_available, vnni_available

FAMILIES = ("avx512vnni", "avx2", "plain")
NOT_BUILT = ("avxvnni", "neon")  # named by QKIT_ISA's documentation, no kernels yet


def choose(requested: str | None = None) -> tuple[str, str]:
    """(family, why) for this CPU, or for ``requested`` (default: ``$QKIT_ISA``)."""
    if requested is None:
        requested = os.environ.get("QKIT_ISA", "")
    requested = requested.strip().lower()
    can = {"avx512vnni": vnni_available(), "avx2": avx2_available(), "plain": True}
    if requested:
        if requested in NOT_BUILT:
            raise ValueError(f"QKIT_ISA={requested!r}: qkit has no {requested} kernels yet; "
                             f"one of {FAMILIES}")
        if requested not in can:
            raise ValueError(f"QKIT_ISA={requested!r} is not a kernel family; one of "
                             f"{FAMILIES}")
        if not can[requested]:
            raise ValueError(f"QKIT_ISA={requested!r}: this CPU (or NUMBA_DISABLE_JIT / "
                             f"QKIT_DISABLE_*) cannot run it; it can run "
                             f"{[f for f in FAMILIES if can[f]]}")
        return requested, f"QKIT_ISA={requested}"
    if can["avx512vnni"]:
        return "avx512vnni", "the CPU has AVX-512 F, BW and VNNI (vpdpbusd on zmm)"
    if can["avx2"]:
        return "avx2", "the CPU has AVX2 but not AVX-512 VNNI (vpmaddwd)"
    return "plain", "no AVX2 or AVX-512 VNNI here (or the JIT is off): portable numba loops"


FAMILY, REASON = choose()
USE_VNNI = FAMILY == "avx512vnni"
USE_AVX2 = FAMILY == "avx2"


def path() -> str:
    """The family the kernels take on this CPU: ``"avx512vnni"``, ``"avx2"`` or ``"plain"``."""
    return "avx512vnni" if USE_VNNI else "avx2" if USE_AVX2 else "plain"


def reason() -> str:
    """Why `path` was chosen (the environment variable, or the CPU features that decided)."""
    return REASON if path() == FAMILY else "set by the caller (dispatch.USE_VNNI / USE_AVX2)"
