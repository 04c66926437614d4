"""The float interpreter of a traced graph (`qkit.engine.graph`): torch functional ops on
NCHW tensors, one op at a time. Calibration, the loss-aware range search, adaptive rounding
and QAT all run the graph through `run_graph` with their own conv/linear step.
"""

from __future__ import annotations

import numpy as np

from qkit.engine import functions
from qkit.engine.graph import Op

# output grid = input grid: the values are a selection, a mean or a mix of the input's, or
# the zero point (padding)
PASS_THROUGH = ("maxpool", "avgpool", "flatten", "unflatten", "relu", "pad", "upsample")


def run_graph(ops: list[Op], x, layer, post=None, known: dict | None = None) -> dict:
    """Every op's output of a traced graph in NCHW torch tensors: ``layer(op, x)`` computes a
    conv/linear (float, fake-quantized or integer), ``post(op, y)`` may change any output
    (QAT's activation quantizers); pooling, add, flatten and activations are torch's.
    ``known`` holds outputs already computed: those ops are not run again."""
    import torch
    from torch.nn import functional as F

    vals = dict(known or {})
    for op in ops:
        if op.name in vals:
            continue
        args = [vals[i] for i in op.inputs]
        if op.kind == "input":
            y = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, np.float32))
        elif op.kind in ("conv", "linear"):
            y = layer(op, args[0])
        else:
            y = float_op(op, args)
        if op.activation == "relu":
            y = F.relu(y)
        elif op.activation == "relu6":
            y = F.relu6(y)
        vals[op.name] = y if post is None else post(op, y)
    return vals


def float_op(op: Op, args: list):
    """Any op but input, conv and linear, on float NCHW torch tensors."""
    import torch
    from torch.nn import functional as F

    p, x = op.params, args[0]
    if op.kind == "add":
        return x + args[1]
    if op.kind == "mul":
        return x * args[1]
    if op.kind == "concat":
        return torch.cat(args, p["dim"])
    if op.kind == "lut":
        return functions.apply(p, x)
    if op.kind == "maxpool":
        return F.max_pool2d(x, p["kernel"], p["stride"])
    if op.kind == "avgpool":
        return x.mean(dim=(2, 3), keepdim=True) if p.get("global") else \
            F.avg_pool2d(x, p["kernel"], p["stride"])
    if op.kind == "pad":
        top, bottom, left, right = p["pad"]
        return F.pad(x, (left, right, top, bottom), value=p["value"])
    if op.kind == "upsample":
        bilinear = p["mode"] == "bilinear"
        return F.interpolate(x, scale_factor=p["scale"], mode=p["mode"],
                             align_corners=p["align_corners"] if bilinear else None)
    if op.kind == "flatten":
        return x.flatten(1)
    if op.kind == "unflatten":
        return x.reshape(x.shape[0], -1, 1, 1)
    if op.kind == "relu":
        return F.relu(x)
    raise ValueError(f"unknown op kind {op.kind!r} (op {op.name})")


def float_layer(op: Op, x):
    """A conv/linear op with its own (BN-folded) float weights."""
    import torch
    from torch.nn import functional as F

    p = op.params
    w, b = torch.from_numpy(p["weight"]), torch.from_numpy(p["bias"])
    if op.kind == "conv":
        return F.conv2d(x, w, b, p["stride"], p["padding"], p["dilation"], p["groups"])
    return F.linear(x, w, b)


def run_float(ops: list[Op], x, keep: bool = False):
    """The traced float model (BN folded) with torch functional ops, NCHW; all outputs if keep."""
    import torch

    with torch.no_grad():
        vals = run_graph(ops, x, float_layer)
    return vals if keep else vals[ops[-1].name]
