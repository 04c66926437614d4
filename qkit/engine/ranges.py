"""Activation ranges chosen by the error they cause at the model's output.

An observer picks each activation's clip points from that tensor alone (min-max,
percentile, MSE ...). The range that is best for the model is the one whose rounding and
clipping noise hurts the *output* least, which depends on everything downstream. Following
the idea of loss-aware post-training quantization (Nahshan et al., "Loss aware post-training
quantization", 2019), `search` visits the activations in execution order and, for each,
tries clip points at fixed fractions of its calibration min and max; it keeps the one that
gives the smallest error of the final output against the float model (KL divergence of the
softmax for a classifier, or mean squared error), with the
activations before it already fake-quantized on their chosen grids and those after it still
float. No labels are needed: the reference is the float model's own output.

    ranges = search(ops, calibration_images)     # {op name: (lo, hi)}

The search runs the float graph (BN folded, float weights) with torch; each candidate
re-runs only the ops from the tensor it changes onwards.
"""

from __future__ import annotations

import numpy as np

from qkit.core.qparams import qparams_from_range
from qkit.engine.floatrun import PASS_THROUGH, float_layer, run_graph
from qkit.engine.graph import Op

HIGH = (1.0, 0.8, 0.65, 0.5, 0.4, 0.3)  # fractions of the calibration maximum tried
LOW = (1.0, 0.7, 0.5)  # fractions of the minimum tried, for tensors with negative values


def fake_quantize(y, lo: float, hi: float):
    """``y`` rounded onto the uint8 affine grid of ``[lo, hi]`` (the engine's activation grid)."""
    import torch

    qp = qparams_from_range(np.float32(lo), np.float32(hi), 8, signed=False)
    s, z = float(qp.scale), int(qp.zero_point)
    return (torch.clamp(torch.round(y / s) + z, 0, 255) - z) * s


def output_error(y, ref, loss: str = "mse") -> float:
    """``"mse"``: mean squared error; ``"kl"``: mean KL(softmax(ref) || softmax(y)) over rows,
    which weighs the classes the model believes in (a classifier's top-1 lives there)."""
    import torch

    if loss == "mse":
        return float(((y - ref) ** 2).mean())
    if loss == "kl":
        p = torch.log_softmax(ref.double(), 1)
        return float((p.exp() * (p - torch.log_softmax(y.double(), 1))).sum(1).mean())
    raise ValueError(f"loss must be 'mse' or 'kl', got {loss!r}")


def search(ops: list[Op], images, names: list[str] | None = None,
           high=HIGH, low=LOW, loss: str = "kl") -> dict[str, tuple[float, float]]:
    """Greedy output-error search of each activation's ``(lo, hi)``, in execution order.

    ``names`` are the activations to quantize (default: every op but the pass-through
    ones, which share their input's grid); ``images`` is the calibration batch (NCHW);
    ``loss`` is `output_error`'s (KL, as `Scheme.range_loss`, unless told otherwise).
    """
    import torch


    names = [op.name for op in ops if op.kind not in PASS_THROUGH] if names is None else names
    if not names:
        raise ValueError("no activations to search")
    order = [op.name for op in ops]
    out = ops[-1].name
    chosen: dict[str, tuple[float, float]] = {}

    def run(ranges, known):
        def post(op, y):
            return fake_quantize(y, *ranges[op.name]) if op.name in ranges else y
        with torch.no_grad():
            return run_graph(ops, images, float_layer, post, known)

    floats = run({}, None)
    ref = floats[out]
    known: dict = {}  # outputs of the ops before the current one, on their chosen grids
    for k, name in enumerate(names):
        y = floats[name]
        lo0, hi0 = min(0.0, float(y.min())), max(0.0, float(y.max()))
        best = None
        for a_lo in (low if lo0 < 0 else (1.0,)):
            for a_hi in high:
                r = (lo0 * a_lo, hi0 * a_hi)
                if r[1] - r[0] <= 0:
                    continue
                err = output_error(run({**chosen, name: r}, known)[out], ref, loss)
                if best is None or err < best[0]:
                    best = (err, r)
        chosen[name] = (lo0, hi0) if best is None else best[1]  # a constant-zero tensor
        if k + 1 < len(names):
            vals = run(chosen, known)
            stop = order.index(names[k + 1])
            known = {n: vals[n] for n in order[:stop]}
    return chosen
