"""Timing the GEMM versions of the 'making int8 fast' notebook, and the roofline arithmetic."""

from __future__ import annotations

import numpy as np

from qkit.kernels import versions as book
from qkit.studies.timing import measure

# the versions of qkit.kernels.versions notebook 04 times (1, Python loops, only on request)
SHOWN = (2, 3, 4, 5, 6)


def versions(m: int, k: int, n: int, seed: int = 0, python: bool = False) -> dict:
    """Zero-argument callables for each version of `qkit.kernels.versions` this CPU runs, on
    one (M,K) x (K,N) problem, each checked against the reference; plus NumPy fp32."""
    numbers = ((1,) if python else ()) + SHOWN
    a, w = book.operands(3, m, k, n, seed)
    impls = {}
    for number in numbers:
        if book.available(number):
            impls[f"{number}. {book.module(number).TITLE}"] = book.checked(number, a, w)
    a_f, bt_f = a.astype(np.float32), np.ascontiguousarray(w.T).astype(np.float32)
    impls["numpy fp32"] = lambda: a_f @ bt_f
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
    faster arithmetic does. Results are checked before timing (`qkit.studies.bench.gemm_impls`)."""
    from qkit.studies.bench import gemm_impls

    out = {}
    for m, k, n in shapes:
        impls = {name: f for name, f in gemm_impls(m, k, n).items() if "plain" not in name}
        seconds = measure(impls, rounds, min_time=0.02)
        out[(m, k, n)] = {name: 2.0 * m * k * n / s / 1e9 for name, s in seconds.items()}
    return out
