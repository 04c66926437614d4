"""``python -m qkit doctor``: this machine as qkit sees it — the CPU, the SIMD features that
decide the kernel family, the family chosen and why, what ``QKIT_ISA`` could choose instead,
and the numba set-up. Nothing is timed; it takes well under a second once kernels are cached.
"""

from __future__ import annotations

import os
import platform

FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512vnni", "avxvnni")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report() -> dict:
    """What `main` prints, as data."""
    import llvmlite.binding as llvm
    import numba

    from qkit.kernels import dispatch

    feats = llvm.get_host_cpu_features()
    runnable = []
    for family in dispatch.FAMILIES:
        try:
            dispatch.choose(family)
            runnable.append(family)
        except ValueError:
            pass
    return {"cpu": cpu_name(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "features": {f: bool(feats.get(f, False)) for f in FEATURES},
            "family": dispatch.path(), "why": dispatch.reason(), "runnable": runnable,
            "not_built": list(dispatch.NOT_BUILT), "numba": numba.__version__,
            "jit": not numba.config.DISABLE_JIT, "threads": numba.get_num_threads(),
            "cache": os.environ.get("NUMBA_CACHE_DIR", "beside the sources (__pycache__)")}


def main(argv=None) -> int:
    r = report()
    yes = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in r["features"].items())
    print(f"CPU            {r['cpu']} ({r['machine']}, {r['cpus']} logical CPUs)")
    print(f"features       {yes}")
    print(f"kernels        {r['family']}: {r['why']}")
    print(f"can run        {', '.join(r['runnable'])}   (choose one with QKIT_ISA=NAME)")
    print(f"not built yet  {', '.join(r['not_built'])}")
    print(f"numba          {r['numba']}, JIT {'on' if r['jit'] else 'off'}, "
          f"{r['threads']} threads, cache {r['cache']}")
    return 0
