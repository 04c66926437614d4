"""SmolLM2's 210 linear layers quantized by RTN, GPTQ or AWQ, block by block.

* ``rtn``: every weight rounded to nearest with min-max parameters; no calibration.
* ``gptq``: the 30 blocks in order; each block's linears get their Hessians from the inputs
  that reach them through the *already quantized* blocks before (the paper's sequential
  scheme), all seven at once per block, ``act_order`` by default, dampening 0.01.
* ``awq``: the float model, block by block: scales searched and folded for
  (attn_norm -> q, k, v), (ffn_norm -> gate, up) and (up -> down), the o projection left
  unscaled (its input width 576 differs from v's 192 outputs under grouped-query
  attention, as in AWQ's own code), ranges clipped for every linear but q and k, then RTN.

The token embedding (also the output layer) and the norms stay as they are in the
reference, as GPTQ and AWQ leave them. Calibration: the first ``windows`` windows of
``context`` tokens of the Wikipedia calibration split (disjoint from the evaluation
articles): 8 x 512 = 4,096 tokens by default (GPTQ used 128 x 2,048 of C4, AWQ 128 x 512 of
the Pile: a small-sample setting, stated in every result).
"""

from __future__ import annotations

import numpy as np
import torch

from qkit.engine import awq, gptq
from qkit.engine.rtn import QuantizedWeight, WeightScheme, rtn
from qkit.models.smollm2 import LINEARS, SmolLM2, copy_sharing_embedding, text_tokens

METHODS = ("rtn", "gptq", "awq")


def calibration(windows: int = 8, context: int = 512) -> torch.Tensor:
    """(windows, context) token ids from the start of the calibration split."""
    ids = text_tokens("calibration")
    if not isinstance(windows, int) or windows < 1 or windows * context > ids.size:
        raise ValueError(f"windows must be an int in 1..{ids.size // context}, got {windows!r}")
    return torch.from_numpy(ids[:windows * context].reshape(windows, context))


def _inputs(block, x: torch.Tensor):
    """The block's output and the (tokens, in) input of each of its linears."""
    seen = {}
    hooks = [getattr(block, n).register_forward_hook(
        lambda m, a, o, n=n: seen.__setitem__(n, a[0].reshape(-1, a[0].shape[-1]).clone()))
        for n in LINEARS]
    try:
        out = block(x, 0, None, 0)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


def _set(block, name: str, q: QuantizedWeight):
    getattr(block, name).weight.copy_(torch.from_numpy(q.dequantize()))


def _awq_block(block, seen: dict, scheme: WeightScheme, tokens: int) -> dict:
    rows = torch.linspace(0, seen["attn_q"].shape[0] - 1, tokens).long()
    w = {n: getattr(block, n).weight for n in LINEARS}
    groups = [(block.attn_norm.weight, ("attn_q", "attn_k", "attn_v")),
              (block.ffn_norm.weight, ("ffn_gate", "ffn_up")), (w["ffn_up"], ("ffn_down",))]
    alphas = {}
    for before, names in groups:
        x = seen[names[0]][rows]
        s, alpha, _ = awq.search_scales(x, [w[n].numpy() for n in names], scheme)
        s = torch.from_numpy(s)
        before.div_(s[:, None] if before.ndim == 2 else s)  # the layer before: rows / s
        for n in names:
            w[n].mul_(s)
            seen[n] = seen[n] / s
        alphas[names[0]] = alpha
    out = {}
    for n in LINEARS:
        weight = w[n].numpy()
        if n not in ("attn_q", "attn_k"):
            weight, _ = awq.search_clip(seen[n], weight, scheme)
        out[n] = rtn(weight, scheme)
        _set(block, n, out[n])
    return out


