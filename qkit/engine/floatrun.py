"""The float interpreter of a traced graph (`qkit.engine.graph`): torch functional ops on
NCHW tensors, one op at a time. Calibration, the loss-aware range search, adaptive rounding
and QAT all run the graph through `run_graph` with their own conv/linear step.
"""

from __future__ import annotations

import numpy as np

from qkit.engine.graph import Op

PASS_THROUGH = ("maxpool", "avgpool", "flatten", "relu")  # output grid = input grid



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
        p = op.params
        args = [vals[i] for i in op.inputs]
        if op.kind == "input":
            y = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, np.float32))
        elif op.kind in ("conv", "linear"):
            y = layer(op, args[0])
        elif op.kind == "add":
            y = args[0] + args[1]
        elif op.kind == "maxpool":
            y = F.max_pool2d(args[0], p["kernel"], p["stride"])
        elif op.kind == "avgpool":
            y = args[0].mean(dim=(2, 3), keepdim=True) if p.get("global") else \
                F.avg_pool2d(args[0], p["kernel"], p["stride"])
        elif op.kind == "flatten":
            y = args[0].flatten(1)
        elif op.kind == "relu":
            y = F.relu(args[0])
        if op.activation == "relu":
            y = F.relu(y)
        elif op.activation == "relu6":
            y = F.relu6(y)
        vals[op.name] = y if post is None else post(op, y)
    return vals


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
