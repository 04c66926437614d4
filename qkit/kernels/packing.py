"""Packed weight layouts: how each micro-kernel wants its weights laid out in memory.

A layer's weights are packed once (as fbgemm and oneDNN prepack theirs) so the kernel's
inner loop reads them in one contiguous stream. This module only rearranges bytes; it
imports nothing from the kernels that read them.

=========================  =================================================================
layout                     bytes of one step of the inner loop
=========================  =================================================================
`PackedWeights.panels`     (panels, K/4, 32, 4) int8: per K-quad, 32 columns x 4 bytes = the
                           two zmm ``vpdpbusd`` multiplies (VNNI GEMM and direct conv)
`PackedInt4.panels`        (panels, K/8, 32, 4) uint8: per 8 K values, a low and a high
                           nibble per byte (VNNI int4)
`pack_pairs`               (panels, K/2, 16, 2) int16 or int8: per K-pair, 16 columns x 2
                           values = one ymm (AVX2 ``vpmaddwd`` / ``vpmaddubsw``)
`pack_depthwise`           (blocks, 3 tap groups, 64) int8: per 16 channels, the 3x3 taps as
                           byte quads (VNNI depthwise)
=========================  =================================================================

`qkit.reference.simd` holds the NumPy GEMM over these panels, the readable version of what
the micro-kernels do with them.
"""

from __future__ import annotations

import functools

import numpy as np

VNNI_COLUMNS = 32  # output columns per VNNI panel (two zmm of 16 int32)
AVX2_COLUMNS = 16  # output columns per AVX2 panel (two ymm of 8 int32)


