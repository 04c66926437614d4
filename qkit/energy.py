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


def estimate(macs: int, weight_bytes: int, activation_bytes: int, precision: str) -> dict:
    """Energy (microjoules) of one inference, split into arithmetic, weights and activations.

    ``precision`` is ``"fp32"`` or ``"int8"`` (int8 products summed in int32).

    >>> e = estimate(10**6, 10**6, 10**5, "fp32")
    >>> round(e["arithmetic_uj"], 2), round(e["weights_uj"], 1)
    (4.6, 243.8)
    """
    if precision == "fp32":
        per_mac = PJ["fp32_mul"] + PJ["fp32_add"]
    elif precision == "int8":
        per_mac = PJ["int8_mul"] + PJ["int32_add"]
    else:
        raise ValueError(f"precision must be 'fp32' or 'int8', got {precision!r}")
    parts = {"arithmetic_uj": macs * per_mac * 1e-6,
             "weights_uj": weight_bytes / 8 * PJ["dram_64bit"] * 1e-6,
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
