"""llama.cpp's legacy GGUF block formats: 32 weights, one float16 scale (and a minimum).

Every block holds 32 consecutive weights of a row. The scale ``d`` (and for the ``_1``
formats the minimum ``m``) is stored as IEEE float16; the weights as 4, 5 or 8-bit codes.

========  =====  ==========================================  ======================  ========
format    bytes  scale                                        code                    value
========  =====  ==========================================  ======================  ========
``q8_0``  34     ``d = amax / 127``                           ``roundf(x / d)``       ``d*q``
``q4_0``  18     ``d = x[argmax |x|] / -8`` (signed!)          ``trunc(x/d + 8.5)``    ``d*(q-8)``
``q4_1``  20     ``d = (max - min) / 15``, ``m = min``        ``trunc((x-m)/d + .5)`` ``d*q + m``
``q5_0``  22     ``d = x[argmax |x|] / -16``                   ``trunc(x/d + 16.5)``   ``d*(q-16)``
``q5_1``  24     ``d = (max - min) / 31``, ``m = min``        ``trunc((x-m)/d + .5)`` ``d*q + m``
========  =====  ==========================================  ======================  ========

All in float32, as llama.cpp's C reference and the ``gguf`` package compute it, quirks
included: the code uses ``1/d`` in float32, *before* ``d`` is rounded to float16 (so the
stored ``d`` is not exactly the one the codes were made with); ``roundf`` rounds halves
away from zero; ``q4_0``'s signed ``d`` puts the largest-magnitude weight on code 0
(value ``-8 d``) so the grid reaches one step further on that weight's side; codes are
clipped to the top code, which the opposite extreme ``-max`` would pass. Byte layout per
block: ``d`` (2 bytes, little-endian), ``m`` (2), for 5-bit formats ``qh`` (4: bit ``j`` is
bit 4 of code ``j``), then the low nibbles: byte ``j`` holds code ``j`` in its low and code
``j + 16`` in its high 4 bits (``q8_0``: 32 int8 codes).

>>> x = np.arange(32, dtype=np.float32) - 8            # -8 .. 23
>>> x[-1] = 22                                         # max - min = 30: d = 30 / 15 = 2
>>> raw = quantize(x, "q4_1")                          # one block of 20 bytes
>>> raw.shape, decode(raw, "q4_1")["d"].item(), decode(raw, "q4_1")["m"].item()
((20,), 2.0, -8.0)
>>> dequantize(raw, "q4_1")[:6].tolist()               # trunc(... + 0.5): halves round up
[-8.0, -6.0, -6.0, -4.0, -4.0, -2.0]
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_float_array

BLOCK = 32
FLOAT16_MAX = 65504.0

# name: (code bits, affine (has m), bytes per block)
FORMATS = {"q8_0": (8, False, 34), "q4_0": (4, False, 18), "q4_1": (4, True, 20),
           "q5_0": (5, False, 22), "q5_1": (5, True, 24)}


def check_format(fmt) -> str:
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    return fmt.lower()


def _blocks(x) -> np.ndarray:
    x = check_float_array(x, "x")
    if x.ndim == 0 or x.shape[-1] % BLOCK:
        raise ValueError(f"x's last axis must be a multiple of {BLOCK} (one block is {BLOCK} "
                         f"weights of a row), got shape {x.shape}")
    return x.reshape(-1, BLOCK)


def _scales(blocks: np.ndarray, bits: int, affine: bool):
    if bits == 8:
        d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
        lo = None
    elif affine:
        lo = blocks.min(axis=1, keepdims=True)
        d = (blocks.max(axis=1, keepdims=True) - lo) / np.float32(2**bits - 1)
    else:
        i = np.abs(blocks).argmax(axis=1)[:, None]  # first of the largest magnitudes
        d = np.take_along_axis(blocks, i, axis=1) / np.float32(-(2 ** (bits - 1)))
        lo = None
    if np.abs(d).max() > FLOAT16_MAX or (lo is not None and np.abs(lo).max() > FLOAT16_MAX):
        raise ValueError("x is too large for this format: its float16 block scale (or minimum) "
                         f"would overflow {FLOAT16_MAX:g}")
    return d.astype(np.float32), lo


def codes(x, fmt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The codes (uint8; int8 for ``q8_0``), float16 ``d`` and ``m`` of each block of ``x``."""
    bits, affine, _ = FORMATS[check_format(fmt)]
    blocks = _blocks(x)
    d, lo = _scales(blocks, bits, affine)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    if bits == 8:
        t = blocks * inv
        q = (np.sign(t) * np.floor(np.abs(t) + np.float32(0.5))).astype(np.int8)  # roundf
    else:
        offset = 0.5 if affine else 2 ** (bits - 1) + 0.5
        t = (blocks - lo) * inv if affine else blocks * inv
        q = np.clip(np.trunc(t + np.float32(offset)), 0, 2**bits - 1).astype(np.uint8)
    m = lo.astype(np.float16) if affine else None
    return q, d.astype(np.float16), m


def _pack(q: np.ndarray, bits: int) -> list[np.ndarray]:
    if bits == 8:
        return [q.view(np.uint8)]
    low = (q[:, :16] & 15) | ((q[:, 16:] & 15) << 4)
    if bits == 4:
        return [low.astype(np.uint8)]
    high = np.packbits((q >> 4) & 1, axis=1, bitorder="little")  # (n, 4): bit j = bit 4 of q_j
    return [high, low.astype(np.uint8)]


