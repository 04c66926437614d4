"""Non-uniform weight grids: k-means, powers of two (log) and NormalFloat, as codes + codebook.

A uniform grid spaces its levels evenly; weights are bell-shaped, so most levels sit where
few weights are. A non-uniform grid puts the levels where the weights are:

* ``kmeans``  one codebook per layer fitted to the weights (Deep Compression, Han et al. 2016,
  linear initialisation between min and max), here on the weights divided by their row
  (or block) absmax so that it gets the same scales as the other grids;
* ``log``     0 and +-2^-i (power-of-two levels: a multiply becomes a shift);
* ``nf``      NormalFloat (Dettmers et al. 2023, QLoRA): quantiles of a normal distribution,
  with an exact zero; ``nf`` at 4 bits is NF4, bit for bit bitsandbytes' table;
* ``uniform`` the evenly spaced grid, for comparison at the same bit width.

Every grid stores ``bits``-bit codes plus a small float codebook and scales, and runs on the
lookup-table kernel `qkit.kernels.gemm_codebook` (`lut_matmul`): the codebook is turned into
int16 integers as fine as the int32 accumulator allows, so the sum is exact integer
arithmetic and only the final scaling is float.

>>> [round(float(v), 4) for v in nf_levels(4)[:4]]
[-1.0, -0.6962, -0.5251, -0.3949]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkit import kernels
from qkit.core.checks import check_bits as _check_bits
from qkit.core.checks import check_float_array
from qkit.core.metrics import sqnr_db

GRIDS = ("uniform", "kmeans", "log", "nf")


def check_bits(bits, min_bits: int = 2, max_bits: int = 8) -> int:
    """Codes are uint8 and the grids need a sign bit: ``min_bits <= bits <= max_bits``."""
    bits = _check_bits(bits)
    if not min_bits <= bits <= max_bits:
        raise ValueError(f"bits must be in {min_bits}..{max_bits} for a codebook grid, got "
                         f"{bits}")
    return bits
NF4_OFFSET = 0.9677083  # bitsandbytes create_normal_map: (1 - 1/(2*15) + 1 - 1/(2*16)) / 2


def nf_levels(bits: int = 4) -> np.ndarray:
    """NormalFloat levels in [-1, 1]: 2^(b-1) positive and 2^(b-1) - 1 negative normal
    quantiles plus an exact 0, normalized by the largest (QLoRA's asymmetric construction)."""
    from scipy.stats import norm

    bits = check_bits(bits)
    half = 2 ** (bits - 1)
    pos = norm.ppf(np.linspace(NF4_OFFSET, 0.5, half + 1)[:-1])
    neg = -norm.ppf(np.linspace(NF4_OFFSET, 0.5, half)[:-1])
    v = np.sort(np.concatenate([pos, [0.0], neg]))
    return (v / np.abs(v).max()).astype(np.float32)


def uniform_levels(bits: int) -> np.ndarray:
    """2^b - 1 evenly spaced levels in [-1, 1], including 0 (symmetric, narrow range)."""
    bits = check_bits(bits)
    q = 2 ** (bits - 1) - 1
    return (np.arange(-q, q + 1) / q).astype(np.float32)


def log_levels(bits: int) -> np.ndarray:
    """0 and +-2^-i for i = 0 .. 2^(b-1) - 2: 2^b - 1 levels in [-1, 1]."""
    bits = check_bits(bits)
    pos = 2.0 ** -np.arange(2 ** (bits - 1) - 1)
    return np.concatenate([-pos, [0.0], pos[::-1]]).astype(np.float32)


def kmeans_levels(w, bits: int, seed: int = 0) -> np.ndarray:
    """2^b centroids of the values of ``w`` (1-D k-means, scikit-learn), linear init between
    min and max as Deep Compression recommends; sorted, in the units of ``w``."""
    from sklearn.cluster import KMeans

    bits = check_bits(bits)
    x = np.asarray(w, np.float64).reshape(-1, 1)
    k = min(2 ** bits, len(np.unique(x)))
    init = np.linspace(x.min(), x.max(), k).reshape(-1, 1)
    km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=100, random_state=seed).fit(x)
    return np.sort(km.cluster_centers_.ravel()).astype(np.float32)


