"""``python -m qkit bench --formats``: the format encoders and the Walsh-Hadamard transform,
each qkit kernel against its NumPy reference (and ``ml_dtypes``' cast where it exists), on the
same inputs in one run; medians of interleaved rounds, ratios printed."""

from __future__ import annotations

import numpy as np

from qkit.studies.timing import measure

N_VALUES = 10**6
FORMATS = ("fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp4_e2m1")
FWHT_SHAPE = (4096, 1024)  # rows x n


def run(rounds: int = 5, seed: int = 0) -> list[dict]:
    """One row per (op, impl): milliseconds and speed relative to the reference."""
    from qkit.formats import floats
    from qkit.kernels import fwht as fwht_kernel
    from qkit.reference import fwht as fwht_reference

    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(N_VALUES) * 4).astype(np.float32)
    rows = []
    for fmt in FORMATS:
        impls = {"qkit kernel": lambda fmt=fmt: floats.encode(x, fmt),
                 "numpy reference": lambda fmt=fmt: floats.encode(x, fmt, reference=True)}
        try:
            import ml_dtypes

            dt = getattr(ml_dtypes, floats.get_format(fmt).ml_dtypes_name)
            impls["ml_dtypes astype"] = lambda dt=dt: x.astype(dt)
        except ImportError:
            pass
        rows += _rows(f"encode {fmt}", f"{N_VALUES:,} float32", measure(impls, rounds))
    h = rng.integers(-100, 100, FWHT_SHAPE).astype(np.float64)
    assert np.array_equal(fwht_kernel(h), fwht_reference(h))  # exact on integers: same numbers
    med = measure({"qkit kernel": lambda: fwht_kernel(h),
                   "numpy reference": lambda: fwht_reference(h)}, rounds)
    rows += _rows("fwht", f"{FWHT_SHAPE[0]} x {FWHT_SHAPE[1]}", med)
    return rows


def _rows(op: str, shape: str, med: dict) -> list[dict]:
    ref = med["numpy reference"]
    return [{"op": op, "shape": shape, "impl": k, "ms": round(v * 1e3, 3),
             "speedup_vs_reference": round(ref / v, 2)} for k, v in med.items()]


def format_table(rows: list[dict]) -> str:
    head = f"{'op':<18}{'input':<18}{'impl':<18}{'ms':>10}{'vs reference':>14}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['op']:<18}{r['shape']:<18}{r['impl']:<18}{r['ms']:>10.2f}"
                     f"{r['speedup_vs_reference']:>13.1f}x")
    return "\n".join(lines)
