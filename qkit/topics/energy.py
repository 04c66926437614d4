"""Energy per inference, estimated from operation and memory-access counts.

Costs at 45 nm, 0.9 V (Horowitz, "Computing's energy problem", ISSCC 2014): int8
multiply 0.2 pJ and add 0.03 pJ; int32 add 0.1 pJ; fp32 multiply 3.7 pJ and add 0.9 pJ;
a 64-bit read from an 8 KB SRAM 10 pJ; a 64-bit DRAM read 1.3-2.6 nJ (1.95 nJ used, the
middle). The model: every multiply-add once, every weight byte read once from DRAM
(weights do not fit on chip) and every activation byte once from SRAM. It is an
estimate of orders of magnitude, not a measurement: no CPU here reports its energy.
"""

from __future__ import annotations

PJ = {"int8_mul": 0.2, "int8_add": 0.03, "int32_add": 0.1, "fp32_mul": 3.7, "fp32_add": 0.9,
      "sram_64bit": 10.0, "dram_64bit": 1950.0}


def estimate(macs: int, weight_bytes: int, activation_bytes: int, precision: str,
             dram_pj: float | None = None, weights_on_chip: bool = False) -> dict:
    """Energy (microjoules) of one inference, split into arithmetic, weights and activations.

    ``precision`` is ``"fp32"``, ``"int8"`` (int8 products summed in int32) or ``"int4"``
    (no 4-bit figure in the table: costed as int8, an upper bound; its gain is the halved
    weight bytes you pass in). ``dram_pj`` overrides the 64-bit DRAM read (1300-2600 pJ);
    ``weights_on_chip`` reads the weights from SRAM instead (a model small enough to stay).

    >>> e = estimate(10**6, 10**6, 10**5, "fp32")
    >>> round(e["arithmetic_uj"], 2), round(e["weights_uj"], 1)
    (4.6, 243.8)
    """
    if precision == "fp32":
        per_mac = PJ["fp32_mul"] + PJ["fp32_add"]
    elif precision in ("int8", "int4"):
        per_mac = PJ["int8_mul"] + PJ["int32_add"]
    else:
        raise ValueError(f"precision must be 'fp32', 'int8' or 'int4', got {precision!r}")
    weight_pj = PJ["sram_64bit"] if weights_on_chip else (
        PJ["dram_64bit"] if dram_pj is None else float(dram_pj))
    parts = {"arithmetic_uj": macs * per_mac * 1e-6,
             "weights_uj": weight_bytes / 8 * weight_pj * 1e-6,
             "activations_uj": activation_bytes / 8 * PJ["sram_64bit"] * 1e-6}
    parts["total_uj"] = sum(parts.values())
    return parts


def model_counts(ops, shapes) -> tuple[int, int]:
    """Multiply-adds and activation elements per input of a traced model (`qkit.engine.trace`),
    from the output shapes seen during calibration (``IntegerModel.shapes``)."""
    macs, acts = 0, 0
    for op in ops:
        shape = shapes[op.name]
        size = 1
        for d in shape:
            size *= d
        acts += size
        if op.kind in ("conv", "linear"):
            w = op.params["weight"]
            per_output = w[0].size  # (C/groups) * KH * KW or K
            macs += size * per_output
    return macs, acts


def traced_counts(model, x) -> dict:
    """Multiply-adds, weight count and activation elements of one input through a torch CNN
    (traced by `qkit.engine.trace`; ``x`` one NCHW input batch of size 1)."""
    from qkit.engine.floatrun import run_float
    from qkit.engine.graph import trace

    ops, _ = trace(model)
    vals = run_float(ops, x, keep=True)
    shapes = {k: tuple(v.shape[1:]) for k, v in vals.items()}
    macs, acts = model_counts(ops, shapes)
    weights = sum(op.params["weight"].size for op in ops if op.kind in ("conv", "linear"))
    return {"macs": int(macs), "weights": int(weights), "activations": int(acts)}


def transformer_counts(tokens: int = 64, layers: int = 6, hidden: int = 384,
                       ffn: int = 1536) -> dict:
    """The same counts for a BERT-style encoder (MiniLM-L6 by default) on ``tokens`` tokens:
    the Linear layers' MACs plus attention's two (T x T x hidden) products; the embedding
    tables (read one row per token) are left out."""
    per_layer_w = 4 * hidden * hidden + 2 * hidden * ffn
    macs = layers * (tokens * per_layer_w + 2 * tokens * tokens * hidden)
    acts = layers * tokens * (6 * hidden + ffn)
    return {"macs": int(macs), "weights": int(layers * per_layer_w), "activations": int(acts)}


def compare_precisions(counts: dict, dram_pj: float | None = None,
                       weights_on_chip: bool = False) -> dict:
    """fp32 / int8 / int4 energy of one inference: weights at 4 / 1 / 0.5 bytes, activations
    at 4 / 1 / 1 bytes (int4 models keep 8-bit activations)."""
    size = {"fp32": (4, 4), "int8": (1, 1), "int4": (0.5, 1)}
    return {p: estimate(counts["macs"], counts["weights"] * wb, counts["activations"] * ab, p,
                        dram_pj, weights_on_chip) for p, (wb, ab) in size.items()}
