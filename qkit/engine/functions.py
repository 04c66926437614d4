"""The elementwise functions the integer engine runs as 256-entry lookup tables, defined once
in float: the tracer (`qkit.engine.graph`) maps modules and calls to these names, the float
interpreter (`qkit.engine.floatrun`) runs them, and `qkit.engine.elementwise` tabulates them
on the input and output grids.

An op's ``params`` say which function: ``{"fn": "hardswish"}``, ``{"fn": "leaky_relu",
"slope": 0.01}``, ``{"fn": "gelu", "approximate": "tanh"}``, ``{"fn": "hardtanh", "min": 0,
"max": 6}``, or a scalar operation ``{"fn": "scalar", "op": "add", "value": 3.0}`` (``x + 3``;
ops add, sub, rsub (``3 - x``), mul, div, rdiv (``3 / x``)). ``{"fn": "identity"}`` is the
requantization of a tensor to another grid (concatenation's inputs).
"""

from __future__ import annotations

import math

FUNCTIONS = ("hardswish", "hardsigmoid", "silu", "sigmoid", "tanh", "gelu", "leaky_relu",
             "relu", "relu6", "hardtanh", "elu", "mish", "softplus", "scalar", "identity")
SCALAR_OPS = ("add", "sub", "rsub", "mul", "div", "rdiv")


def apply(params: dict, x):
    """``params``' function of the float torch tensor ``x``, as PyTorch computes it."""
    import torch
    from torch.nn import functional as F

    fn = params["fn"]
    if fn == "scalar":
        v, op = params["value"], params["op"]
        return {"add": lambda: x + v, "sub": lambda: x - v, "rsub": lambda: v - x,
                "mul": lambda: x * v, "div": lambda: x / v, "rdiv": lambda: v / x}[op]()
    table = {
        "hardswish": lambda: F.hardswish(x), "hardsigmoid": lambda: F.hardsigmoid(x),
        "silu": lambda: F.silu(x), "sigmoid": lambda: torch.sigmoid(x),
        "tanh": lambda: torch.tanh(x), "relu": lambda: F.relu(x), "relu6": lambda: F.relu6(x),
        "gelu": lambda: F.gelu(x, approximate=params.get("approximate", "none")),
        "leaky_relu": lambda: F.leaky_relu(x, params.get("slope", 0.01)),
        "hardtanh": lambda: F.hardtanh(x, params.get("min", -1.0), params.get("max", 1.0)),
        "elu": lambda: F.elu(x, params.get("alpha", 1.0)), "mish": lambda: F.mish(x),
        "softplus": lambda: F.softplus(x, params.get("beta", 1.0),
                                       params.get("threshold", 20.0)),
        "identity": lambda: x,
    }
    return table[fn]()


def check(params: dict, where: str) -> dict:
    """``params`` as `apply` needs them; an `UnsupportedLayer`-style ValueError naming
    ``where`` otherwise (a scalar that is not a finite number, an unknown function)."""
    fn = params.get("fn")
    if fn not in FUNCTIONS:
        raise ValueError(f"{where}: elementwise function {fn!r} is not one of {FUNCTIONS}")
    if fn == "scalar":
        v = params.get("value")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{where}: only a finite Python number can be combined with a "
                             f"tensor here, got {v!r}")
        if params.get("op") not in SCALAR_OPS:
            raise ValueError(f"{where}: scalar op {params.get('op')!r} not in {SCALAR_OPS}")
    return params


def describe(params: dict) -> str:
    """A short label: ``hardswish``, ``leaky_relu(0.1)``, ``x + 3``."""
    fn = params["fn"]
    if fn == "scalar":
        sym = {"add": "x + {v}", "sub": "x - {v}", "rsub": "{v} - x", "mul": "x * {v}",
               "div": "x / {v}", "rdiv": "{v} / x"}[params["op"]]
        return sym.format(v=f"{params['value']:g}")
    if fn == "leaky_relu":
        return f"leaky_relu({params.get('slope', 0.01):g})"
    if fn == "gelu" and params.get("approximate", "none") != "none":
        return "gelu(tanh)"
    return fn
