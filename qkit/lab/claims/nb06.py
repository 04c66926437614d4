"""Claims of notebook 06 (non-uniform grids): the grid explorer on the MobileNetV2 classifier,
and the lookup-table kernel's speed."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.kernels.simd.cpu import vnni_available
from qkit.lab.claims import claim, measured


@cache
def _w():
    from qkit import data

    return data.real_weight()


@cache
def _grids(bits, block=None):
    from qkit.formats import nonuniform

    return nonuniform.compare_grids(_w(), bits, block)


def _db(bits, grid, block=None):
    return _grids(bits, block)[grid][0]["sqnr_db"]


@claim("06", "3 bits on the MobileNetV2 classifier: which grid wins, and by how many dB?")
def _three_bits():
    s = {g: _db(3, g) for g in _grids(3)}
    best = max(s, key=s.get)
    return measured(best == "kmeans" and s[best] - s["uniform"] > 3,
                    ", ".join(f"{g} {v:.1f}" for g, v in s.items()) + f" dB: {best} wins by "
                    f"{s[best] - s['uniform']:.1f} dB over uniform")


@claim("06", "Raise the bits to 6: does the gap between uniform and k-means grow or shrink?")
def _six_bits():
    gaps = {b: _db(b, "kmeans") - _db(b, "uniform") for b in (3, 6)}
    return measured(gaps[6] < gaps[3] / 3, f"k-means over uniform: {gaps[3]:.1f} dB at 3 bits, "
                                           f"{gaps[6]:.1f} at 6 (it shrinks)")


@claim("06", "Switch the scales to blocks of 64: uniform and NF both gain (more scales, finer "
             "fit) but pay about half a bit more per weight (a float32 scale per 64 weights).")
def _blocks():
    gain = {g: _db(3, g, 64) - _db(3, g) for g in ("uniform", "nf")}
    bpw = _grids(3, 64)["uniform"][0]["bits_per_weight"] - _grids(3)["uniform"][0][
        "bits_per_weight"]
    return measured(min(gain.values()) > 0.5 and 0.45 < bpw <= 0.5 and 32 / 64 == 0.5,
                    f"gains uniform {gain['uniform']:+.1f}, NF {gain['nf']:+.1f} dB at 3 bits; "
                    f"+{bpw:.3f} bits per weight")


def _errors(grid, bits=4):
    """Mean squared error of the weights near zero (|w| < 5% of max) and in the tails (> 50%)."""
    w = _w().ravel()
    err = (_grids(bits)[grid][1].ravel() - w) ** 2
    a = np.abs(w) / np.abs(w).max()
    return float(err[a < 0.05].mean()), float(err[a > 0.5].mean())


@claim("06", "Log grids: excellent near zero, poor in the tails. Where do the red spikes thin out?")
def _log():
    (lz, lt), (uz, ut) = _errors("log"), _errors("uniform")
    return measured(lz < uz / 4 and lt > 4 * ut,
                    f"4 bits, MSE near zero: log {lz:.2e} vs uniform {uz:.2e}; in the tails: log "
                    f"{lt:.2e} vs uniform {ut:.2e}")


@claim("06", "At the same bit width, grids fitted to the weights (k-means, NF) beat the uniform "
             "grid by several dB at 3-4 bits; the advantage fades as bits grow.")
def _fitted():
    gains = {(g, b): _db(b, g) - _db(b, "uniform") for g in ("kmeans", "nf") for b in (3, 4, 6)}
    ok = all(gains[g, b] > 2.5 for g in ("kmeans", "nf") for b in (3, 4)) and all(
        gains[g, 6] < gains[g, 3] for g in ("kmeans", "nf"))
    return measured(ok, ", ".join(f"{g} {b} bits {v:+.1f}" for (g, b), v in gains.items()) + " dB")


@claim("06", "The price is in the kernel: a lookup is not a SIMD multiply. On a CPU with int8 "
             "dot-product instructions, the uniform int8 GEMM is far faster than any table walk, "
             "so non-uniform grids pay off where memory, not arithmetic, is the limit (LLM "
             "weights in GPU memory: QLoRA).",
       slow=True, needs=lambda: None if vnni_available() else "needs VNNI (int8 dot products)")
def _lookup_speed():
    from qkit import kernels
    from qkit.formats import nonuniform
    from qkit.studies.timing import measure

    w = _w()
    cw = nonuniform.quantize(w, "nf", 4, block=64)
    x_q = np.random.default_rng(0).integers(0, 256, (64, w.shape[1])).astype(np.uint8)
    w_q = np.clip(np.rint(w / np.abs(w).max() * 127), -127, 127).astype(np.int8)
    packed = kernels.pack_weights(w_q)
    c = nonuniform.integer_codebook(cw.levels, k=w.shape[1])[0]
    runs = [measure({"int8": lambda: kernels.gemm_packed(x_q, packed),
                     "lut": lambda: kernels.gemm_codebook(x_q, cw.idx, c)}, 3, 0.02)
            for _ in range(3)]  # the best of three: noise only ever slows a run
    t = {k: min(r[k] for r in runs) for k in runs[0]}
    return measured(t["lut"] / t["int8"] > 4, f"int8 GEMM {t['lut'] / t['int8']:.0f}x faster "
                                               f"than the 16-code table walk")


@claim("06", "Log grids make multiplies into shifts (hardware without multipliers), but spend "
             "their levels near zero.")
def _log_levels():
    from qkit.formats import nonuniform

    levels = np.asarray(nonuniform.quantize(_w(), "log", 4).levels, np.float64)
    nonzero = np.abs(levels[levels != 0])
    powers = np.allclose(np.log2(nonzero), np.rint(np.log2(nonzero)))
    near = float(np.mean(np.abs(levels) <= np.abs(levels).max() / 8))
    return measured(powers and near > 0.5, f"levels are 0 and ±2^-i: {powers}; {near:.0%} of them "
                                           f"within 1/8 of the largest (a uniform grid: ~1/8)")
