"""Timing the GEMM versions of the 'making int8 fast' notebook, and the roofline arithmetic."""

from __future__ import annotations

import numpy as np

from qkit.kernels import versions as book
from qkit.studies.timing import best_of_threads, threads_now

# the versions of qkit.kernels.versions notebook 04 times (1, Python loops, only on request)
SHOWN = (2, 3, 4, 5, 6, 7)


# the slowest versions are timed on the first rows of A only, so that one call stays within
# this many operations (their speed per row does not depend on M: no reuse across rows)
ROW_BUDGET = {1: 2e5, 2: 2e7}
CHECKED_ROWS = 64  # rows of every result compared with the reference before it is timed


def rows_timed(number: int, m: int, k: int, n: int) -> int:
    """How many of the M rows version ``number`` is timed on (all of them, except for the
    slow versions of `ROW_BUDGET`)."""
    if number not in ROW_BUDGET:
        return m
    return int(max(1, min(m, ROW_BUDGET[number] // (2 * k * n))))


def versions(m: int, k: int, n: int, seed: int = 0, python: bool = False) -> dict:
    """Zero-argument callables for each version of `qkit.kernels.versions` this CPU runs, on
    one (M,K) x (K,N) problem, each checked against the reference; plus NumPy fp32. A slow
    version runs on `rows_timed` rows (its name says so when that is fewer than M)."""
    numbers = ((1,) if python else ()) + SHOWN
    impls = {}
    for number in numbers:
        if book.available(number):  # same shape and seed; weights in the version's range
            a, w = book.operands(number, m, k, n, seed)
            rows = rows_timed(number, m, k, n)
            name = f"{number}. {book.module(number).TITLE}"
            if rows < m:
                name += f" [{rows} of {m} rows]"
            impls[name] = book.checked(number, a[:rows], w, rows=CHECKED_ROWS)
    a, w = book.operands(3, m, k, n, seed)
    a_f, bt_f = a.astype(np.float32), np.ascontiguousarray(w.T).astype(np.float32)
    impls["numpy fp32"] = lambda: a_f @ bt_f
    return impls


def _rows(name: str, m: int) -> int:
    if name.endswith(" rows]"):
        return int(name.rsplit("[", 1)[1].split()[0])
    return m


def gops(m: int, k: int, n: int, rounds: int = 3, python: bool = False,
         threads: int | None = None) -> dict[str, float]:
    """Measured GOP/s (2 M K N operations per call) of each version, interleaved medians, each
    on the better of ``threads`` (default: numba's current count) and one thread."""
    return {name: g for name, (g, _) in gops_and_threads(m, k, n, rounds, python,
                                                         threads).items()}


def gops_and_threads(m: int, k: int, n: int, rounds: int = 3, python: bool = False,
                     threads: int | None = None) -> dict[str, tuple[float, int]]:
    """``{name: (GOP/s, threads it ran on)}``: `gops` with the thread count each figure took
    (`qkit.studies.timing.best_of_threads`)."""
    impls = versions(m, k, n, python=python)
    timed = best_of_threads(impls, rounds, threads or threads_now(), min_time=0.02)
    return {name: (2.0 * _rows(name, m) * k * n / s / 1e9, t)
            for name, (s, t) in timed.items()}


def arithmetic_intensity(m: int, k: int, n: int, weight_bytes: float, act_bytes: float) -> float:
    """Operations per byte moved when each operand is read once and the output written once
    (int32/fp32 outputs: 4 bytes). GEMV (m = 1) reads each weight for a single use."""
    moved = n * k * weight_bytes + m * k * act_bytes + 4 * m * n
    return 2.0 * m * k * n / moved


def memory_vs_compute(shapes=((1, 4096, 4096), (256, 1024, 1024)), rounds: int = 3) -> dict:
    """GOP/s of qkit int8 (and int4 for GEMV), NumPy fp32 and PyTorch (if installed) on a
    weight-bound GEMV and a compute-bound GEMM: where int8's 4x fewer bytes pay and where only
    faster arithmetic does. Each on the better of all cores and one (`best_of_threads`).
    Results are checked before timing (`qkit.studies.bench.gemm_impls`)."""
    from qkit.studies.bench import gemm_impls

    out = {}
    for m, k, n in shapes:
        impls = {name: f for name, f in gemm_impls(m, k, n).items() if "plain" not in name}
        timed = best_of_threads(impls, rounds, threads_now(), min_time=0.02)
        out[(m, k, n)] = {name: 2.0 * m * k * n / s / 1e9 for name, (s, _) in timed.items()}
    return out
