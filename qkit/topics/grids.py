"""Non-uniform grids on whole models: weights through a grid (`qkit.formats.nonuniform`),
activations float, and the accuracy that costs.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from qkit import data
from qkit.formats.nonuniform import GRIDS, quantize
from qkit.models import mnist_cnn


def quantized_copy(model, grid: str, bits: int, block: int | None = None):
    """A deep copy of a torch model whose Conv2d/Linear weights went through the grid (weights
    only, activations stay float) and the total weight bytes at that grid."""
    out = copy.deepcopy(model).eval()
    total = 0
    for mod in out.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            w = mod.weight.detach().numpy()
            cw = quantize(w, grid, bits, block)
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(cw.dequantize().reshape(w.shape)))
            total += cw.nbytes()
    return out, total


def compare_on_mnist(bits_list=(2, 3, 4), grids=GRIDS, block: int | None = None) -> list[dict]:
    """Test accuracy of the MNIST CNN with each grid at each bit width (weights only)."""
    model, split = mnist_cnn.load(), data.mnist5k()
    rows = [{"grid": "fp32", "bits": 32, "bytes": 4 * sum(p.numel() for n, p in
                                                          model.named_parameters()
                                                          if n.endswith("weight") and p.ndim > 1),
             "accuracy": mnist_cnn.accuracy(model, split["x_test"], split["y_test"])}]
    for bits in bits_list:
        for grid in grids:
            q, nbytes = quantized_copy(model, grid, bits, 64 if (grid == "nf" and block is None)
                                       else block)
            rows.append({"grid": grid, "bits": bits, "bytes": nbytes,
                         "accuracy": mnist_cnn.accuracy(q, split["x_test"], split["y_test"])})
    return rows
