"""Timing with the rules every figure in qkit follows: threads set for every library at once,
one untimed call before each timed block, interleaved rounds, medians; and this CPU's int8
peak, measured by a register-only loop (`qkit.kernels.simd.peak`).
"""

from __future__ import annotations

import contextlib
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


def threads_now() -> int:
    """The thread count numba's parallel kernels use now."""
    import numba

    return int(numba.get_num_threads())


@contextlib.contextmanager
def using_threads(n: int):
    """``with using_threads(n):`` numba, PyTorch and every BLAS use ``n`` threads, and get
    their previous counts back afterwards."""
    import numba
    from threadpoolctl import threadpool_limits

    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    before = numba.get_num_threads()
    try:
        import torch

        torch_before = torch.get_num_threads()
    except ImportError:
        torch = None
    with threadpool_limits(int(n)):
        numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
        if torch is not None:
            torch.set_num_threads(int(n))
        try:
            yield int(n)
        finally:
            numba.set_num_threads(before)
            if torch is not None:
                torch.set_num_threads(torch_before)


def measure(impls: dict, rounds: int, min_time: float = 0.05,
            threads: int | None = None) -> dict[str, float]:
    """Median seconds per call of each callable, timed in interleaved rounds.

    With ``threads`` every library (numba, BLAS, PyTorch) uses that many threads while
    timing (`using_threads`); without it, whatever each library is set to now.

    Each timed block is preceded by one untimed call: on this 2-vCPU machine the
    first parallel call after another library ran is up to 2x slower (its worker
    threads, or the idle vCPU itself, have to wake up), and that is not what we time.
    """
    if threads is not None:
        with using_threads(threads):
            return measure(impls, rounds, min_time)
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


def best_of_threads(impls: dict, rounds: int, threads: int, min_time: float = 0.05) -> dict:
    """``{name: (seconds, threads)}``: each callable timed with ``threads`` threads and with
    one, keeping the faster.

    Small problems can run slower on two threads than on one: waking a second thread costs
    tens of microseconds, and one library's idle threads spin on the cores another library
    needs (OpenBLAS's GEMV at K = N = 512 measured 104 GOP/s on one thread and 7.7 on two).
    A figure taken on the worse count would blame the kernel for the threading.
    """
    one = measure(impls, rounds, min_time, threads=1)
    if threads == 1:
        return {name: (s, 1) for name, s in one.items()}
    many = measure(impls, rounds, min_time, threads=threads)
    return {name: (many[name], threads) if many[name] <= one[name] else (one[name], 1)
            for name in impls}


def implausible(gops: dict, peak_gops: float, threads: int, slack: float = 1.15) -> dict:
    """The figures no core could reach, with the reason: more GOP/s than ``threads`` times the
    measured single-core int8 peak (``slack`` allows for turbo and timer noise), zero, or not
    finite. Such a figure means the timing went wrong (a timer too coarse, a kernel that did
    no work), not that the code is fast; `check_plausible` refuses it."""
    limit = peak_gops * threads * slack
    return {name: (f"{value:.4g} GOP/s against a ceiling of {limit:.4g} ({threads} x the "
                   f"measured peak {peak_gops:.4g})")
            for name, value in gops.items()
            if not np.isfinite(value) or value <= 0 or value > limit}


def check_plausible(gops: dict, peak_gops: float, threads: int, slack: float = 1.15) -> None:
    """Raise RuntimeError naming the first figure `implausible` finds."""
    for name, why in implausible(gops, peak_gops, threads, slack).items():
        raise RuntimeError(f"implausible timing for {name!r}: {why}; not reported")


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
