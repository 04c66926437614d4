"""The 4-bit x 8-bit block dot product in numba (twin of `qkit.reference.blockdot`).

Layout: `pack_blocks` stores the weights of ``LANES`` consecutive output rows side by side,
so that the innermost loop runs over rows: for each block and each of its 16 bytes, 64
rows' low and high nibbles multiply the same two activations, a loop the compiler turns into
vector instructions without any horizontal sum. Each row's float32 accumulator still adds
its blocks in order, so the result is the reference's to the bit. The offset (8 for Q4_0)
is taken out once per block through the activations' sum: ``sum (c - 8) qx = sum c qx -
8 sum qx``, the same integer. `quantize_q8_blocks` is llama.cpp's Q8_0 rounding of the
activations, float16 scale included (rounded to nearest even by exact power-of-two steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, njit, prange

from qkit.kernels import dispatch
from qkit.kernels.vnni import blockdot as vnni
from qkit.reference.blockdot import check_block_dot, check_block_dot_q8

LANES = 64  # output rows per panel
# multiply-adds (rows x inputs x tokens) from which panels are split over threads: numba's
# thread pool costs ~0.1-3 ms a call, more than a decode step's whole layer
PARALLEL_FROM = 1 << 26


@dataclass
class PackedBlocks:
    """Q4 weights as panels of `LANES` rows: codes (P, B, 16, LANES) u8, d and m (P, B, LANES)."""

    codes: np.ndarray
    d: np.ndarray
    m: np.ndarray
    rows: int
    _vnni: np.ndarray | None = None

    @property
    def blocks(self) -> int:
        return self.codes.shape[1]

    def vnni_codes(self) -> np.ndarray:
        """The same codes in the VNNI kernel's layout (`qkit.kernels.vnni.blockdot`), made once."""
        if self._vnni is None:
            self._vnni = vnni.vnni_layout(self.codes)
        return self._vnni


