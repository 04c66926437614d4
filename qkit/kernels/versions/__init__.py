"""The same int8 GEMM, version by version: from three Python loops to the VNNI micro-kernel.

=====  ===========================  ======================================================
  1    `v1_python`                  the definition, in Python
  2    `v2_strided`                 compiled, B stored (K, N): strided loads
  3    `v3_k_contiguous`            B stored (N, K): contiguous, vectorized, parallel
  4    `v4_register_tile`           packed panels and a register tile, in plain numba
  5    `v5_vnni`                    the tile in LLVM IR: ``vpdpbusd`` on zmm registers
  6    `v6_avx2`                    the same idea with AVX2's ``vpmaddwd`` (no VNNI)
  7    `v7_int4`                    int4 weights unpacked in registers
=====  ===========================  ======================================================

Each file opens with what changed since the previous version and why it is faster. Every
version is checked against `qkit.reference.gemm` before it is timed::

    python -m qkit.kernels.versions 4            # check and time version 4
    python -m qkit.kernels.versions --all        # every version this CPU can run
"""

from __future__ import annotations

from importlib import import_module

import numpy as np

from qkit import reference

MODULES = ["v1_python", "v2_strided", "v3_k_contiguous", "v4_register_tile", "v5_vnni",
           "v6_avx2", "v7_int4"]


def module(number: int):
    """The module of version ``number`` (1-based)."""
    if not isinstance(number, int) or not 1 <= number <= len(MODULES):
        raise ValueError(f"number must be a version from 1 to {len(MODULES)}, got {number!r}")
    return import_module(f"{__name__}.{MODULES[number - 1]}")


def available(number: int) -> bool:
    """Whether this CPU (and the JIT setting) can run version ``number``."""
    check = getattr(module(number), "available", None)
    return True if check is None else bool(check())


def operands(number: int, m: int, k: int, n: int, seed: int = 0):
    """Seeded uint8 activations (M,K) and int8 weights (N,K) in the version's weight range."""
    rng = np.random.default_rng(seed)
    w_min, w_max = getattr(module(number), "WEIGHT_RANGE", (-127, 127))
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = rng.integers(w_min, w_max + 1, (n, k), dtype=np.int8)
    return a, w


def source(number: int) -> str:
    """The code of version ``number``, as a student reads it (its file, opening with what
    changed since the version before)."""
    from pathlib import Path

    return Path(module(number).__file__).read_text()


def checked(number: int, a, w, rows: int | None = None):
    """Version ``number``'s zero-argument ``a @ w.T``, after checking it gives exactly
    `qkit.reference.gemm`'s integers (raises AssertionError otherwise): on every row, or on the
    first ``rows`` (the reference is slow on big problems; every row is in the tests)."""
    if not available(number):
        raise RuntimeError(f"version {number} ({MODULES[number - 1]}) cannot run on this CPU")
    run = module(number).prepare(a, w)
    r = len(a) if rows is None else max(1, min(int(rows), len(a)))
    if not np.array_equal(np.asarray(run())[:r], reference.gemm(a[:r], w)):
        raise AssertionError(f"version {number} ({MODULES[number - 1]}) gives different "
                             "integers from qkit.reference.gemm; refusing to time it")
    return run