def nearest(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest level (``levels`` sorted; a value exactly between two goes down)."""
    mid = (levels[1:] + levels[:-1]) / 2
    return np.searchsorted(mid, x, side="left").astype(np.uint8)


@dataclass
class CodebookWeights:
    """Weights (N, K) as ``bits``-bit codes, one codebook and per-block float scales:
    ``w[n, k] ~= levels[idx[n, k]] * scales[n, k // block]``."""

    idx: np.ndarray  # (N, K) uint8
    levels: np.ndarray  # (L,) float32, sorted
    scales: np.ndarray  # (N, K / block) float32
    block: int
    bits: int
    grid: str

    def dequantize(self) -> np.ndarray:
        per_weight = np.repeat(self.scales, self.block, axis=1)[:, :self.idx.shape[1]]
        return self.levels[self.idx] * per_weight

    def nbytes(self) -> int:
        """Codes at ``bits`` per weight, the codebook and the scales in float32."""
        return -(-self.idx.size * self.bits // 8) + 4 * self.levels.size + 4 * self.scales.size

    def bits_per_weight(self) -> float:
        return 8 * self.nbytes() / self.idx.size


def quantize(w, grid: str = "nf", bits: int = 4, block: int | None = None,
             seed: int = 0) -> CodebookWeights:
    """Quantize a weight tensor (N, ...) onto a grid; ``block`` = None scales per output row
    by its absmax, an integer scales each block of that many consecutive weights of a row
    (QLoRA: 64). ``kmeans`` fits one codebook per tensor to the scaled weights, so every grid
    is compared at the same granularity and the same bits."""
    w = check_float_array(w, "w")
    if w.ndim < 2 or w.size == 0:
        raise ValueError(f"w must be (N, ...) with at least one weight, got shape {w.shape}")
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
    bits = check_bits(bits)
    w2 = w.reshape(w.shape[0], -1).astype(np.float32)
    n, k = w2.shape
    block = k if block is None else int(block)
    if block < 1:
        raise ValueError(f"block must be a positive number of weights, got {block}")
    pad = -k % block
    blocks = np.pad(w2, ((0, 0), (0, pad))).reshape(n, -1, block)
    scales = np.abs(blocks).max(axis=2).astype(np.float32)
    safe = np.where(scales > 0, scales, 1).astype(np.float32)
    normed = (blocks / safe[:, :, None]).reshape(n, -1)[:, :k]
    if grid == "kmeans":  # one codebook per layer, fitted to the scaled weights
        levels = kmeans_levels(normed, bits, seed)
    else:
        levels = {"uniform": uniform_levels, "log": log_levels, "nf": nf_levels}[grid](bits)
    return CodebookWeights(nearest(normed, levels), levels, scales, block, bits, grid)


def report(w, grid: str, bits: int, block: int | None = None) -> dict:
    """Error of one grid on ``w``: SQNR, bytes and effective bits per weight."""
    cw = quantize(w, grid, bits, block)
    w_hat = cw.dequantize().reshape(np.shape(w))
    return {"grid": grid, "bits": bits, "block": block, "sqnr_db": sqnr_db(w, w_hat),
            "bytes": cw.nbytes(), "bits_per_weight": cw.bits_per_weight(), "levels": cw.levels}


def integer_codebook(levels: np.ndarray, k: int, max_abs_a: int = 255) -> tuple[np.ndarray, float]:
    """``levels`` as int16 integers ``c`` and a float ``unit`` with ``levels ~= c * unit``, as
    fine as int32 allows: ``max_abs_a * k * max|c|`` must fit (checked by the kernel)."""
    top = float(np.abs(levels).max())
    if top == 0:
        return np.zeros(levels.shape, np.int16), 1.0
    limit = min(32767, (2**31 - 1) // (max_abs_a * max(k, 1)))
    if limit < 1:
        raise ValueError(f"K={k} is too long for an exact int32 lookup-table sum")
    unit = top / limit
    return np.round(levels / unit).astype(np.int16), unit


def lut_matmul(x_q: np.ndarray, x_scale: float, x_zero_point: int, cw: CodebookWeights,
               backend=kernels) -> np.ndarray:
    """``dequantize(x_q) @ w.T`` computed by the lookup-table kernel, one block of K at a time:
    integer bucket sums times an int16 codebook (exact int32), then float scales.

    The float result equals ``((x_q - zx) * sx) @ (c[idx] * unit * scales).T`` up to float
    rounding; ``c * unit`` is within ``unit / 2`` of each level (see `integer_codebook`)."""
    n, k = cw.idx.shape
    if x_q.ndim != 2 or x_q.shape[1] != k:
        raise ValueError(f"x_q must be (M, K={k}), got {x_q.shape}")
    c, unit = integer_codebook(cw.levels, min(cw.block, k))
    out = np.zeros((x_q.shape[0], n), np.float64)
    for b, k0 in enumerate(range(0, k, cw.block)):
        k1 = min(k0 + cw.block, k)
        idx = np.ascontiguousarray(cw.idx[:, k0:k1])
        acc = backend.gemm_codebook(np.ascontiguousarray(x_q[:, k0:k1]), idx, c)
        wsum = c[idx].astype(np.int64).sum(axis=1)  # zero-point term, once per weight matrix
        out += (acc - int(x_zero_point) * wsum) * (cw.scales[:, b] * unit)
    return (out * x_scale).astype(np.float32)


# --- whole models ---------------------------------------------------------------------------


def compare_grids(w, bits: int, block: int | None = None) -> dict:
    """Every grid of `GRIDS` on ``w`` at ``bits``: ``{grid: (report, dequantized weights)}``."""
    return {grid: (report(w, grid, bits, block), quantize(w, grid, bits, block).dequantize())
            for grid in GRIDS}
