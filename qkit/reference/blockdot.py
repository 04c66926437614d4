"""llama.cpp's 4-bit x 8-bit block dot product: integer sums per block of 32, float scales.

Weights are Q4_0 / Q4_1 blocks (32 codes ``c`` in 0..15, two per byte: byte ``j`` holds code
``j`` in its low and code ``j + 16`` in its high nibble, as GGUF stores them), with a scale
``d`` and a minimum ``m`` per block (``m = 0``, ``offset = 8`` for Q4_0). Activations are
quantized on the fly to Q8_0 blocks of the same 32 inputs: int8 ``qx`` and a scale ``dx``.
Then, per output and block, an exact int32 sum and two float32 terms::

    isum = sum_j (c_j - offset) * qx_j
    y   += (d * dx) * isum + m * (dx * sum_j qx_j)       (float32, blocks in order)

which is ``sum_j (d (c_j - offset) + m) * dx qx_j``: the dequantized weights times the
dequantized activations, with the multiplications done on integers.

>>> qs = np.full((1, 1, 16), 0x99, np.uint8)            # every code 9: weight d*(9-8) = d
>>> qx = np.ones((1, 1, 32), np.int8)
>>> block_dot(qs, np.float32([[0.5]]), np.zeros((1, 1), np.float32), 8, qx,
...           np.float32([[0.25]]))                     # 32 x 0.5 x 0.25
array([[4.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_int_array


def check_block_dot(qs, d, m, offset, qx, dx):
    qs = np.ascontiguousarray(check_int_array(qs, "qs", (np.uint8,), ndim=3))
    qx = np.ascontiguousarray(check_int_array(qx, "qx", (np.int8,), ndim=3))
    r, b, half = qs.shape
    if half != 16 or qx.shape[1:] != (b, 32):
        raise ValueError(f"qs must be (rows, blocks, 16) and qx (tokens, blocks, 32) with the "
                         f"same blocks; got {qs.shape} and {qx.shape}")
    arrays = []
    for name, v, shape in (("d", d, (r, b)), ("m", m, (r, b)), ("dx", dx, (qx.shape[0], b))):
        v = np.asarray(v)
        if v.dtype != np.float32 or v.shape != shape:
            raise ValueError(f"{name} must be float32 of shape {shape}, got {v.dtype} {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or Inf")
        arrays.append(np.ascontiguousarray(v))
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) \
            or not 0 <= offset <= 15:
        raise ValueError(f"offset must be an int in 0..15 (8 for Q4_0, 0 for Q4_1), got {offset!r}")
    return qs, arrays[0], arrays[1], int(offset), qx, arrays[2]


def block_dot(qs, d, m, offset, qx, dx) -> np.ndarray:
    """(rows, blocks, 16) packed 4-bit weights x (tokens, blocks, 32) int8 -> (tokens, rows)."""
    qs, d, m, offset, qx, dx = check_block_dot(qs, d, m, offset, qx, dx)
    codes = np.concatenate([qs & 15, qs >> 4], axis=2).astype(np.int32) - offset  # (R, B, 32)
    isum = np.einsum("rbj,tbj->trb", codes, qx.astype(np.int32))  # exact int32 per block
    sx = dx * qx.astype(np.int32).sum(axis=2).astype(np.float32)  # (T, B)
    acc = np.zeros((qx.shape[0], qs.shape[0]), np.float32)
    for b in range(qs.shape[1]):  # blocks in order, float32 as the kernel adds them
        acc = acc + (dx[:, b, None] * d[None, :, b]) * isum[:, :, b].astype(np.float32)
        acc = acc + m[None, :, b] * sx[:, b, None]
    return acc


def quantize_q8_blocks(x) -> tuple[np.ndarray, np.ndarray]:
    """Activations (tokens, n) as llama.cpp's Q8_0 blocks of 32: ``d = amax / 127`` and
    ``q = roundf(x / d)`` in float32 (``x * (1/d)``, halves away from zero), ``d`` then rounded
    to float16. Returns int8 ``q`` (tokens, n/32, 32) and ``d`` as float32 (tokens, n/32)."""
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] % 32 or x.size == 0:
        raise ValueError(f"x must be float32 (tokens, n) with n a multiple of 32, got {x.dtype} "
                         f"{x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or Inf")
    blocks = x.reshape(x.shape[0], -1, 32)
    d = np.abs(blocks).max(axis=2) / np.float32(127)
    if d.max() > 65504:
        raise ValueError("x is too large: a block's float16 scale would overflow")
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    v = blocks * inv[..., None]
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return q.astype(np.int8), d.astype(np.float16).astype(np.float32)


def check_block_dot_q8(qw, d, qx, dx):
    qw = np.ascontiguousarray(check_int_array(qw, "qw", (np.int8,), ndim=3))
    zeros = np.zeros(qw.shape[:2], np.float32)
    if qw.shape[2] != 32:
        raise ValueError(f"qw must be (rows, blocks, 32) Q8_0 codes, got {qw.shape}")
    packed = np.zeros(qw.shape[:2] + (16,), np.uint8)  # only to reuse the shape checks
    _, d, _, _, qx, dx = check_block_dot(packed, d, zeros, 0, qx, dx)
    return qw, d, qx, dx


def block_dot_q8(qw, d, qx, dx) -> np.ndarray:
    """Q8_0 weights (rows, blocks, 32) int8 x Q8_0 activations: ``y += (d * dx) * isum``
    per block, in order (llama.cpp's Q8_0 x Q8_0 product)."""
    qw, d, qx, dx = check_block_dot_q8(qw, d, qx, dx)
    isum = np.einsum("rbj,tbj->trb", qw.astype(np.int32), qx.astype(np.int32))
    acc = np.zeros((qx.shape[0], qw.shape[0]), np.float32)
    for b in range(qw.shape[1]):
        acc = acc + (dx[:, b, None] * d[None, :, b]) * isum[:, :, b].astype(np.float32)
    return acc
