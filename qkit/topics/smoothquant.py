"""Activation outliers in a transformer, and SmoothQuant (Xiao et al., ICML 2023).

A few hidden channels of a transformer carry activations tens of times larger than the
rest. One scale per tensor must cover them, so every other channel gets only a few
integer levels. SmoothQuant moves the difficulty into the weights, which are easy to
quantize per channel: for a Linear ``y = x W^T`` and per-input-channel factors ``s``,
``y = (x / s)(W s)^T`` exactly, with

    s_j = max|x_j|^alpha / max|W_j|^(1 - alpha)      (alpha = 0.5 by default).

In a deployment ``1/s`` is folded into the preceding LayerNorm; here `SmoothedLinear` divides
explicitly, which computes the same numbers. The quantization itself is simulated in float
(fake quantization: per-tensor activations at run time, per-channel symmetric weights), the
arithmetic `qkit.models.minilm.DynamicLinear` runs exactly in integers at 8 bits.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qkit.models import minilm

# Linears that read a LayerNorm output (where 1/s can be folded): the ones SmoothQuant smooths
SMOOTHABLE = ("query", "key", "value", "ffn_in")


def _fake_quant(x: torch.Tensor, bits: int, axis: int | None, symmetric: bool) -> torch.Tensor:
    if symmetric:
        q = 2 ** (bits - 1) - 1
        m = x.abs().amax(dim=axis, keepdim=True) if axis is not None else x.abs().max()
        s = m.clamp_min(1e-12) / q
        return torch.clamp(torch.round(x / s), -q, q) * s
    lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
    s = ((hi - lo) / (2**bits - 1)).clamp_min(1e-12)
    z = torch.round(-lo / s)
    return (torch.clamp(torch.round(x / s) + z, 0, 2**bits - 1) - z) * s


class SmoothedLinear(nn.Module):
    """``x -> fq(x / s) fq(W s)^T + b``: per-tensor dynamic activations (``a_bits``, asymmetric),
    per-output-channel symmetric weights (``w_bits``); ``s = 1`` is plain W/A quantization."""

    def __init__(self, linear: nn.Linear, s: np.ndarray | None, w_bits: int = 8,
                 a_bits: int = 8):
        super().__init__()
        k = linear.in_features
        self.s = torch.ones(k) if s is None else torch.as_tensor(s, dtype=torch.float32)
        w = linear.weight.detach() * self.s
        self.weight = _fake_quant(w, w_bits, axis=1, symmetric=True)
        self.bias, self.a_bits = linear.bias.detach(), a_bits

    def forward(self, x):
        return F.linear(_fake_quant(x / self.s, self.a_bits, None, symmetric=False), self.weight,
                        self.bias)


def capture_inputs(model: minilm.MiniLM, texts: list[str], max_len: int = 64,
                   keys=None, *, reduce=None) -> dict:
    """The inputs of Linears over the real tokens of ``texts`` (padding dropped):
    ``{"layer.name": (tokens, in_features) float32}`` for ``keys`` (default: every smoothable
    Linear of every layer), or ``reduce`` of each (e.g. a per-channel max)."""
    if keys is None:
        keys = [f"{i}.{n}" for i in range(len(model.layers)) for n in SMOOTHABLE]
    tok = minilm.tokenizer(max_len)
    enc = tok.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in enc])
    att = torch.tensor([e.attention_mask for e in enc])
    keep = att.bool().reshape(-1)
    out, hooks = {}, []
    for key in keys:
        i, name = key.split(".")

        def hook(mod, inputs, _, key=key):
            x = inputs[0].reshape(-1, inputs[0].shape[-1])[keep].numpy()
            out[key] = reduce(x) if reduce is not None else x.copy()
        hooks.append(getattr(model.layers[int(i)], name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(ids, att)
    finally:
        for h in hooks:
            h.remove()
    return out


def capture(model: minilm.MiniLM, texts: list[str], max_len: int = 64) -> dict:
    """Per smoothable Linear: the per-input-channel max |x| over the real tokens of ``texts``."""
    return capture_inputs(model, texts, max_len, reduce=lambda x: np.abs(x).max(axis=0))


def smoothing_factors(x_absmax: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant's ``s_j = max|x_j|^alpha / max|W_j|^(1-alpha)`` (weight (N, K))."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    w_max = np.abs(weight).max(axis=0)
    s = np.maximum(x_absmax, 1e-5) ** alpha / np.maximum(w_max, 1e-5) ** (1 - alpha)
    return s.astype(np.float32)


def quantized_model(model: minilm.MiniLM, stats: dict | None, alpha: float = 0.5,
                    w_bits: int = 8, a_bits: int = 8) -> minilm.MiniLM:
    """A copy with every Linear fake-quantized W``w_bits``A``a_bits``; with ``stats`` (from
    `capture`) the smoothable ones are smoothed first."""
    q = copy.deepcopy(model)
    for i, layer in enumerate(q.layers):
        for name in minilm._KEYS:
            mod = getattr(layer, name)
            if not isinstance(mod, nn.Linear):
                continue
            s = None
            if stats is not None and name in SMOOTHABLE:
                s = smoothing_factors(stats[f"{i}.{name}"], mod.weight.detach().numpy(), alpha)
            setattr(layer, name, SmoothedLinear(mod, s, w_bits, a_bits))
    return q


def outlier_summary(stats: dict) -> dict:
    """How concentrated each input's range is: max over channels / median over channels."""
    return {k: float(v.max() / np.median(v)) for k, v in stats.items()}


class SmoothingStudy:
    """SmoothQuant on MiniLM for the explorer of notebook 10: the embedding cosine to fp32 of
    plain and smoothed W8A``a_bits`` fake quantization on ``texts``, and one layer's factors.
    Plain cosines are kept per bit width (they do not depend on alpha)."""

    def __init__(self, model, stats: dict, texts: list[str], max_len: int = 64):
        self.model, self.stats, self.texts, self.max_len = model, stats, texts, max_len
        self.ref = minilm.embed(model, texts, max_len)
        self._plain = {}

    def cosine(self, m) -> float:
        return float((minilm.embed(m, self.texts, self.max_len) * self.ref).sum(axis=1).mean())

    def at(self, alpha: float, a_bits: int, layer: str) -> dict:
        if a_bits not in self._plain:
            self._plain[a_bits] = self.cosine(quantized_model(self.model, None, w_bits=8,
                                                              a_bits=a_bits))
        smoothed = self.cosine(quantized_model(self.model, self.stats, alpha, 8, a_bits))
        i, name = layer.split(".")
        w = getattr(self.model.layers[int(i)], name).weight.detach().numpy()
        x = self.stats[layer]
        s = smoothing_factors(x, w, alpha)
        return {"plain": self._plain[a_bits], "smoothed": smoothed, "a_bits": a_bits,
                "before": float(x.max() / np.median(x)),
                "after": float((x / s).max() / np.median(x / s)), "w": w, "s": s}
