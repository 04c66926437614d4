"""From a float PyTorch model to a flat list of operations qkit can run on integers.

`trace` records the model with ``torch.fx``, folds each BatchNorm2d into the convolution
before it, fuses a ReLU/ReLU6 into the layer that feeds it, folds zero padding into the
convolution after it where it is symmetric, and returns `Op` records holding float NumPy
parameters. The layers and calls it knows are listed in `SUPPORTED` (modules here, calls in
`qkit.engine.calls`, the op records in `qkit.engine.ops`); anything else raises
`UnsupportedLayer` naming the layer or call, its node, and what to do instead. Subclasses
of Conv2d / Linear / BatchNorm2d that keep their base class's ``forward`` are read as that
layer; one that overrides ``forward`` is traced into, and what its ``forward`` calls must
itself be supported.
"""

from __future__ import annotations

import functools

import numpy as np

from qkit.engine import calls, functions
from qkit.engine.ops import (
    HINT,
    SUPPORTED,
    Builder,
    Op,
    UnsupportedLayer,
    conv_op,
    linear_op,
    pad_op,
    pool_op,
    upsample_op,
)


def trace(model) -> tuple[list[Op], str]:
    """The model's operations in execution order, and the name of its output."""
    import torch.fx


    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model = model.eval()
    try:
        gm = torch.fx.GraphModule(model, _tracer()().trace(model))
    except torch.fx.proxy.TraceError as err:
        raise UnsupportedLayer(f"torch.fx cannot trace this model ({err}); control flow that "
                               f"depends on tensor values is not supported: {HINT}") from err
    modules = dict(gm.named_modules())
    b, output = Builder(), None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if b.order:
                raise UnsupportedLayer(f"input {node.name}: models with more than one input "
                                       "are not supported")
            b.add(Op("input", node.name, []))
        elif node.op == "output":
            out = node.args[0]
            if not hasattr(out, "name"):
                raise UnsupportedLayer(f"output {out!r}: the model must return one tensor")
            output = b.src(out)
        elif node.op == "get_attr":
            b.consts[node.name] = _attr(gm, node.target)
        elif node.op == "call_module":
            _call_module(node, modules[node.target], b)
        else:
            calls.call(node, b)
    ops = [b.ops[n] for n in b.order]
    return _fold_pads(ops, output), output


@functools.cache
def _tracer():
    """torch.fx's tracer, with subclasses of Conv2d/Linear/BatchNorm2d that keep their base
    class's ``forward`` (a renamed layer, extra attributes) read as that layer."""
    import torch.fx
    from torch import nn

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname) -> bool:
            for base in (nn.Conv2d, nn.Linear, nn.BatchNorm2d):
                if isinstance(m, base) and type(m).forward is base.forward:
                    return True
            return super().is_leaf_module(m, qualname)

    return Tracer


