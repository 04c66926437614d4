"""MobileNetV2 on every non-uniform grid at 4-6 bits: the cached result ``nonuniform``
behind notebook 06 (``python -m qkit precompute nonuniform``).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from qkit.formats.nonuniform import GRIDS
from qkit.models import mobilenet_v2 as mv2
from qkit.topics.grids import quantized_copy


def precompute(progress: bool = True) -> dict:
    """MobileNetV2 top-1 agreement with fp32 for every grid at 4, 5 and 6 bits (weights only),
    on the kit's photo set: minutes of k-means and forward passes."""
    torch.manual_seed(0)
    model = mv2.load()
    x = mv2.preprocess(mv2.photo_set())
    with torch.no_grad():
        ref = model(x).numpy()
    rows = []
    todo = [(b, g) for b in (4, 5, 6) for g in GRIDS]
    for bits, grid in tqdm(todo, desc="non-uniform MobileNetV2", disable=not progress):
        q, nbytes = quantized_copy(model, grid, bits, 64 if grid == "nf" else None)
        with torch.no_grad():
            logits = q(x).numpy()
        rows.append({"grid": grid, "bits": bits, "bytes": nbytes, **mv2.agreement(ref, logits)})
    return {"model": "mobilenet_v2", "images": int(len(x)), "rows": rows}
