"""The integer side of the engine's elementwise and shape ops: lookup tables for activations
and scalar arithmetic, products of two tensors, concatenation on a common grid, padding with
the input's zero point, upsampling and the reshape before a squeeze-and-excitation product.

`prepare` turns an op and the calibrated grids into integer parameters (tables, multipliers,
pad values) once; `step` runs the op on uint8 NHWC tensors with a backend (`qkit.kernels` or
`qkit.reference`), so both backends give the same integers.
"""

from __future__ import annotations

import numpy as np

from qkit import reference
from qkit.core.qparams import QParams
from qkit.engine import functions

KINDS = ("lut", "mul", "concat", "pad", "upsample", "unflatten")
NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}  # an NCHW dim -> the engine's NHWC axis


def grid(scale, zero_point) -> QParams:
    return QParams(np.float32(scale), int(zero_point), bits=8, signed=False)


def lut_table(params: dict, in_grid: tuple, out_grid: tuple) -> np.ndarray:
    """``table[q] = quantize(f(dequantize(q)))``: the float function on each of the input
    grid's 256 values (float32, as PyTorch computes it), rounded onto the output grid with the
    engine's own quantizer. Values beyond float32 (``1 / x`` at 0) saturate."""
    import torch

    q = np.arange(256, dtype=np.uint8)
    x = reference.dequantize(q, grid(*in_grid)).astype(np.float32)
    with torch.no_grad():
        y = functions.apply(params, torch.from_numpy(x)).numpy().astype(np.float32)
    s, z = np.float32(out_grid[0]), int(out_grid[1])  # beyond the grid's ends: saturate
    y = np.clip(np.nan_to_num(y, nan=0.0), np.float32(-z - 1) * s, np.float32(256 - z) * s)
    return reference.quantize(y, grid(*out_grid)).astype(np.uint8)


def prepare(op, act: dict) -> dict:
    """Integer parameters of one op from the grids ``act`` (op name -> (scale, zero point))."""
    out = act[op.name]
    if op.kind == "lut":
        return {"table": lut_table(op.params, act[op.inputs[0]], out), "lut_bytes": 256}
    if op.kind == "mul":
        (sa, _), (sb, _) = (act[i] for i in op.inputs)
        return {"mult": np.float32(np.float32(sa) * np.float32(sb) / np.float32(out[0]))}
    if op.kind == "concat":  # each input requantized to the output grid, where they differ
        tables = [None if tuple(act[i]) == tuple(out) else
                  lut_table({"fn": "identity"}, act[i], out) for i in op.inputs]
        return {"tables": tables, "lut_bytes": 256 * sum(t is not None for t in tables)}
    if op.kind == "pad":  # the pad value on the input grid (real 0 is the zero point)
        value = reference.quantize(np.float32([op.params["value"]]), grid(*act[op.inputs[0]]))
        return {"value": int(value[0])}
    return {}


def step(op, vals: dict, act: dict, layer: dict, b) -> np.ndarray:
    """One op on uint8 NHWC tensors (backend ``b``: `qkit.kernels` or `qkit.reference`)."""
    x = vals[op.inputs[0]]
    p = op.params
    if op.kind == "lut":
        return b.lut(x, layer["table"])
    if op.kind == "mul":
        (_, za), (_, zb) = (act[i] for i in op.inputs)
        return b.qmul(x, za, vals[op.inputs[1]], zb, layer["mult"], act[op.name][1], 0, 255)
    if op.kind == "concat":
        parts = [vals[i] if t is None else b.lut(vals[i], t)
                 for i, t in zip(op.inputs, layer["tables"], strict=True)]
        return np.concatenate(parts, axis=concat_axis(p["dim"], x.ndim, op.name))
    if op.kind == "pad":
        return b.pad2d(x, p["pad"], layer["value"])
    if op.kind == "upsample":
        return b.upsample2d(x, p["scale"], p["mode"], p["align_corners"])
    if op.kind == "unflatten":
        return x.reshape(x.shape[0], 1, 1, -1)
    raise ValueError(f"unknown op kind {op.kind!r} (op {op.name})")


def concat_axis(dim: int, ndim: int, name: str) -> int:
    """The NHWC axis of a concatenation over NCHW ``dim`` (2-D tensors keep their dims)."""
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}: concatenation dim {dim} does not exist for {ndim}-D tensors")
    dim %= ndim
    return NHWC_AXIS[dim] if ndim == 4 else dim
