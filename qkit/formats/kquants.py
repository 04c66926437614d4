"""llama.cpp's K-quants: super-blocks of 256 weights with quantized sub-block scales.

A super-block shares a float16 scale ``d`` (and ``dmin``); its sub-blocks carry their own
scales as small integers in units of ``d``, so a scale costs 6 or 8 bits instead of 16.

=======  =====  ==========================================================  ============
format   bytes  layout (in file order)                                       bits/weight
=======  =====  ==========================================================  ============
``q4_k`` 144    ``d``, ``dmin`` (f16), 12 bytes of 8 x (6-bit scale, 6-bit  4.5
                min), 128 bytes of 4-bit codes
``q5_k`` 176    as ``q4_k`` plus 32 bytes of fifth bits                       5.5
``q6_k`` 210    128 bytes of low 4 bits, 64 of high 2 bits, 16 int8 scales,  6.5625
                ``d`` (f16)
=======  =====  ==========================================================  ============

Values: ``q4_k``/``q5_k`` sub-block ``j`` (32 weights) is ``(d*sc_j) * q - dmin*m_j``;
``q6_k`` sub-block ``j`` (16 weights) is ``(d*sc_j) * (q - 32)``, float32 in that order, as
the ``gguf`` package's reader computes it. The 12 scale bytes of ``q4_k``/``q5_k``: bytes 0-3
hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7 the same for the
mins; bytes 8-11 the low 4 bits of scale 4-7 (low nibble) and min 4-7 (high nibble). Codes
of sub-blocks ``2i`` and ``2i+1`` share 32 bytes: low and high nibbles.

qkit's writer is plain round-to-nearest from each sub-block's min and max (no search):
llama.cpp searches the scales for a smaller error, so its bytes for the same weights differ,
but both read the same way.

>>> x = np.linspace(-1, 1, 256, dtype=np.float32)
>>> raw = quantize(x, "q4_k")
>>> raw.shape, bool(np.abs(dequantize(raw, "q4_k") - x).max() < 0.07)
((144,), True)
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_float_array
from qkit.formats.ggml import FLOAT16_MAX

SUPER = 256
FORMATS = {"q4_k": 144, "q5_k": 176, "q6_k": 210}


def check_format(fmt) -> str:
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    return fmt.lower()


def _f16(v: np.ndarray, what: str) -> np.ndarray:
    if np.abs(v).max() > FLOAT16_MAX:
        raise ValueError(f"x is too large: the float16 super-block {what} would overflow")
    return v.astype(np.float16)


def _safe_div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, np.float32(0), a / np.where(b == 0, 1, b)).astype(np.float32)


def _affine(blocks: np.ndarray, bits: int):
    """(n, 8, 32) -> d, dmin (f16, (n,)), sc, m (6-bit, (n, 8)), codes (n, 8, 32)."""
    lo = np.minimum(blocks.min(axis=2), 0)  # the min is subtracted as dmin * m with m >= 0
    scale = (blocks.max(axis=2) - lo) / np.float32(2**bits - 1)
    d = _f16(scale.max(axis=1) / np.float32(63), "scale")
    dmin = _f16(-lo.min(axis=1) / np.float32(63), "min")
    sc = np.clip(np.rint(_safe_div(scale, d.astype(np.float32)[:, None])), 0, 63)
    m = np.clip(np.rint(_safe_div(-lo, dmin.astype(np.float32)[:, None])), 0, 63)
    step = (d.astype(np.float32)[:, None] * sc.astype(np.float32))[..., None]
    shift = (dmin.astype(np.float32)[:, None] * m.astype(np.float32))[..., None]
    q = np.clip(np.rint(_safe_div(blocks + shift, step)), 0, 2**bits - 1)
    return d, dmin, sc.astype(np.uint8), m.astype(np.uint8), q.astype(np.uint8)


def _pack_scales(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    out = np.empty((sc.shape[0], 12), np.uint8)
    out[:, 0:4] = (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6)
    out[:, 4:8] = (m[:, :4] & 63) | ((m[:, 4:] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:] & 15) | ((m[:, 4:] & 15) << 4)
    return out


def _unpack_scales(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)], axis=1)
    m = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], axis=1)
    return sc, m


def _nibbles(q: np.ndarray) -> np.ndarray:  # (n, 8, 32) low 4 bits -> (n, 128)
    q = q & 15
    return (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(-1, 128).astype(np.uint8)


def _symmetric(blocks: np.ndarray):
    """(n, 16, 16) -> d (f16, (n,)), sc (int8, (n, 16)), codes 0..63 (n, 16, 16)."""
    i = np.abs(blocks).argmax(axis=2)[..., None]
    scale = np.take_along_axis(blocks, i, axis=2)[..., 0] / np.float32(-32)
    d = _f16(np.abs(scale).max(axis=1) / np.float32(127), "scale")
    sc = np.clip(np.rint(_safe_div(scale, d.astype(np.float32)[:, None])), -127, 127)
    step = (d.astype(np.float32)[:, None] * sc.astype(np.float32))[..., None]
    q = np.clip(np.rint(_safe_div(blocks, step)) + 32, 0, 63)
    return d, sc.astype(np.int8), q.astype(np.uint8)


def _blocks(x, per: int) -> tuple[np.ndarray, tuple]:
    x = check_float_array(x, "x")
    if x.ndim == 0 or x.shape[-1] % SUPER:
        raise ValueError(f"x's last axis must be a multiple of {SUPER} (one super-block), "
                         f"got shape {x.shape}")
    return x.reshape(-1, SUPER // per, per), x.shape


def quantize(x, fmt: str) -> np.ndarray:
    """The GGUF bytes of ``x`` in ``q4_k``, ``q5_k`` or ``q6_k`` (last axis: 256 per block)."""
    fmt = check_format(fmt)
    if fmt == "q6_k":
        blocks, shape = _blocks(x, 16)
        d, sc, q = _symmetric(blocks)
        q = q.reshape(-1, 2, 4, 32)  # two halves of 128; within a half, 4 rows of 32
        ql = (q[:, :, 0:2] & 15) | ((q[:, :, 2:4] & 15) << 4)  # (n, 2, 2, 32): 64 bytes/half
        qh = (q[:, :, 0] >> 4) | ((q[:, :, 1] >> 4) << 2) | ((q[:, :, 2] >> 4) << 4) \
            | ((q[:, :, 3] >> 4) << 6)
        parts = [ql.reshape(-1, 128), qh.reshape(-1, 64), sc.view(np.uint8),
                 d.view(np.uint8).reshape(-1, 2)]
    else:
        bits = 4 if fmt == "q4_k" else 5
        blocks, shape = _blocks(x, 32)
        d, dmin, sc, m, q = _affine(blocks, bits)
        parts = [d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2),
                 _pack_scales(sc, m)]
        if bits == 5:
            parts.append(np.bitwise_or.reduce((q >> 4) << np.arange(8, dtype=np.uint8)[:, None],
                                              axis=1).astype(np.uint8))
        parts.append(_nibbles(q))
    raw = np.concatenate(parts, axis=1)
    return raw.reshape(*shape[:-1], shape[-1] // SUPER * FORMATS[fmt])


def decode(raw, fmt: str) -> dict[str, np.ndarray]:
    """Each super-block's ``d`` (``dmin``), sub-block scales ``sc`` (``m``) and codes."""
    fmt = check_format(fmt)
    raw = np.asarray(raw)
    size = FORMATS[fmt]
    if raw.dtype != np.uint8:
        raise TypeError(f"raw must be the uint8 bytes of {fmt} blocks, got dtype {raw.dtype}")
    if raw.ndim == 0 or raw.size == 0 or raw.shape[-1] % size:
        raise ValueError(f"raw's last axis must be a whole number of {fmt} blocks of {size} "
                         f"bytes, got shape {raw.shape}")
    b = np.ascontiguousarray(raw).reshape(-1, size)
    if fmt == "q6_k":
        ql, qh = b[:, :128].reshape(-1, 2, 2, 32), b[:, 128:192].reshape(-1, 2, 1, 32)
        low = np.concatenate([ql & 15, ql >> 4], axis=2)  # (n, 2, 4, 32)
        high = (qh >> np.array([0, 2, 4, 6], np.uint8)[:, None]) & 3
        out = {"d": b[:, 208:210].copy().view(np.float16)[:, 0],
               "sc": b[:, 192:208].view(np.int8), "q": (low | (high << 4)).reshape(-1, 16, 16)}
    else:
        sc, m = _unpack_scales(b[:, 4:16])
        qs = b[:, -128:].reshape(-1, 4, 1, 32)
        q = np.concatenate([qs & 15, qs >> 4], axis=2).reshape(-1, 8, 32)
        if fmt == "q5_k":
            q = q | (((b[:, 16:48][:, None, :] >> np.arange(8, dtype=np.uint8)[:, None]) & 1) << 4)
        out = {"d": b[:, 0:2].copy().view(np.float16)[:, 0],
               "dmin": b[:, 2:4].copy().view(np.float16)[:, 0], "sc": sc, "m": m, "q": q}
    for key in ("d", "dmin"):
        if key in out and not np.isfinite(out[key]).all():
            bad = int(np.flatnonzero(~np.isfinite(out[key]))[0])
            raise ValueError(f"raw: super-block {bad} has a NaN or Inf {key}; "
                             "the data is corrupted")
    return out


def dequantize(raw, fmt: str) -> np.ndarray:
    """The float32 weights of K-quant bytes (see the module docstring for the formula)."""
    fmt = check_format(fmt)
    raw = np.asarray(raw)
    f = decode(raw, fmt)
    step = f["d"].astype(np.float32)[:, None] * f["sc"].astype(np.float32)
    if fmt == "q6_k":
        x = step[..., None] * (f["q"].astype(np.int8) - np.int8(32)).astype(np.float32)
    else:
        shift = f["dmin"].astype(np.float32)[:, None] * f["m"].astype(np.float32)
        x = step[..., None] * f["q"].astype(np.float32) - shift[..., None]
    return x.reshape(*raw.shape[:-1], raw.shape[-1] // FORMATS[fmt] * SUPER)


def bits_per_weight(fmt: str) -> float:
    return FORMATS[check_format(fmt)] * 8 / SUPER