def pack_pairs(w: np.ndarray, dtype) -> np.ndarray:
    """(N,K) int8 -> (panels, K/2, 16, 2) in ``dtype`` (int16 for vpmaddwd, int8 for
    vpmaddubsw): per panel and pair of K values, 16 columns x 2 values, contiguous."""
    n, k = w.shape
    k_pairs, n_pad = -(-k // 2), -(-n // AVX2_COLUMNS) * AVX2_COLUMNS
    padded = np.zeros((n_pad, 2 * k_pairs), dtype)
    padded[:n, :k] = w
    panels = padded.reshape(n_pad // AVX2_COLUMNS, AVX2_COLUMNS, k_pairs, 2)
    return np.ascontiguousarray(panels.transpose(0, 2, 1, 3))


class Avx2Layouts:
    """Mixin for packed weights holding ``self.w`` (int8 (N,K)): the AVX2 layouts, built on
    first use (a VNNI machine never builds them)."""

    @functools.cached_property
    def avx2_pairs16(self) -> np.ndarray:
        return pack_pairs(self.w, np.int16)

    @functools.cached_property
    def avx2_pairs8(self) -> np.ndarray:
        return pack_pairs(self.w, np.int8)


class PackedWeights(Avx2Layouts):
    """Int8 weights (N,K) packed once for `qkit.kernels.gemm_packed`, with what the kernels
    need to know: the column sums (for the zero-point and sign-shift corrections) and the
    largest magnitude (for the int32 overflow bound)."""

    def __init__(self, w: np.ndarray):
        n, k = w.shape
        self.n, self.k = n, k
        k_pad, n_pad = -(-k // 4) * 4, -(-n // VNNI_COLUMNS) * VNNI_COLUMNS
        padded = np.zeros((n_pad, k_pad), np.int8)
        padded[:n, :k] = w
        # (Np, Kp) -> (panels, 32, K/4, 4) -> (panels, K/4, 32, 4): a K-quad of a panel = 128 B
        self.panels = np.ascontiguousarray(
            padded.reshape(n_pad // VNNI_COLUMNS, VNNI_COLUMNS, k_pad // 4, 4)
            .transpose(0, 2, 1, 3))
        self.col_sums = w.astype(np.int64).sum(axis=1).astype(np.int32)
        self.max_abs = max(abs(int(w.min())), abs(int(w.max())))
        self.w = np.ascontiguousarray(w)  # for CPUs without VNNI (plain loop, AVX2 layouts)

    @property
    def k_quads(self) -> int:
        return self.panels.shape[1]


class PackedInt4(Avx2Layouts):
    """Signed 4-bit weights (N,K) packed once for the VNNI int4 kernel.

    Per panel of 32 output columns and per 8 values of K, 128 bytes; byte ``4 * col + j``
    holds ``w[col, 8o + j]`` in its low nibble and ``w[col, 8o + 4 + j]`` in its high
    nibble. One 64-byte load thus gives, after ``& 0xF`` and ``>> 4``, two K-quads of 16
    columns laid out as `PackedWeights.panels`.
    """

    def __init__(self, w4: np.ndarray):
        n, k = w4.shape
        self.n, self.k = n, k
        k_pad, n_pad = -(-k // 8) * 8, -(-n // VNNI_COLUMNS) * VNNI_COLUMNS
        padded = np.zeros((n_pad, k_pad), np.uint8)
        padded[:n, :k] = w4.astype(np.uint8) & 0x0F  # two's-complement nibbles
        # (Np, Kp) -> (panels, 32, K/8, 2, 4): [.., 0, j] = k 8o+j (low), [.., 1, j] = 8o+4+j
        q = padded.reshape(n_pad // VNNI_COLUMNS, VNNI_COLUMNS, k_pad // 8, 2, 4)
        nibbles = q[:, :, :, 0, :] | (q[:, :, :, 1, :] << 4)  # (panels, 32, K/8, 4)
        self.panels = np.ascontiguousarray(nibbles.transpose(0, 2, 1, 3))
        self.col_sums = w4.astype(np.int64).sum(axis=1).astype(np.int32)
        self.max_abs = max(abs(int(w4.min())), abs(int(w4.max())))
        low = np.zeros((n, k + k % 2), np.uint8)  # the row layout of qkit.kernels.pack_int4
        low[:, :k] = w4.astype(np.uint8) & 0x0F
        self.nibbles = low[:, 0::2] | (low[:, 1::2] << 4)  # for CPUs without VNNI
        self.w = np.ascontiguousarray(w4)  # values in [-8, 7], for the AVX2 layouts

    @property
    def k_octets(self) -> int:
        return self.panels.shape[1]


def unsigned_rows(a: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """``a`` (M,K) as unsigned bytes padded with zeros to ``width`` columns, and the shift used:
    int8 becomes ``a + 128`` (``vpdpbusd`` wants unsigned activations), corrected later."""
    if a.dtype == np.uint8 and a.shape[1] == width and a.flags.c_contiguous:
        return a, 0  # already what the kernel reads: no copy
    a_u = np.zeros((a.shape[0], width), np.uint8)
    if a.dtype == np.int8:
        a_u[:, :a.shape[1]] = a.view(np.uint8) ^ np.uint8(0x80)
        return a_u, 128
    a_u[:, :a.shape[1]] = a
    return a_u, 0


def output_rows(rows: int, packed, dtype) -> np.ndarray:
    """Output rows as wide as the weights have columns when that is a multiple of 16 (the
    kernel then writes in place), else padded to whole 32-column panels (`valid_columns`)."""
    width = packed.n if packed.n % 16 == 0 else packed.panels.shape[0] * VNNI_COLUMNS
    return np.empty((rows, width), dtype)


def valid_columns(out: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` columns of a padded output (itself when it has no padding)."""
    return out if out.shape[1] == n else np.ascontiguousarray(out[:, :n])


def conv_panels(w: np.ndarray, channels: int) -> PackedWeights:
    """(O, KH, KW, C) weights with channels zero-padded to ``channels``, packed; a layer called
    again with the same small weights (every model does) reuses its packing."""
    if w.nbytes > 1 << 18:
        return pack_conv_panels(w, channels)
    return _conv_panels_cached(w.tobytes(), w.shape, channels)


@functools.lru_cache(maxsize=64)
def _conv_panels_cached(data: bytes, shape: tuple, channels: int) -> PackedWeights:
    return pack_conv_panels(np.frombuffer(data, np.int8).reshape(shape), channels)


def pack_conv_panels(w: np.ndarray, channels: int) -> PackedWeights:
    """Conv weights (O, KH, KW, C) as GEMM panels with K ordered (kh, kw, c), C padded."""
    o, kh, kw, c = w.shape
    padded = np.zeros((o, kh, kw, channels), np.int8)
    padded[..., :c] = w
    packed = PackedWeights(padded.reshape(o, -1))
    for a in (packed.panels, packed.col_sums, packed.w):  # shared by later calls: read-only
        a.flags.writeable = False
    return packed


def pack_depthwise(wt: np.ndarray) -> np.ndarray:
    """3x3 depthwise weights (3, 3, C) int8, C a multiple of 16 -> flat int8 in the byte-quad
    layout of the VNNI depthwise kernel: each 64-channel block as (3 tap groups, 4, 64) with
    vector j holding, in 128-bit lane L, channels 16L + 4j .. + 3, then each 16-channel block
    of the rest as (3, 64); tap groups are taps 0-3, taps 4-7, and tap 8 with three zeros."""
    taps = wt.reshape(9, -1).astype(np.int8)
    c = taps.shape[1]
    quads = np.zeros((c, 3, 4), np.int8)  # per channel: its three groups' byte quads
    quads[:, 0], quads[:, 1], quads[:, 2, 0] = taps[0:4].T, taps[4:8].T, taps[8]
    n64 = c // 64
    big = quads[:64 * n64].reshape(n64, 4, 4, 4, 3, 4)  # (block, L, j, p, group, byte)
    big = big.transpose(0, 4, 2, 1, 3, 5)  # (block, group, j, L, p, byte)
    rest = quads[64 * n64:].reshape(-1, 16, 3, 4).transpose(0, 2, 1, 3)  # (block, group, 16, 4)
    return np.concatenate([big.reshape(-1), rest.reshape(-1)])


def depthwise_order(v: np.ndarray) -> np.ndarray:
    """Per-channel values (C,) in the order the VNNI depthwise kernel reads them: within each
    64-channel block, vector j's lane L holds channels 16L + 4j .. + 3; the rest as they are."""
    n64 = v.shape[0] // 64
    big = v[:64 * n64].reshape(n64, 4, 4, 4).transpose(0, 2, 1, 3)  # (block, j, L, p)
    return np.ascontiguousarray(np.concatenate([big.reshape(-1), v[64 * n64:]]))


def epilogue_vectors(packed: PackedWeights, shifted_zero_point: int, mult, bias):
    """The requantizing epilogue's per-column vectors, zero-padded to whole panels: the
    column offsets ``-(zx + shift) * colsum`` (exact mod 2**32; the true sums fit int32), the
    multipliers and the biases."""
    n_pad = packed.panels.shape[0] * VNNI_COLUMNS
    col_off = np.zeros(n_pad, np.int32)
    col_off[:packed.n] = (-shifted_zero_point * packed.col_sums.astype(np.int64)).astype(np.int32)
    mult_p, bias_p = np.zeros(n_pad, np.float32), np.zeros(n_pad, np.float32)
    mult_p[:packed.n], bias_p[:packed.n] = mult, bias
    return col_off, bias_p, mult_p