@torch.inference_mode()
def quantize(model: SmolLM2, method: str, scheme: WeightScheme, *, windows: int = 8,
             act_order: bool = True, awq_tokens: int = 512, progress: bool = False):
    """A copy of ``model`` with every block's linears quantized by ``method`` (fake-quantized:
    the dequantized weights in float32), and the `QuantizedWeight` of each linear."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    from tqdm.auto import tqdm

    model = copy_sharing_embedding(model)
    weights = {}
    x = model.token_embd(calibration(windows)) if method != "rtn" else None
    for i, block in enumerate(tqdm(model.blocks, disable=not progress, desc=method)):
        if method == "rtn":
            q = {n: rtn(getattr(block, n).weight.numpy(), scheme) for n in LINEARS}
            for n in LINEARS:
                _set(block, n, q[n])
        else:
            out, seen = _inputs(block, x)
            if method == "awq":
                q = _awq_block(block, seen, scheme, min(awq_tokens, seen["attn_q"].shape[0]))
                x = out  # AWQ searches on the float model: scaling left its outputs unchanged
            else:
                q = {n: gptq.gptq(getattr(block, n).weight.numpy(), gptq.hessian(seen[n]),
                                  scheme, act_order=act_order) for n in LINEARS}
                for n in LINEARS:
                    _set(block, n, q[n])
                x = block(x, 0, None, 0)  # the next block sees this block quantized
        weights.update({f"blk.{i}.{n}": v for n, v in q.items()})
    return model, weights


def weight_bytes(weights: dict[str, QuantizedWeight]) -> int:
    """Stored bytes of the quantized linears: codes at their bits, float16 scales and zeros."""
    total = 0.0
    for q in weights.values():
        n_out, n_in = q.codes.shape
        total += n_out * n_in * q.scheme.bits_per_weight(n_in) / 8
    return int(total)


@torch.inference_mode()
def activation_means(model: SmolLM2, windows: int = 4) -> dict[str, np.ndarray]:
    """``mean |x|`` of each input channel of every linear on calibration text (float model)."""
    x = model.token_embd(calibration(windows))
    means = {}
    for i, block in enumerate(model.blocks):
        out, seen = _inputs(block, x)
        means.update({f"blk.{i}.{n}": seen[n].abs().mean(0).numpy() for n in LINEARS})
        x = out
    return means


@torch.inference_mode()
def keep_float_channels(model: SmolLM2, scheme: WeightScheme, means: dict[str, np.ndarray],
                        fraction: float = 0.01, rule: str = "salient", seed: int = 0):
    """RTN everywhere except the weights of a ``fraction`` of each linear's input channels,
    kept in float: the channels with the largest ``mean |x|`` (``salient``, AWQ's
    observation) or as many chosen at random (``random``, the control)."""
    if rule not in ("salient", "random"):
        raise ValueError(f"rule must be 'salient' or 'random', got {rule!r}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    rng = np.random.default_rng(seed)
    model = copy_sharing_embedding(model)
    for i, block in enumerate(model.blocks):
        for n in LINEARS:
            weight = getattr(block, n).weight
            m = means[f"blk.{i}.{n}"]
            k = int(round(fraction * m.size))
            keep = np.argsort(-m)[:k] if rule == "salient" else rng.choice(m.size, k, replace=False)
            q = rtn(weight.numpy(), scheme).dequantize()
            q[:, keep] = weight.numpy()[:, keep]
            weight.copy_(torch.from_numpy(q))
    return model


class CodeLinear(torch.nn.Module):
    """A linear layer kept as its codes (one byte each), a float32 scale and an integer zero
    point per group: a quarter of the float32 bytes. Each call rebuilds the weight as
    `QuantizedWeight.dequantize` does (the same float32 values, bit for bit) and multiplies
    in float32; slower than a float copy, 4x smaller."""

    def __init__(self, q: QuantizedWeight):
        super().__init__()
        self.out_features, self.in_features = q.codes.shape
        dtype = np.int8 if q.scheme.symmetric else np.uint8
        self.group = q.scheme.group_size or self.in_features
        self.register_buffer("codes", torch.from_numpy(q.codes.astype(dtype)))
        self.register_buffer("scale", torch.from_numpy(np.ascontiguousarray(q.scale)))
        self.register_buffer("zero", torch.from_numpy(q.zero_point.astype(np.float32)))

    def dequantized(self) -> torch.Tensor:
        n = self.in_features
        zero = self.zero.repeat_interleave(self.group, 1)[:, :n]
        scale = self.scale.repeat_interleave(self.group, 1)[:, :n]
        return (self.codes.float() - zero) * scale

    def forward(self, x):
        return torch.nn.functional.linear(x, self.dequantized())

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, codes in groups of {self.group}"


def rtn_as_codes(model: SmolLM2, scheme: WeightScheme) -> SmolLM2:
    """``quantize(model, "rtn", scheme)``'s model with every block linear stored as its codes
    (`CodeLinear`): the same logits, about 110 MB of weights instead of 430 MB."""
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    out = copy_sharing_embedding(model, linears=True)  # every linear is replaced below
    for block in out.blocks:
        for n in LINEARS:
            setattr(block, n, CodeLinear(rtn(getattr(block, n).weight.numpy(), scheme)))
    return out
