"""4-bit formats side by side at equal bits per weight, on the same real tensors.

Every 4-bit format stores 4 bits per element plus a share of its scales, and that share is
what a fair comparison must count:

==========================  ========  ======================  ================
format                      block     scale                   bits per element
==========================  ========  ======================  ================
int4 (symmetric, absmax)    64 / 32   float16 (16 bits)       4.25 / 4.5
NF4 (QLoRA's grid)          64 / 32   float16 absmax          4.25 / 4.5
MXFP4 (OCP MX v1.0)         32        E8M0 (8 bits)           4.25
NVFP4                       16        E4M3 (8 bits) + fp32    4.5 (+ 32 / tensor)
==========================  ========  ======================  ================

So MXFP4 competes with 64-element int4 and NF4 blocks, NVFP4 with 32-element ones. Blocks
run along the reduction axis (a weight's input channels; an activation's channels), the
axis a dot product sums over.
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_float_array
from qkit.core.metrics import sqnr_db
from qkit.formats import blocks
from qkit.formats.nonuniform import nearest, nf_levels

SCALE_BITS = 16  # int4 and NF4 keep one float16 scale per block


def _grouped(x: np.ndarray, block: int) -> tuple[np.ndarray, int]:
    pad = -x.shape[-1] % block
    v = np.pad(x.astype(np.float64), [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    return v.reshape(v.shape[:-1] + (-1, block)), pad


def _ungroup(v: np.ndarray, pad: int, shape) -> np.ndarray:
    v = v.reshape(v.shape[:-2] + (-1,))
    return (v[..., :v.shape[-1] - pad] if pad else v).reshape(shape).astype(np.float32)


def int4_blocks(x, block: int) -> np.ndarray:
    """Symmetric int4 in [-7, 7] per block of ``block`` along the last axis, scale =
    absmax / 7 stored in float16; the values it stands for."""
    x = check_float_array(x)
    g, pad = _grouped(x, block)
    s = (np.abs(g).max(axis=-1, keepdims=True) / 7).astype(np.float16).astype(np.float64)
    safe = np.where(s > 0, s, 1.0)
    return _ungroup(np.clip(np.rint(g / safe), -7, 7) * s, pad, x.shape)


def nf4_blocks(x, block: int) -> np.ndarray:
    """NormalFloat-4 (Dettmers et al. 2023) per block, absmax scale stored in float16."""
    x = check_float_array(x)
    g, pad = _grouped(x, block)
    s = np.abs(g).max(axis=-1, keepdims=True).astype(np.float16).astype(np.float64)
    safe = np.where(s > 0, s, 1.0)
    levels = nf_levels(4).astype(np.float64)
    return _ungroup(levels[nearest(g / safe, levels)] * s, pad, x.shape)


# name -> (round trip along the last axis, bits per element including the block scales)
METHODS = {
    "int4 g64": (lambda x: int4_blocks(x, 64), 4 + SCALE_BITS / 64),
    "NF4 g64": (lambda x: nf4_blocks(x, 64), 4 + SCALE_BITS / 64),
    "MXFP4": (lambda x: blocks.round_to_block_format(x, "mxfp4"), 4 + 8 / 32),
    "int4 g32": (lambda x: int4_blocks(x, 32), 4 + SCALE_BITS / 32),
    "NF4 g32": (lambda x: nf4_blocks(x, 32), 4 + SCALE_BITS / 32),
    "NVFP4": (lambda x: blocks.round_to_block_format(x, "nvfp4"), 4 + 8 / 16),
}


def as_rows(x) -> np.ndarray:
    """A weight (N, ...) or activations (..., C) as 2-D rows whose last axis is the reduction
    axis: conv weights (N, C, kh, kw) -> (N, C * kh * kw)."""
    x = check_float_array(x)
    return x.reshape(x.shape[0], -1) if x.ndim > 2 else x.reshape(-1, x.shape[-1])


def error_table(tensors: dict, methods=tuple(METHODS)) -> list[dict]:
    """One row per tensor: the SQNR (dB) of each method, with its bits per element."""
    rows = []
    for name, x in tensors.items():
        x2 = as_rows(x)
        row = {"tensor": name, "shape": tuple(np.shape(x))}
        for m in methods:
            fn, _ = METHODS[m]
            row[m] = sqnr_db(x2, fn(x2))
        rows.append(row)
    return rows


def bits_per_element(method: str) -> float:
    return METHODS[method][1]


def real_tensors(n_texts: int = 32) -> dict:
    """Real weights and activations of the kit's models, as the notebook compares them:
    MobileNetV2's last expansion (1x1 conv) and classifier, MiniLM's FFN weights of layer 1 and
    the activations entering its FFN (the input with the outlier channels, notebook 10)."""
    from qkit import data
    from qkit.models import minilm, mobilenet_v2
    from qkit.topics.smoothquant import capture_inputs

    mb = mobilenet_v2.load().state_dict()
    lm = minilm.load()
    x = capture_inputs(lm, data.bbc_news()["x_train"][:n_texts], 64, ["1.ffn_in"])["1.ffn_in"]
    return {
        "MobileNetV2 features.17 expand (960x160)": mb["features.17.conv.0.0.weight"].numpy(),
        "MobileNetV2 classifier (1000x1280)": mb["classifier.1.weight"].numpy(),
        "MiniLM layer 1 FFN in (1536x384)": lm.layers[1].ffn_in.weight.detach().numpy(),
        "MiniLM layer 1 FFN out (384x1536)": lm.layers[1].ffn_out.weight.detach().numpy(),
        f"MiniLM layer 1 FFN input activations ({len(x)} tokens x 384)": x,
    }


# --- what the notebook's explorers show -----------------------------------------------------


def positive_values(fmt: str) -> np.ndarray:
    """The positive finite values of an element format (``"int8"``: 1..127), ascending."""
    from qkit.formats import floats

    if fmt == "int8":
        return np.arange(1, 128, dtype=np.float64)
    t = floats.code_table(fmt).astype(np.float64)
    return np.unique(t[np.isfinite(t) & (t > 0)])


def relative_grid(fmt: str) -> np.ndarray:
    """`positive_values` divided by the largest: every grid on one axis, where 1 is its top."""
    v = positive_values(fmt)
    return v / v.max()


def values_per_octave(fmt: str) -> dict:
    """How many positive values of a format (``"int8"``: the integers 1..127) fall in each
    power of two [2^k, 2^(k+1)), from the top down: ``{k: count}``."""
    keys, counts = np.unique(np.floor(np.log2(positive_values(fmt))).astype(int),
                             return_counts=True)
    return {int(a): int(b) for a, b in zip(keys[::-1], counts[::-1], strict=True)}


def block_view(values, fmt: str) -> dict:
    """One block (or two NVFP4 blocks) of ``values`` in a block format: the scales, decoded
    values, the largest value each block can hold, and the SQNR."""
    f = blocks.get_block_format(fmt)
    x = check_float_array(values).reshape(-1)
    t = blocks.quantize(x, f)
    scales = t.scale_values().reshape(-1)
    decoded = t.dequantize().reshape(-1)
    out = {"fmt": f.name, "block": f.block, "x": x, "decoded": decoded, "scales": scales,
           "ceilings": scales * f.element_max, "sqnr_db": sqnr_db(x, decoded),
           "amax": float(np.abs(x).max()), "bits_per_element": t.bits_per_element}
    if f.scale == "e8m0":
        out["exponents"] = (t.scales.astype(int) - 127).tolist()
    else:
        out["exponents"] = None
        out["tensor_scale"] = t.tensor_scale
        out["scale_codes"] = t.scales.reshape(-1).tolist()
    return out
