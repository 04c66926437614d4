"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization", §4.1).

For two convolutions A -> B with a positively homogeneous activation between
them (none or ReLU: ``relu(x / s) = relu(x) / s`` for ``s > 0``), scaling output
channel ``i`` of A by ``1/s_i`` and input channel ``i`` of B by ``s_i`` leaves
the float function unchanged. Choosing ``s_i = sqrt(r1_i / r2_i)``, where ``r1_i``
and ``r2_i`` are the channel's weight ranges in A and B, makes both ranges
``sqrt(r1_i * r2_i)``: per-tensor weight grids then fit every channel far
better. ReLU6 is not homogeneous; as in the paper, it is replaced by ReLU
(``relu6_to_relu``), which changes the float model only where activations
exceed 6.
"""

from __future__ import annotations

import numpy as np

from qkit.engine.graph import Op


def equalize(ops: list[Op], relu6_to_relu: bool = True, iterations: int = 10) -> int:
    """Equalize every eligible conv pair in place; returns how many pairs were scaled."""
    users: dict[str, list[Op]] = {}
    for op in ops:
        for name in op.inputs:
            users.setdefault(name, []).append(op)
    pairs = []
    for a in ops:
        nxt = users.get(a.name, [])
        if a.kind != "conv" or len(nxt) != 1 or nxt[0].kind != "conv":
            continue
        b = nxt[0]
        homogeneous = a.activation in (None, "relu") or (a.activation == "relu6" and relu6_to_relu)
        if not homogeneous or not (_plain_or_depthwise(a) and _plain_or_depthwise(b)):
            continue  # grouped (not depthwise) convs are left alone
        if a.activation == "relu6":
            a.activation = "relu"
        pairs.append((a, b))
    for _ in range(iterations):
        for a, b in pairs:
            _scale_pair(a, b)
    return len(pairs)


def _plain_or_depthwise(op: Op) -> bool:
    return op.params["groups"] in (1, op.params["weight"].shape[0])


def _scale_pair(a: Op, b: Op) -> None:
    wa, wb = a.params["weight"], b.params["weight"]
    r1 = np.abs(wa).reshape(wa.shape[0], -1).max(axis=1)  # per output channel of A
    depthwise = b.params["groups"] > 1
    r2 = (np.abs(wb).reshape(wb.shape[0], -1).max(axis=1) if depthwise
          else np.abs(wb).max(axis=(0, 2, 3)))  # per input channel of B
    ok = (r1 > 0) & (r2 > 0)
    s = np.ones_like(r1)
    s[ok] = np.sqrt(r1[ok] / r2[ok])
    a.params["weight"] = (wa / s[:, None, None, None]).astype(np.float32)
    a.params["bias"] = (a.params["bias"] / s).astype(np.float32)
    if depthwise:
        b.params["weight"] = (wb * s[:, None, None, None]).astype(np.float32)
    else:
        b.params["weight"] = (wb * s[None, :, None, None]).astype(np.float32)
