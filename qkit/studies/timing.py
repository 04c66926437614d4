"""Timing with the rules every figure in qkit follows: threads set for every library at once,
one untimed call before each timed block, interleaved rounds, medians; and this CPU's int8
peak, measured by a register-only loop (`qkit.kernels.simd.peak`).
"""

from __future__ import annotations

import time

import numpy as np

from qkit.kernels.simd.cpu import vnni_available
from qkit.kernels.simd.peak import CHAINS, run_vpdpbusd, run_vpmaddwd


def set_threads(n: int) -> None:
    """Use ``n`` threads in numba, PyTorch and NumPy's BLAS."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def measure(impls: dict, rounds: int, min_time: float = 0.05) -> dict[str, float]:
    """Median seconds per call of each callable, timed in interleaved rounds.

    Each timed block is preceded by one untimed call: on this 2-vCPU machine the
    first parallel call after another library ran is up to 2x slower (its worker
    threads, or the idle vCPU itself, have to wake up), and that is not what we time.
    """
    reps = {}
    for name, f in impls.items():  # warm-up (and JIT) + pick repeats per round
        f()
        t0 = time.perf_counter()
        f()
        reps[name] = max(1, int(min_time / max(time.perf_counter() - t0, 1e-7)))
    times = {name: [] for name in impls}
    for _ in range(rounds):
        for name, f in impls.items():
            f()  # untimed: wakes this library's threads
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                f()
            times[name].append((time.perf_counter() - t0) / reps[name])
    return {name: float(np.median(t)) for name, t in times.items()}


def int8_peak_gops(seconds: float = 0.2) -> tuple[float, str]:
    """Measured single-core int8 GOP/s of the exact path qkit uses, and that path's name."""
    if vnni_available():
        run, ops, name = run_vpdpbusd, CHAINS * 64 * 2, "vpdpbusd zmm (AVX-512 VNNI)"
    else:
        run, ops, name = run_vpmaddwd, CHAINS * 16 * 2, "vpmaddwd + vpaddd ymm (AVX2)"
    run(10)
    iters = 1000
    while True:
        t0 = time.perf_counter()
        run(iters)
        dt = time.perf_counter() - t0
        if dt > seconds / 5:
            break
        iters *= 4
    best = min(_timed(run, iters) for _ in range(5))
    return float(iters * ops / best / 1e9), name


def _timed(run, iters):
    t0 = time.perf_counter()
    run(iters)
    return time.perf_counter() - t0