def pack_blocks(qs, d, m) -> PackedBlocks:
    """Reorder checked (rows, blocks, 16) codes and (rows, blocks) scales into panels; rows are
    padded to a multiple of `LANES` with zero weights (their outputs are dropped)."""
    rows, blocks = qs.shape[0], qs.shape[1]
    p = -(-rows // LANES)
    pad = p * LANES - rows
    qs = np.pad(qs, ((0, pad), (0, 0), (0, 0)))
    d, m = (np.pad(v, ((0, pad), (0, 0))) for v in (d, m))
    codes = np.ascontiguousarray(qs.reshape(p, LANES, blocks, 16).transpose(0, 2, 3, 1))
    d, m = (np.ascontiguousarray(v.reshape(p, LANES, blocks).transpose(0, 2, 1)) for v in (d, m))
    return PackedBlocks(codes, d, m, rows)


@njit(cache=True, inline="always")
def _panel(codes, d, m, offset, qx, dx, p, out):
    # one panel of LANES rows, every token: the panel's weights stay in cache across tokens
    lanes = codes.shape[3]
    isum = np.empty(lanes, np.int32)
    acc = np.empty(lanes, np.float32)
    for t in range(qx.shape[0]):
        acc[:] = 0
        for b in range(codes.shape[1]):
            isum[:] = 0
            total = np.int32(0)
            for j in range(32):
                total += np.int32(qx[t, b, j])
            for j in range(16):
                low = np.int32(qx[t, b, j])
                high = np.int32(qx[t, b, j + 16])
                for r in range(lanes):
                    byte = np.int32(codes[p, b, j, r])
                    isum[r] += (byte & 15) * low + (byte >> 4) * high
            scale = dx[t, b]
            shift = dx[t, b] * np.float32(total)
            for r in range(lanes):
                acc[r] = acc[r] + (scale * d[p, b, r]) * np.float32(isum[r] - offset * total)
                acc[r] = acc[r] + m[p, b, r] * shift
        for r in range(lanes):
            out[t, p * lanes + r] = acc[r]


@njit(cache=True)
def _dot_nb(codes, d, m, offset, qx, dx, out):
    for p in range(codes.shape[0]):
        _panel(codes, d, m, offset, qx, dx, p, out)


@njit(cache=True, parallel=True)
def _dot_par(codes, d, m, offset, qx, dx, out):
    for p in prange(codes.shape[0]):
        _panel(codes, d, m, offset, qx, dx, p, out)


def _big(packed, tokens: int) -> bool:
    return packed.rows * packed.blocks * 32 * tokens >= PARALLEL_FROM and get_num_threads() > 1


def run(packed: PackedBlocks, offset: int, qx, dx, parallel: bool) -> np.ndarray:
    """The product on packed weights and checked activations, serial or over threads."""
    out = np.empty((qx.shape[0], packed.codes.shape[0] * LANES), np.float32)
    if dispatch.USE_VNNI:
        vnni.dot_vnni(packed.vnni_codes(), packed.d, packed.m, offset, qx, dx, out, parallel)
    else:
        (_dot_par if parallel else _dot_nb)(packed.codes, packed.d, packed.m, np.int32(offset),
                                            qx, dx, out)
    return out[:, :packed.rows]


def block_dot(qs, d, m, offset, qx, dx) -> np.ndarray:
    """(rows, blocks, 16) packed 4-bit weights x (tokens, blocks, 32) int8 -> (tokens, rows).

    Packs the weights on every call; a bound layer packs once (`pack_blocks`) and calls
    `block_dot_packed`."""
    qs, d, m, offset, qx, dx = check_block_dot(qs, d, m, offset, qx, dx)
    return block_dot_packed(pack_blocks(qs, d, m), offset, qx, dx)


def block_dot_packed(packed: PackedBlocks, offset: int, qx, dx) -> np.ndarray:
    """`block_dot` on weights packed once; layers of at least `PARALLEL_FROM` weights split
    their panels over numba's threads."""
    if not isinstance(packed, PackedBlocks):
        raise TypeError(f"packed must come from pack_blocks, got {type(packed).__name__}")
    _check_activations(packed.blocks, qx, dx)
    big = _big(packed, qx.shape[0])
    return run(packed, offset, np.ascontiguousarray(qx), np.ascontiguousarray(dx), big)


@njit(cache=True, inline="always")
def _panel_q8(codes, d, qx, dx, p, out):
    lanes = codes.shape[3]
    isum = np.empty(lanes, np.int32)
    acc = np.empty(lanes, np.float32)
    for t in range(qx.shape[0]):
        acc[:] = 0
        for b in range(codes.shape[1]):
            isum[:] = 0
            for j in range(32):
                a = np.int32(qx[t, b, j])
                for r in range(lanes):
                    isum[r] += np.int32(codes[p, b, j, r]) * a
            scale = dx[t, b]
            for r in range(lanes):
                acc[r] = acc[r] + (scale * d[p, b, r]) * np.float32(isum[r])
        for r in range(lanes):
            out[t, p * lanes + r] = acc[r]


@njit(cache=True)
def _dot_q8_nb(codes, d, qx, dx, out):
    for p in range(codes.shape[0]):
        _panel_q8(codes, d, qx, dx, p, out)


@njit(cache=True, parallel=True)
def _dot_q8_par(codes, d, qx, dx, out):
    for p in prange(codes.shape[0]):
        _panel_q8(codes, d, qx, dx, p, out)


@dataclass
class PackedQ8:
    """Q8_0 weights as panels of `LANES` rows: codes (P, B, 32, LANES) int8, d (P, B, LANES)."""

    codes: np.ndarray
    d: np.ndarray
    rows: int
    _vnni: tuple | None = None

    @property
    def blocks(self) -> int:
        return self.codes.shape[1]

    def vnni_codes(self) -> tuple[np.ndarray, np.ndarray]:
        if self._vnni is None:
            self._vnni = vnni.vnni_layout_q8(self.codes)
        return self._vnni


def pack_q8(qw, d) -> PackedQ8:
    rows, blocks = qw.shape[0], qw.shape[1]
    p = -(-rows // LANES)
    qw = np.pad(qw, ((0, p * LANES - rows), (0, 0), (0, 0)))
    d = np.pad(d, ((0, p * LANES - rows), (0, 0)))
    codes = np.ascontiguousarray(qw.reshape(p, LANES, blocks, 32).transpose(0, 2, 3, 1))
    return PackedQ8(codes, np.ascontiguousarray(d.reshape(p, LANES, blocks).transpose(0, 2, 1)),
                    rows)


def run_q8(packed: PackedQ8, qx, dx, parallel: bool) -> np.ndarray:
    out = np.empty((qx.shape[0], packed.codes.shape[0] * LANES), np.float32)
    if dispatch.USE_VNNI:
        vcodes, wsum = packed.vnni_codes()
        vnni.dot_q8_vnni(vcodes, packed.d, wsum, qx, dx, out, parallel)
    else:
        (_dot_q8_par if parallel else _dot_q8_nb)(packed.codes, packed.d, qx, dx, out)
    return out[:, :packed.rows]


def block_dot_q8(qw, d, qx, dx) -> np.ndarray:
    """Q8_0 weights (rows, blocks, 32) x Q8_0 activations -> (tokens, rows) (see the reference).
    Packs on every call; a bound layer packs once (`pack_q8`) and calls `block_dot_q8_packed`."""
    qw, d, qx, dx = check_block_dot_q8(qw, d, qx, dx)
    return block_dot_q8_packed(pack_q8(qw, d), qx, dx)


def block_dot_q8_packed(packed: PackedQ8, qx, dx) -> np.ndarray:
    if not isinstance(packed, PackedQ8):
        raise TypeError(f"packed must come from pack_q8, got {type(packed).__name__}")
    _check_activations(packed.blocks, qx, dx)
    big = _big(packed, qx.shape[0])
    return run_q8(packed, np.ascontiguousarray(qx), np.ascontiguousarray(dx), big)


def _check_activations(blocks: int, qx, dx) -> None:
    if qx.dtype != np.int8 or qx.ndim != 3 or qx.shape[1:] != (blocks, 32):
        raise ValueError(f"qx must be int8 (tokens, {blocks}, 32), got {qx.dtype} {qx.shape}")
    if dx.dtype != np.float32 or dx.shape != qx.shape[:2]:
        raise ValueError(f"dx must be float32 {qx.shape[:2]}, got {dx.dtype} {dx.shape}")


@njit(cache=True)
def _f16(v):
    # round a finite float32 >= 0 to the nearest float16, ties to even, by exact power-of-2 steps
    if v == 0:
        return np.float32(0.0)
    _, e = math.frexp(v)  # v = f * 2^e, f in [0.5, 1)
    step = max(e - 11, -24)  # 10 mantissa bits below the leading one; subnormals: 2^-24
    return np.float32(math.ldexp(np.rint(math.ldexp(np.float64(v), -step)), step))


@njit(cache=True)
def _q8_nb(x, q, d):
    # returns 0, or 1 if x holds NaN / Inf, or 2 if a float16 scale would overflow
    for t in range(x.shape[0]):
        for b in range(d.shape[1]):
            amax = np.float32(0.0)
            for j in range(32):
                v = x[t, b * 32 + j]
                if v - v != 0:  # NaN or Inf
                    return 1
                amax = max(amax, abs(v))
            scale = amax / np.float32(127.0)
            if scale > 65504:
                return 2
            inv = np.float32(0.0) if scale == 0 else np.float32(1.0) / scale
            for j in range(32):
                v = x[t, b * 32 + j] * inv
                r = np.floor(abs(v) + np.float32(0.5))
                q[t, b, j] = np.int8(r if v >= 0 else -r)
            d[t, b] = _f16(scale)
    return 0


def _raise_for(status: int) -> None:
    if status == 1:
        raise ValueError("x contains NaN or Inf")
    if status == 2:
        raise ValueError("x is too large: a block's float16 scale would overflow")


def quantize_q8_blocks(x) -> tuple[np.ndarray, np.ndarray]:
    """Activations (tokens, n) as Q8_0 blocks (see the reference)."""
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] % 32 or x.size == 0:
        raise ValueError(f"x must be float32 (tokens, n) with n a multiple of 32, got {x.dtype} "
                         f"{x.shape}")
    x = np.ascontiguousarray(x)
    q = np.empty((x.shape[0], x.shape[1] // 32, 32), np.int8)
    d = np.empty((x.shape[0], x.shape[1] // 32), np.float32)
    _raise_for(_q8_nb(x, q, d))
    return q, d


@njit(cache=True)
def _linear_nb(codes, d, m, offset, x, out, parallel):
    qx = np.empty((x.shape[0], codes.shape[1], 32), np.int8)
    dx = np.empty((x.shape[0], codes.shape[1]), np.float32)
    status = _q8_nb(x, qx, dx)
    if status:
        return status
    if parallel:
        _dot_par(codes, d, m, offset, qx, dx, out)
    else:
        _dot_nb(codes, d, m, offset, qx, dx, out)
    return 0


@njit(cache=True)
def _linear_q8_nb(codes, d, x, out, parallel):
    qx = np.empty((x.shape[0], codes.shape[1], 32), np.int8)
    dx = np.empty((x.shape[0], codes.shape[1]), np.float32)
    status = _q8_nb(x, qx, dx)
    if status:
        return status
    if parallel:
        _dot_q8_par(codes, d, qx, dx, out)
    else:
        _dot_q8_nb(codes, d, qx, dx, out)
    return 0


def block_linear(packed, offset: int, x) -> np.ndarray:
    """``quantize_q8_blocks`` then the block product in one compiled call: float32 inputs
    (tokens, in) -> (tokens, rows), what a bound layer runs per call. ``packed`` comes from
    `pack_blocks` (Q4, with ``offset``) or `pack_q8` (``offset`` ignored)."""
    if not isinstance(packed, PackedBlocks | PackedQ8):
        raise TypeError(f"packed must come from pack_blocks or pack_q8, got "
                        f"{type(packed).__name__}")
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != packed.blocks * 32:
        raise ValueError(f"x must be float32 (tokens, {packed.blocks * 32}), got {x.dtype} "
                         f"{x.shape}")
    x = np.ascontiguousarray(x)
    big = _big(packed, x.shape[0])
    if dispatch.USE_VNNI:
        qx, dx = quantize_q8_blocks(x)
        if isinstance(packed, PackedQ8):
            return run_q8(packed, qx, dx, big)
        return run(packed, offset, qx, dx, big)
    out = np.empty((x.shape[0], packed.codes.shape[0] * LANES), np.float32)
    if isinstance(packed, PackedQ8):
        status = _linear_q8_nb(packed.codes, packed.d, x, out, big)
    else:
        status = _linear_nb(packed.codes, packed.d, packed.m, np.int32(offset), x, out, big)
    _raise_for(status)
    return out[:, :packed.rows]


def warm() -> None:
    f = np.ones((2, 1), np.float32)
    packed = pack_blocks(np.zeros((2, 1, 16), np.uint8), f, f)
    qx, dx = quantize_q8_blocks(np.ones((1, 32), np.float32))
    q8 = pack_q8(np.zeros((2, 1, 32), np.int8), f)
    for parallel in (False, True):
        run(packed, 8, qx, dx, parallel)
        run_q8(q8, qx, dx, parallel)
        block_linear(packed, 8, np.ones((1, 32), np.float32))
        block_linear(q8, 0, np.ones((1, 32), np.float32))
