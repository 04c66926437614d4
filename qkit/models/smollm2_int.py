"""SmolLM2 on qkit's integer kernels: every linear a 4-bit x 8-bit block dot product.

`BlockLinear` holds a linear's weights as Q4_0 / Q4_1 blocks of 32 (the bytes of a GGUF
file, split once into packed codes and float32 scales) and, on each call, quantizes its
input per block of 32 to Q8_0 as llama.cpp does, then runs `qkit.kernels.block_dot`: exact
int32 sums per block, float32 scales. `from_file` runs the shipped file's own bytes: Q4_1
linears and, as the tied output layer, the Q8_0 embedding (`Q8Output`, Q8_0 x Q8_0 blocks),
which is what llama.cpp computes; `requantized` first rounds the reference weights to another
4-bit format and keeps the float output layer. The embedding lookup, the norms and attention
stay float32.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from qkit import kernels
from qkit.formats import ggml
from qkit.kernels.blockdot import block_linear
from qkit.models.smollm2 import LINEARS, SmolLM2, copy_sharing_embedding, raw_tensors


class BlockLinear(nn.Module):
    """``y = x W^T`` with W in Q4_0 / Q4_1 bytes (out, in/32 * size) and x quantized to Q8_0."""

    def __init__(self, raw: np.ndarray, fmt: str):
        super().__init__()
        parts = ggml.split(raw, fmt)
        self.fmt, self.offset = fmt, parts["offset"]
        self.packed = kernels.pack_blocks(parts["qs"], parts["d"], parts["m"])
        self.out_features, self.in_features = parts["qs"].shape[0], parts["qs"].shape[1] * 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        y = block_linear(self.packed, self.offset, x.detach().reshape(-1, self.in_features).numpy())
        return torch.from_numpy(y).reshape(*x.shape[:-1], self.out_features)

    def weight_bytes(self) -> int:
        return self.out_features * self.in_features // ggml.BLOCK * ggml.FORMATS[self.fmt][2]

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, {self.fmt} x q8_0 blocks"


class Q8Output(nn.Module):
    """The tied output layer on the Q8_0 embedding's bytes: Q8_0 x Q8_0 block products."""

    def __init__(self, raw: np.ndarray):
        super().__init__()
        f = ggml.decode(raw, "q8_0")
        rows = raw.shape[0]
        self.packed = kernels.pack_q8(f["q"].reshape(rows, -1, 32),
                                      f["d"].astype(np.float32).reshape(rows, -1))
        self.rows, self.in_features = rows, self.packed.blocks * 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = block_linear(self.packed, 0, x.detach().reshape(-1, self.in_features).numpy())
        return torch.from_numpy(y).reshape(*x.shape[:-1], self.rows)

    def weight_bytes(self) -> int:
        return self.rows * self.packed.blocks * ggml.FORMATS["q8_0"][2]


def _swap(model: SmolLM2, raw_of) -> SmolLM2:
    model = copy_sharing_embedding(model, linears=True)  # every linear is replaced below
    for i, block in enumerate(model.blocks):
        for name in LINEARS:
            raw, fmt = raw_of(i, name, getattr(block, name))
            setattr(block, name, BlockLinear(raw, fmt))
    return model


def from_file(model: SmolLM2) -> SmolLM2:
    """``model`` with its linears on the block kernel, from the GGUF file's own Q4_1 bytes."""
    raw = raw_tensors()

    def of(i, name, _):
        fmt, data = raw[f"blk.{i}.{name}.weight"]
        return data, fmt

    model = _swap(model, of)
    model.output = Q8Output(raw["token_embd.weight"][1])
    return model


def requantized(model: SmolLM2, fmt: str = "q4_0") -> SmolLM2:
    """``model``'s linears rounded to ``fmt`` (``q4_0`` or ``q4_1``), on the block kernel."""
    if fmt not in ("q4_0", "q4_1"):
        raise ValueError(f"fmt must be 'q4_0' or 'q4_1' (the 4-bit block kernel), got {fmt!r}")
    return _swap(model, lambda i, name, lin: (ggml.quantize(lin.weight.detach().numpy(), fmt),
                                                fmt))


def weight_bytes(model: SmolLM2) -> int:
    """Bytes of weights read per token: the block linears and the output layer (Q8_0 or
    float32)."""
    blocks = sum(m.weight_bytes() for m in model.modules() if isinstance(m, BlockLinear))
    out = model.output.weight_bytes() if isinstance(model.output, Q8Output) else \
        model.token_embd.weight.numel() * 4
    return blocks + out
