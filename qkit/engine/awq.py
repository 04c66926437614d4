"""AWQ: activation-aware weight quantization (Lin et al., MLSys 2024).

A few input channels of a layer carry much larger activations than the rest; the weights
that multiply them matter most. AWQ protects them without keeping any in float: it
multiplies input channel ``j`` of the weights by ``s_j`` and divides the activation by
``s_j`` (folded into the layer before: an RMSNorm's weight, or the rows of the linear
feeding it), which leaves the float model unchanged but gives the salient weights a finer
share of the quantization grid. The scales are ``s = mean|x|^alpha``, normalised by
``sqrt(max s * min s)``, with ``alpha`` searched on a grid of 20 values in [0, 1) for the
smallest output error of the quantized linears (`search_scales`). Then each group's range
is shrunk by the ratio (1, 0.975, ..., 0.525) that gives the smallest output error
(`search_clip`), and the weights are rounded to nearest.

qkit measures the error on the outputs of the linears that share the input (AWQ's code
uses the output of the module holding them, e.g. the whole attention block); the search,
the normalisation and the grids are the authors'. All arithmetic is float32 (torch).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from qkit.engine.rtn import WeightScheme, rtn


def _fake(w: torch.Tensor, scheme: WeightScheme) -> torch.Tensor:
    return torch.from_numpy(rtn(w.numpy(), scheme).dequantize())


def _check(x, weights) -> tuple[torch.Tensor, list[torch.Tensor]]:
    x = torch.as_tensor(np.asarray(x, np.float32))
    if x.ndim != 2 or x.shape[0] == 0 or not torch.isfinite(x).all():
        raise ValueError(f"x must be finite (tokens, in) activations, got shape {tuple(x.shape)}")
    ws = [torch.as_tensor(np.asarray(w, np.float32)) for w in weights]
    if not ws or any(w.ndim != 2 or w.shape[1] != x.shape[1] for w in ws):
        raise ValueError(f"weights must be (out, {x.shape[1]}) matrices reading x's channels")
    return x, ws


def search_scales(x, weights, scheme: WeightScheme, grid: int = 20):
    """The per-input-channel scales ``s`` (float32, (in,)), the chosen ``alpha`` and the loss
    at every ``alpha`` for linears ``weights`` (each (out, in)) that all read ``x``."""
    x, ws = _check(x, weights)
    if not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be an int >= 1, got {grid!r}")
    mean = x.abs().mean(0).clamp(min=1e-8)
    reference = [x @ w.T for w in ws]
    losses = []
    best = (np.inf, None, None)
    for i in range(grid):
        alpha = i / grid
        s = mean.pow(alpha).clamp(min=1e-4)
        s = s / (s.max() * s.min()).sqrt()
        loss = sum(float(((x @ (_fake(w * s, scheme) / s).T - ref) ** 2).mean())
                   for w, ref in zip(ws, reference, strict=True))
        losses.append(loss)
        if loss < best[0]:
            best = (loss, alpha, s)
    return best[2].numpy(), best[1], np.array(losses)


def search_clip(x, w, scheme: WeightScheme, steps: int = 20, max_shrink: float = 0.5,
                tokens: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The weight ``w`` (out, in) with each group's range shrunk by the ratio that gives the
    smallest output error on (up to ``tokens`` of) ``x``, and the ratios (out, groups)."""
    x, (w,) = _check(x, [w])
    x = x[torch.linspace(0, x.shape[0] - 1, min(tokens, x.shape[0])).long()]
    out, n = w.shape
    g = scheme.group_size or n
    pad = scheme.groups(n) * g - n  # a shorter last group: zero columns change nothing
    w, x = F.pad(w, (0, pad)), F.pad(x, (0, pad))
    n += pad
    wg = w.reshape(out, n // g, g)  # (out, G, g)
    xg = x.reshape(x.shape[0], n // g, g).permute(1, 0, 2)  # (G, T, g)
    reference = torch.einsum("gtk,ogk->got", xg, wg)
    hi = wg.amax(-1, keepdim=True)
    lo = wg.amin(-1, keepdim=True)
    best_err = torch.full((out, n // g), float("inf"))
    best_ratio = torch.ones(out, n // g)
    for i in range(int(max_shrink * steps)):
        ratio = 1 - i / steps
        clipped = torch.minimum(torch.maximum(wg, lo * ratio), hi * ratio).reshape(out, n)
        q = _fake(clipped, scheme).reshape(out, n // g, g)
        err = ((torch.einsum("gtk,ogk->got", xg, q) - reference) ** 2).mean(-1).T  # (out, G)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_ratio = torch.where(better, torch.tensor(ratio), best_ratio)
    r = best_ratio[..., None]
    clipped = torch.minimum(torch.maximum(wg, lo * r), hi * r).reshape(out, n)
    return clipped[:, :n - pad].numpy(), best_ratio.numpy()
