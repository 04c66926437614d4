"""A quantized KV cache for SmolLM2, as KIVI does it: keys per channel, values per token, the
most recent tokens in float.

Why this split (Liu et al., "KIVI", ICML 2024): a few *channels* of the keys are large for
every token (outliers along the channel axis), so each key channel gets its own grid over a
group of ``group`` consecutive tokens; values have no such channels, and each attention output
is a mix of value *rows*, so each token's values get one grid per head (64 channels). Both
grids are asymmetric min-max with a float16 scale and minimum (``x = s*q + m``).

Keys can only be quantized per channel once a whole group of tokens exists, so the newest
tokens wait in float: at a cache length of ``L`` tokens, the first
``group * floor(max(0, L - residual) / group)`` are quantized, the rest are float. A query at
position ``p`` therefore sees the keys and values before that boundary (computed with
``L = p + 1``) as stored codes and the others in float, whether the tokens came one at a time
(decode) or all at once (a prompt, a perplexity window): `QuantizedKVCache.attend` applies the
same rule to each query of a block of new tokens, so both give the same numbers.

The arithmetic is float32 on the dequantized values (what a kernel that unpacks codes computes);
`KVScheme.bytes_per_token` is what the codes and scales would occupy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from qkit.models.smollm2 import HEAD, HEADS, KV_HEADS, LAYERS, KVCache


@dataclass(frozen=True)
class KVScheme:
    key_bits: int = 4
    value_bits: int = 4
    group: int = 32  # tokens per key grid (per channel)
    residual: int = 32  # newest tokens kept in float
    keys: str = "channel"  # "token": keys on one grid per token, like values (the contrast)

    def __post_init__(self):
        if self.keys not in ("channel", "token"):
            raise ValueError(f"keys must be 'channel' (KIVI) or 'token', got {self.keys!r}")
        for name in ("key_bits", "value_bits"):
            b = getattr(self, name)
            if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 8:
                raise ValueError(f"{name} must be an int in 1..8, got {b!r}")
        if isinstance(self.group, bool) or not isinstance(self.group, int) or self.group < 1:
            raise ValueError(f"group must be an int >= 1 (tokens per key grid), "
                             f"got {self.group!r}")
        r = self.residual
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ValueError(f"residual must be an int >= 0 (float tokens), got {r!r}")

    def describe(self) -> str:
        keys = (f"keys per channel in groups of {self.group} tokens" if self.keys == "channel"
                else "keys per token")
        return (f"K int{self.key_bits} / V int{self.value_bits}, {keys}, {self.residual} newest "
                "in float")

    def quantized(self, length: int) -> int:
        """How many of ``length`` cached tokens are stored as codes."""
        return self.group * (max(0, length - self.residual) // self.group)

    def bytes_per_token(self) -> float:
        """Bytes of one quantized token's keys and values over all layers: codes plus the
        float16 scale and minimum (per key channel per group of tokens, per value row)."""
        elements = LAYERS * KV_HEADS * HEAD
        per_key = self.group if self.keys == "channel" else HEAD  # elements per scale
        keys = elements * (self.key_bits + 32 / per_key) / 8
        values = elements * (self.value_bits + 32 / HEAD) / 8
        return keys + values


def _minmax(x: torch.Tensor, bits: int, dim: int) -> torch.Tensor:
    """x rounded to the asymmetric min-max grid of ``bits`` along ``dim`` (scale and minimum
    stored as float16)."""
    lo = x.amin(dim, keepdim=True)
    hi = x.amax(dim, keepdim=True)
    top = 2 ** bits - 1
    m = lo.half().float()
    s = ((hi - lo) / top).half().float()
    s = torch.where(s > 0, s, torch.ones_like(s))  # a constant row: every code 0, value m
    q = torch.clamp(torch.round((x - m) / s), 0, top)
    return q * s + m


def quantize_keys(k: torch.Tensor, scheme: KVScheme) -> torch.Tensor:
    """Keys (B,3,S,64) with every complete group of ``scheme.group`` tokens rounded per
    channel (or, with ``scheme.keys == "token"``, every token on one grid per head); the
    incomplete last group is left in float (it is never read quantized)."""
    if scheme.keys == "token":
        return _minmax(k, scheme.key_bits, dim=3)
    b, h, s, d = k.shape
    whole = s // scheme.group * scheme.group
    if whole == 0:
        return k
    g = k[:, :, :whole].reshape(b, h, whole // scheme.group, scheme.group, d)
    out = _minmax(g, scheme.key_bits, dim=3).reshape(b, h, whole, d)
    return torch.cat([out, k[:, :, whole:]], dim=2)


def quantize_values(v: torch.Tensor, scheme: KVScheme) -> torch.Tensor:
    """Values (B,3,S,64), each token's 64 channels of each head on one grid."""
    return _minmax(v, scheme.value_bits, dim=3)


class QuantizedKVCache(KVCache):
    """A `qkit.models.smollm2.KVCache` whose older tokens are read back from ``scheme``'s
    codes: pass it to the model like the float cache (``model(ids, QuantizedKVCache(s))``)."""

    def __init__(self, scheme: KVScheme = KVScheme()):
        if not isinstance(scheme, KVScheme):
            raise TypeError(f"scheme must be a KVScheme, got {type(scheme).__name__}")
        super().__init__()
        self.scheme = scheme

    def bytes_per_token(self) -> float:
        return self.scheme.bytes_per_token()

    def nbytes(self) -> float:
        """Bytes of the cache as stored now: codes for the quantized tokens, float32 for the
        rest."""
        n = self.length
        q = self.scheme.quantized(n)
        return q * self.scheme.bytes_per_token() + (n - q) * super().bytes_per_token()

    def attend(self, layer: int, q, k, v, start: int):
        k, v = self.append(layer, k, v)
        t, s = q.shape[2], k.shape[2]
        positions = torch.arange(start, start + t)
        bound = torch.tensor([self.scheme.quantized(int(p) + 1) for p in positions])
        coded = torch.arange(s)[None, :] < bound[:, None]  # (T,S): read from the codes
        if not bool(coded.any()):
            from qkit.models.smollm2 import attention

            return attention(q, k, v)
        rep = HEADS // KV_HEADS
        kq, vq = quantize_keys(k, self.scheme), quantize_values(v, self.scheme)
        kf, kq = k.repeat_interleave(rep, 1), kq.repeat_interleave(rep, 1)
        vf, vq = v.repeat_interleave(rep, 1), vq.repeat_interleave(rep, 1)
        att = torch.where(coded, q @ kq.transpose(-1, -2), q @ kf.transpose(-1, -2))
        att = att / math.sqrt(HEAD)
        if t > 1:
            att = att.masked_fill(~torch.ones(t, s, dtype=torch.bool).tril(s - t),
                                  float("-inf"))
        p = torch.softmax(att, dim=-1)
        return (p * coded) @ vq + (p * ~coded) @ vf
