"""Rotations against outliers (QuaRot, Ashkboos et al. 2024; QuIP#, Tseng et al. 2024).

A Linear computes ``y = x W^T + b``. For any orthogonal ``Q`` (``Q Q^T = I``),

    y = (x Q) (W Q)^T + b

exactly: rotate the activations on the fly, fold the same rotation into the weights once.
In float nothing changes. Quantized, everything does: a channel with outliers is spread over
all n outputs of the rotation, so the largest |x| of a token drops towards its root mean
square, and one scale fits the whole token.

The rotation used is a *random Hadamard* one, ``Q = D (H ⊗ M) / sqrt(2^k)`` for
``n = 2^k * m``: ``D`` random signs, ``H`` Sylvester's Hadamard matrix of size 2^k (applied by
the fast Walsh-Hadamard transform, `qkit.kernels.fwht`) and ``M`` a random orthogonal m x m
matrix (QR of a Gaussian one) for the odd part (MiniLM: 384 = 128 * 3). A norm's scale
``gamma`` and shift ``beta`` fold into the Linear that reads it (`fold_norm`), so in a
pre-norm model the rotation also sees the normalized, outlier-free-of-gamma input.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qkit.core.metrics import sqnr_db
from qkit.engine import formats
from qkit.formats.rotation import Rotation, random_hadamard


def fold_norm(norm: nn.Module, linear: nn.Linear) -> nn.Linear:
    """The Linear that reads ``norm``'s output, with its ``gamma``/``beta`` folded in:
    ``W (gamma * n + beta) + b = (W diag(gamma)) n + (W beta + b)``, to be fed the normalized
    ``n`` (the norm without its affine part)."""
    gamma = norm.weight.detach().double()
    beta = norm.bias.detach().double() if getattr(norm, "bias", None) is not None else 0 * gamma
    w = linear.weight.detach().double()
    b = linear.bias.detach().double() if linear.bias is not None else torch.zeros(w.shape[0])
    out = nn.Linear(linear.in_features, linear.out_features)
    with torch.no_grad():
        out.weight.copy_((w * gamma).float())
        out.bias.copy_((b + w @ beta).float())
    return out


class RotatedLinear(nn.Module):
    """``x -> fq_a(x Q) fq_w(W Q)^T + b``: the same output as ``linear`` in float; ``quantize``
    (a function of a float32 array, e.g. a format's round trip) is applied to the rotated
    activations and weights when given."""

    def __init__(self, linear: nn.Linear, rotation: Rotation | None, quantize_w=None,
                 quantize_a=None):
        super().__init__()
        self.rotation, self.quantize_a = rotation, quantize_a
        w = linear.weight.detach().double().numpy()
        if rotation is not None:
            w = rotation.apply(w)
        w = w.astype(np.float32)
        self.weight = torch.from_numpy(np.asarray(quantize_w(w) if quantize_w else w, np.float32))
        self.bias = linear.bias.detach() if linear.bias is not None else None

    def forward(self, x):
        xr = x.detach().double().numpy()
        if self.rotation is not None:
            xr = self.rotation.apply(xr)
        xr = xr.astype(np.float32)
        if self.quantize_a is not None:
            xr = np.asarray(self.quantize_a(xr), np.float32)
        return F.linear(torch.from_numpy(np.ascontiguousarray(xr)), self.weight, self.bias)


def channel_outliers(x) -> float:
    """max over channels / median over channels of each channel's max |x| (x (tokens, C))."""
    m = np.abs(np.asarray(x, np.float64)).max(axis=0)
    return float(m.max() / max(np.median(m), 1e-30))


def _per_tensor_int(x, bits):
    q = 2 ** (bits - 1) - 1
    s = max(float(np.abs(x).max()) / q, 1e-30)
    return np.clip(np.rint(x / s), -q, q) * s


def _per_token_int(x, bits):
    q = 2 ** (bits - 1) - 1
    s = np.maximum(np.abs(x).max(axis=-1, keepdims=True) / q, 1e-30)
    return np.clip(np.rint(x / s), -q, q) * s


# activation quantizers, rows = tokens, blocks along the channels (the last axis)
ACTIVATION_QUANTIZERS = {
    "int8 per tensor": lambda x: _per_tensor_int(x, 8),
    "FP8 E4M3 per tensor": lambda x: formats.round_activation(x, "fp8_e4m3"),
    "int4 per token": lambda x: _per_token_int(x, 4),
    "MXFP4": lambda x: formats.round_activation(x, "mxfp4"),
    "NVFP4": lambda x: formats.round_activation(x, "nvfp4"),
}


def outlier_study(x, seed: int = 0) -> dict:
    """Activations ``x`` (tokens, C) before and after a random Hadamard rotation: the channel
    outlier ratio and the SQNR of each activation quantizer (an orthogonal rotation keeps the
    error's energy, so the SQNR in the rotated basis is the SQNR of the layer's input)."""
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"x must be (tokens, channels) activations, got shape {x.shape}")
    xr = random_hadamard(x.shape[1], seed).apply(x).astype(np.float32)
    out = {"before": {"outliers": channel_outliers(x)}, "after": {"outliers": channel_outliers(xr)},
           "x": x, "x_rotated": xr}
    for name, fn in ACTIVATION_QUANTIZERS.items():
        out["before"][name] = sqnr_db(x, fn(x))
        out["after"][name] = sqnr_db(xr, fn(xr))
    return out


def quantizer(name: str | None, *, weight: bool):
    """A round trip by name: one of `ACTIVATION_QUANTIZERS` or an engine format
    (`qkit.engine.formats.FORMAT_NAMES`, blocks along the last axis); None: no rounding."""
    if name is None:
        return None
    if name in ACTIVATION_QUANTIZERS:
        return ACTIVATION_QUANTIZERS[name]
    if name in formats.FORMAT_NAMES:
        return (lambda w: formats.round_weight(w, name)) if weight else \
            (lambda x: formats.round_activation(x, name, axis=-1))
    raise ValueError(f"unknown quantizer {name!r}: one of {sorted(ACTIVATION_QUANTIZERS)} or "
                     f"{sorted(formats.FORMAT_NAMES)}")


def rotated_minilm(model, *, seed: int = 0, weights: str | None = None,
                   activations: str | None = None, rotate: bool = True):
    """A copy of MiniLM whose every Linear is a `RotatedLinear` (one random Hadamard rotation
    per Linear), weights and inputs rounded by the named `quantizer` (None: float).
    ``rotate=False`` gives the same quantization without rotations, for the comparison."""
    import copy

    from qkit.models import minilm

    q = copy.deepcopy(model)
    wq, aq = quantizer(weights, weight=True), quantizer(activations, weight=False)
    for i, layer in enumerate(q.layers):
        for j, name in enumerate(minilm._KEYS):
            mod = getattr(layer, name)
            if isinstance(mod, nn.Linear):
                rot = random_hadamard(mod.in_features, seed + 100 * i + j) if rotate else None
                new = RotatedLinear(mod, rot, wq, aq)
                new.n_bytes = _stored_bytes(new.weight.numpy(), weights) + 4 * mod.bias.numel()
                setattr(layer, name, new)
    return q


def _stored_bytes(w: np.ndarray, name: str | None) -> int:
    if name in formats.FORMAT_NAMES:
        return formats.weight_bytes(w, name)
    bits = {"int8 per tensor": 8, "int4 per token": 4}.get(name, 32)
    return -(-w.size * bits // 8) + (0 if bits == 32 else 4 * (w.shape[0] if bits == 4 else 1))