def quantize(x, fmt: str) -> np.ndarray:
    """The GGUF bytes of ``x``: its last axis of ``n`` weights becomes ``n/32`` blocks' bytes."""
    fmt = check_format(fmt)
    bits, affine, size = FORMATS[fmt]
    shape = np.shape(x)
    q, d, m = codes(x, fmt)
    parts = [d.view(np.uint8)] + ([m.view(np.uint8)] if affine else []) + _pack(q, bits)
    raw = np.concatenate(parts, axis=1)
    return raw.reshape(*shape[:-1], shape[-1] // BLOCK * size)


def _raw_blocks(raw, fmt: str) -> np.ndarray:
    raw = np.asarray(raw)
    size = FORMATS[fmt][2]
    if raw.dtype != np.uint8:
        raise TypeError(f"raw must be the uint8 bytes of {fmt} blocks, got dtype {raw.dtype}")
    if raw.ndim == 0 or raw.size == 0 or raw.shape[-1] % size:
        raise ValueError(f"raw's last axis must be a whole number of {fmt} blocks of {size} "
                         f"bytes, got shape {raw.shape}")
    return np.ascontiguousarray(raw).reshape(-1, size)


def decode(raw, fmt: str) -> dict[str, np.ndarray]:
    """Each block's fields: ``d`` and ``m`` (float16, ``m`` only for ``_1``) and its 32 codes."""
    fmt = check_format(fmt)
    bits, affine, _ = FORMATS[fmt]
    blocks = _raw_blocks(raw, fmt)
    d = blocks[:, 0:2].copy().view(np.float16)[:, 0]
    out = {"d": d}
    at = 2
    if affine:
        out["m"] = blocks[:, 2:4].copy().view(np.float16)[:, 0]
        at = 4
    if not all(np.isfinite(v).all() for v in out.values()):
        bad = int(np.flatnonzero(~np.isfinite(d) | ~np.isfinite(out.get("m", d)))[0])
        raise ValueError(f"raw: block {bad} has a NaN or Inf scale; the data is corrupted")
    if bits == 8:
        out["q"] = blocks[:, at:].view(np.int8)
        return out
    high = 0
    if bits == 5:
        high = np.unpackbits(blocks[:, at:at + 4], axis=1, bitorder="little") << 4
        at += 4
    low = blocks[:, at:at + 16]
    out["q"] = (np.concatenate([low & 15, low >> 4], axis=1) | high).astype(np.uint8)
    return out


def dequantize(raw, fmt: str) -> np.ndarray:
    """The float32 weights of GGUF bytes: ``d * (q - offset)`` or ``d * q + m`` per block."""
    fmt = check_format(fmt)
    bits, affine, size = FORMATS[fmt]
    raw = np.asarray(raw)
    f = decode(raw, fmt)
    d = f["d"].astype(np.float32)[:, None]
    if bits == 8:
        x = f["q"].astype(np.float32) * d
    elif affine:
        x = d * f["q"].astype(np.float32) + f["m"].astype(np.float32)[:, None]
    else:
        x = d * (f["q"].astype(np.float32) - np.float32(2 ** (bits - 1)))
    return x.reshape(*raw.shape[:-1], raw.shape[-1] // size * BLOCK)


def bits_per_weight(fmt: str) -> float:
    """Bytes per block x 8 / 32: ``q4_0`` 4.5, ``q4_1`` 5.0, ``q8_0`` 8.5."""
    return FORMATS[check_format(fmt)][2] * 8 / BLOCK


def split(raw, fmt: str) -> dict:
    """Q4_0 / Q4_1 bytes (rows, n/32 * size) as the block dot product's operands: ``qs``
    (rows, blocks, 16) packed codes, ``d`` and ``m`` (rows, blocks) float32, ``offset``."""
    fmt = check_format(fmt)
    if fmt not in ("q4_0", "q4_1"):
        raise ValueError(f"the 4-bit block dot product takes q4_0 or q4_1 weights, got {fmt!r}")
    raw = np.asarray(raw)
    if raw.ndim != 2:
        raise ValueError(f"raw must be (rows, bytes), got shape {raw.shape}")
    f = decode(raw, fmt)
    rows, size = raw.shape[0], FORMATS[fmt][2]
    blocks = np.ascontiguousarray(raw).reshape(rows, -1, size)
    m = f["m"] if "m" in f else np.zeros_like(f["d"])
    return {"qs": np.ascontiguousarray(blocks[:, :, size - 16:]),
            "d": f["d"].astype(np.float32).reshape(rows, -1),
            "m": m.astype(np.float32).reshape(rows, -1), "offset": 8 if fmt == "q4_0" else 0}


def quantize_activations(x) -> tuple[np.ndarray, np.ndarray]:
    """Activations (tokens, n) as Q8_0 blocks, as llama.cpp quantizes them before a 4-bit dot
    product: int8 codes (tokens, n/32, 32) and their float16 scales as float32."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be (tokens, n), got shape {x.shape}")
    q, d, _ = codes(x, "q8_0")
    return q.reshape(x.shape[0], -1, BLOCK), d.astype(np.float32).reshape(x.shape[0], -1)