def _attr(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _call_module(node, mod, b: Builder) -> None:
    """One ``call_module`` node: a layer the engine knows, folded BN, an activation fused
    into its producer, a pass-through (Dropout, Identity), or a refusal naming the layer."""
    from torch import nn

    ins = [b.src(a) for a in node.args if hasattr(a, "name")]
    lut = _module_function(mod)
    if isinstance(mod, nn.Conv2d):
        conv_op(node.name, ins, mod.weight, mod.bias, _conv_args(mod), b)
    elif isinstance(mod, nn.BatchNorm2d):
        _fold_bn(b.ops[ins[0]], mod, node)
        b.alias[node.name] = ins[0]
    elif isinstance(mod, nn.Linear):
        b.add(linear_op(node.name, ins, mod.weight, mod.bias))
    elif isinstance(mod, nn.ReLU | nn.ReLU6):
        b.activation(node, node.args[0], "relu6" if isinstance(mod, nn.ReLU6) else "relu")
    elif lut is not None:
        b.add(Op("lut", node.name, ins, lut))
    elif isinstance(mod, nn.MaxPool2d | nn.AvgPool2d):
        b.add(pool_op(node.name, ins, "maxpool" if isinstance(mod, nn.MaxPool2d)
                      else "avgpool", mod.kernel_size, mod.stride, mod.padding,
                      getattr(mod, "ceil_mode", False), getattr(mod, "dilation", 1)))
    elif isinstance(mod, nn.AdaptiveAvgPool2d):
        if mod.output_size not in (1, (1, 1)):
            raise UnsupportedLayer(f"layer {node.target!r} (AdaptiveAvgPool2d): only output "
                                   f"size 1 is supported, got {mod.output_size}")
        b.add(Op("avgpool", node.name, ins, {"global": True}))
    elif isinstance(mod, nn.Flatten):
        if mod.start_dim != 1:
            raise UnsupportedLayer(f"layer {node.target!r} (Flatten): only from dim 1")
        b.add(Op("flatten", node.name, ins))
    elif isinstance(mod, nn.ZeroPad2d | nn.ConstantPad2d):
        b.add(pad_op(node.name, ins, mod.padding, float(mod.value)))
    elif isinstance(mod, nn.Upsample):
        b.add(upsample_op(node.name, ins, mod.size, mod.scale_factor, mod.mode,
                          mod.align_corners))
    elif isinstance(mod, nn.Dropout | nn.Dropout1d | nn.Dropout2d | nn.Dropout3d |
                    nn.AlphaDropout | nn.Identity):
        b.alias[node.name] = ins[0]
    else:
        raise UnsupportedLayer(f"layer {node.target!r} ({type(mod).__name__}, node "
                               f"{node.name}) is not supported by qkit's integer engine: {HINT}")


def _module_function(mod) -> dict | None:
    """The lookup-table function of an activation module, or None."""
    from torch import nn

    simple = {nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.SiLU: "silu",
              nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Mish: "mish"}
    for cls, fn in simple.items():
        if isinstance(mod, cls):
            return {"fn": fn}
    if isinstance(mod, nn.GELU):
        return {"fn": "gelu", "approximate": mod.approximate}
    if isinstance(mod, nn.LeakyReLU):
        return {"fn": "leaky_relu", "slope": float(mod.negative_slope)}
    if isinstance(mod, nn.Hardtanh):  # after ReLU6, its subclass
        return {"fn": "hardtanh", "min": float(mod.min_val), "max": float(mod.max_val)}
    if isinstance(mod, nn.ELU):
        return {"fn": "elu", "alpha": float(mod.alpha)}
    if isinstance(mod, nn.Softplus):
        return {"fn": "softplus", "beta": float(mod.beta), "threshold": float(mod.threshold)}
    return None


def _conv_args(mod) -> dict:
    if mod.padding_mode != "zeros":
        raise UnsupportedLayer(f"Conv2d with padding_mode={mod.padding_mode!r}: only zero "
                               f"padding is supported ({HINT})")
    return {"stride": mod.stride, "padding": mod.padding, "dilation": mod.dilation,
            "groups": mod.groups}


def _fold_bn(conv: Op, bn, node) -> None:
    """``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta`` (per channel)."""
    if conv.kind != "conv" or conv.activation is not None or not bn.track_running_stats:
        raise UnsupportedLayer(f"layer {node.target!r} (BatchNorm2d): it must directly follow "
                               "a Conv2d (and keep running statistics) to be folded into it")
    g = np.ones(bn.num_features) if bn.weight is None else \
        bn.weight.detach().numpy().astype(np.float64)
    beta = np.zeros(bn.num_features) if bn.bias is None else \
        bn.bias.detach().numpy().astype(np.float64)
    mean = bn.running_mean.numpy().astype(np.float64)
    var = bn.running_var.numpy().astype(np.float64)
    k = g / np.sqrt(var + bn.eps)
    conv.params["weight"] = (conv.params["weight"] * k[:, None, None, None]).astype(np.float32)
    conv.params["bias"] = ((conv.params["bias"] - mean) * k + beta).astype(np.float32)
    conv.params["fused"] = "BN folded"


def _fold_pads(ops: list[Op], output: str) -> list[Op]:
    """A zero pad, symmetric on each axis, used only by one conv: added to the conv's padding
    (the conv pads with the input's zero point, which is real 0, like the pad)."""
    users: dict[str, list[Op]] = {}
    for op in ops:
        for i in op.inputs:
            users.setdefault(i, []).append(op)
    keep = []
    for op in ops:
        nxt = users.get(op.name, [])
        top, bottom, left, right = op.params.get("pad", (0, 1, 0, 1))
        if op.kind == "pad" and op.params["value"] == 0 and top == bottom and \
                left == right and len(nxt) == 1 and nxt[0].kind == "conv" and \
                op.name != output:
            conv = nxt[0]
            ph, pw = conv.params["padding"]
            conv.params["padding"] = (ph + top, pw + left)
            conv.inputs = [op.inputs[0]]
            continue
        keep.append(op)
    return keep


def summary(ops: list[Op]) -> str:
    """One line per traced operation: what it is, its weights and what was fused into it."""
    lines = [f"{'#':>2}  {'op':<8}{'name':<24}{'weights':<18}fused"]
    for i, op in enumerate(ops):
        w = op.params.get("weight")
        shape = "x".join(map(str, w.shape)) if w is not None else ""
        fused = "+".join(([op.params["fused"]] if op.params.get("fused") else [])
                         + ([op.activation] if op.activation else []))
        if op.kind == "lut":
            fused = functions.describe(op.params)
        lines.append(f"{i:>2}  {op.kind:<8}{op.name:<24}{shape:<18}{fused}".rstrip())
    return "\n".join(lines)


__all__ = ["SUPPORTED", "Op", "UnsupportedLayer", "summary", "trace"]
