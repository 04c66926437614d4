"""SmolLM2 on qkit's integer kernels: every linear a 4-bit x 8-bit block dot product.

`BlockLinear` holds a linear's weights as Q4_0 / Q4_1 blocks of 32 (the bytes of a GGUF
file, split once into packed codes and float32 scales) and, on each call, quantizes its
input per block of 32 to Q8_0 as llama.cpp does, then runs `qkit.kernels.block_dot`: exact
int32 sums per block, float32 scales. `from_file` runs the shipped file's own Q4_1 bytes;
`requantized` first rounds the reference weights to another block format. The embedding,
the norms, attention and the tied output layer stay float32 (the output layer reads the
Q8_0 embedding's dequantized values).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from qkit import kernels
from qkit.formats import ggml
from qkit.models.smollm2 import LINEARS, SmolLM2, raw_tensors


class BlockLinear(nn.Module):
    """``y = x W^T`` with W in Q4_0 / Q4_1 bytes (out, in/32 * size) and x quantized to Q8_0."""

    def __init__(self, raw: np.ndarray, fmt: str):
        super().__init__()
        parts = ggml.split(raw, fmt)
        self.fmt, self.offset = fmt, parts["offset"]
        self.packed = kernels.pack_blocks(parts["qs"], parts["d"], parts["m"])
        self.out_features, self.in_features = parts["qs"].shape[0], parts["qs"].shape[1] * 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        flat = np.ascontiguousarray(x.detach().reshape(-1, self.in_features).numpy(), np.float32)
        qx, dx = kernels.quantize_q8_blocks(flat)
        y = kernels.block_dot_packed(self.packed, self.offset, qx, dx)
        return torch.from_numpy(y).reshape(*x.shape[:-1], self.out_features)

    def weight_bytes(self) -> int:
        return self.out_features * self.in_features // ggml.BLOCK * ggml.FORMATS[self.fmt][2]

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, {self.fmt} x q8_0 blocks"


def _swap(model: SmolLM2, raw_of) -> SmolLM2:
    model = copy.deepcopy(model)
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

    return _swap(model, of)


def requantized(model: SmolLM2, fmt: str = "q4_0") -> SmolLM2:
    """``model``'s linears rounded to ``fmt`` (``q4_0`` or ``q4_1``), on the block kernel."""
    if fmt not in ("q4_0", "q4_1"):
        raise ValueError(f"fmt must be 'q4_0' or 'q4_1' (the 4-bit block kernel), got {fmt!r}")
    return _swap(model, lambda i, name, lin: (ggml.quantize(lin.weight.detach().numpy(), fmt),
                                                fmt))


def weight_bytes(model: SmolLM2) -> int:
    """Bytes of weights read per token: the block linears plus the float32 output layer."""
    blocks = sum(m.weight_bytes() for m in model.modules() if isinstance(m, BlockLinear))
    return blocks + model.token_embd.weight.numel() * 4
