"""MobileNetV2's per-layer sensitivity and greedy bit allocations: the cached result
``sensitivity`` behind notebook 08 (``python -m qkit precompute sensitivity``).
"""

from __future__ import annotations

import torch

from qkit.engine import run_float, trace
from qkit.models import mobilenet_v2 as mv2
from qkit.topics.mixed import (
    allocate,
    fake_quantize_weight,
    model_bytes,
    predicted_sqnr,
    sensitivity,
    uniform_bits,
    weight_layers,
)


def precompute(progress: bool = True, images: int = 32) -> dict:
    """MobileNetV2 per-layer sensitivity (output SQNR vs fp32 logits) at 2/3/4/8 bits on the
    first ``images`` photos of the kit's set, and greedy allocations for a sweep of budgets
    with their measured top-1 agreement (weights only, activations float)."""
    torch.manual_seed(0)
    model = mv2.load()
    x_all = mv2.preprocess(mv2.photo_set())
    x = x_all[:images].numpy()
    sens = sensitivity(model, x, progress=progress)
    ops, _ = trace(model)
    ref = run_float(ops, x_all).numpy()
    fp32_bytes = 4 * sum(sens["weights"])
    points = []
    plans = [(f"uniform {b}-bit", None, uniform_bits(sens, b)) for b in (3, 4, 8)]
    plans += [(f"mixed <= {f:.1%}", f, allocate(sens, f * fp32_bytes))
              for f in (0.08, 0.09, 0.1, 0.11, 0.125, 0.14, 0.16, 0.19, 0.25)]
    for kind, f, bits in plans:
        originals = {op.name: op.params["weight"] for op in weight_layers(ops)}
        for op in weight_layers(ops):
            op.params["weight"] = fake_quantize_weight(originals[op.name], bits[op.name])
        y = run_float(ops, x_all).numpy()
        for op in weight_layers(ops):
            op.params["weight"] = originals[op.name]
        points.append({"kind": kind, "budget_fraction": f, "bytes": model_bytes(sens, bits),
                       "bits": bits,
                       "predicted_sqnr_db": predicted_sqnr(sens, bits),
                       **mv2.agreement(ref, y)})
    return {"sensitivity": sens, "points": points, "fp32_bytes": fp32_bytes,
            "images": int(len(x_all))}
