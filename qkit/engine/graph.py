"""From a float PyTorch model to a flat list of operations qkit can run on integers.

`trace` records the model with ``torch.fx``, folds each BatchNorm2d into the
convolution before it, fuses a ReLU/ReLU6 into the layer that feeds it, and
returns `Op` records holding float NumPy parameters. Supported: Conv2d,
BatchNorm2d (after a conv), Linear, ReLU, ReLU6, MaxPool2d, AvgPool2d,
AdaptiveAvgPool2d(1), Flatten (and ``torch.flatten`` / ``x.flatten(1)`` /
``x.view(x.size(0), -1)``), residual ``+``, Dropout and Identity. Anything else
raises `UnsupportedLayer` naming the node.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np


class UnsupportedLayer(ValueError):
    """The model contains an operation the integer engine cannot run."""


@dataclass
class Op:
    kind: str  # input, conv, linear, add, maxpool, avgpool, flatten, relu
    name: str
    inputs: list[str]
    params: dict = field(default_factory=dict)
    activation: str | None = None  # fused: None, "relu" or "relu6"


def trace(model) -> tuple[list[Op], str]:
    """The model's operations in execution order, and the name of its output."""
    import torch.fx

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model = model.eval()
    gm = torch.fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    ops: dict[str, Op] = {}
    alias: dict[str, str] = {}  # node name -> name of the op that produces its value
    order: list[str] = []
    output = None

    def src(node) -> str:
        return alias.get(node.name, node.name)

    def add(op: Op):
        ops[op.name] = op
        order.append(op.name)

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            add(Op("input", node.name, []))
        elif node.op == "output":
            output = src(node.args[0])
        elif node.op == "call_module":
            ins = [src(a) for a in node.args if hasattr(a, "name")]
            _call_module(node, modules[node.target], ins, (ops, alias, order), add)
        elif node.op in ("call_function", "call_method"):
            _function(node, ops, alias, order, add, src)
        else:
            raise UnsupportedLayer(f"node {node.name} ({node.op}) is not supported")
    return [ops[n] for n in order], output


def _call_module(node, mod, ins, state, add) -> None:
    """One ``call_module`` node: a layer the engine knows, folded BN, an activation fused
    into its producer, a pass-through (Dropout, Identity), or a refusal naming the layer."""
    from torch import nn

    ops, alias, order = state
    if isinstance(mod, nn.Conv2d):
        add(_conv(node.name, ins, mod))
    elif isinstance(mod, nn.BatchNorm2d):
        _fold_bn(ops[ins[0]], mod, node)
        alias[node.name] = ins[0]
    elif isinstance(mod, nn.Linear):
        w = mod.weight.detach().numpy().astype(np.float32)
        b = np.zeros(w.shape[0], np.float32) if mod.bias is None else \
            mod.bias.detach().numpy().astype(np.float32)
        add(Op("linear", node.name, ins, {"weight": w, "bias": b}))
    elif isinstance(mod, nn.ReLU | nn.ReLU6):
        _activation(ops, alias, order, node, ins[0],
                    "relu6" if isinstance(mod, nn.ReLU6) else "relu")
    elif isinstance(mod, nn.MaxPool2d | nn.AvgPool2d):
        add(_pool(node.name, ins, mod))
    elif isinstance(mod, nn.AdaptiveAvgPool2d):
        if mod.output_size not in (1, (1, 1)):
            raise UnsupportedLayer(f"{node.target}: AdaptiveAvgPool2d only to size 1")
        add(Op("avgpool", node.name, ins, {"global": True}))
    elif isinstance(mod, nn.Flatten):
        if mod.start_dim != 1:
            raise UnsupportedLayer(f"{node.target}: Flatten only from dim 1")
        add(Op("flatten", node.name, ins))
    elif isinstance(mod, nn.Dropout | nn.Identity):
        alias[node.name] = ins[0]
    else:
        raise UnsupportedLayer(f"layer {node.target!r} ({type(mod).__name__}) is not "
                               "supported by qkit's integer engine")


def _conv(name, ins, mod) -> Op:
    if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
        raise UnsupportedLayer(f"{name}: only zero padding given as numbers is supported")
    w = mod.weight.detach().numpy().astype(np.float32)
    b = np.zeros(w.shape[0], np.float32) if mod.bias is None else \
        mod.bias.detach().numpy().astype(np.float32)
    return Op("conv", name, ins, {"weight": w, "bias": b, "stride": tuple(mod.stride),
                                  "padding": tuple(mod.padding), "dilation": tuple(mod.dilation),
                                  "groups": mod.groups})


def _fold_bn(conv: Op, bn, node) -> None:
    """``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta`` (per channel)."""
    if conv.kind != "conv" or conv.activation is not None:
        raise UnsupportedLayer(f"{node.target}: BatchNorm2d must directly follow a Conv2d")
    g = bn.weight.detach().numpy().astype(np.float64)
    beta = bn.bias.detach().numpy().astype(np.float64)
    mean = bn.running_mean.numpy().astype(np.float64)
    var = bn.running_var.numpy().astype(np.float64)
    k = g / np.sqrt(var + bn.eps)
    conv.params["weight"] = (conv.params["weight"] * k[:, None, None, None]).astype(np.float32)
    conv.params["bias"] = ((conv.params["bias"] - mean) * k + beta).astype(np.float32)
    conv.params["fused"] = "BN folded"


def _activation(ops, alias, order, node, src_name, kind) -> None:
    producer = ops[src_name]
    only_user = len(node.args[0].users) == 1
    if producer.kind in ("conv", "linear", "add") and producer.activation is None and only_user:
        producer.activation = kind
        alias[node.name] = src_name
    elif kind == "relu":
        ops[node.name] = Op("relu", node.name, [src_name])
        order.append(node.name)
    else:
        raise UnsupportedLayer(f"{node.name}: ReLU6 must follow a conv, linear or add")


def _pool(name, ins, mod) -> Op:
    import torch.nn as nn

    k, s = mod.kernel_size, mod.stride if mod.stride is not None else mod.kernel_size
    pad = mod.padding
    if pad not in (0, (0, 0)) or getattr(mod, "ceil_mode", False):
        raise UnsupportedLayer(f"{name}: pooling with padding or ceil_mode is not supported")
    if isinstance(mod, nn.MaxPool2d) and mod.dilation not in (1, (1, 1)):
        raise UnsupportedLayer(f"{name}: dilated max pooling is not supported")
    kind = "maxpool" if isinstance(mod, nn.MaxPool2d) else "avgpool"
    return Op(kind, name, ins, {"kernel": k, "stride": s})


def _function(node, ops, alias, order, add, src) -> None:
    import torch
    from torch.nn import functional as F

    t = node.target
    tensor_args = [a for a in node.args if hasattr(a, "name")]
    ins = [src(a) for a in tensor_args]
    if t in (operator.add, operator.iadd, torch.add, "add", "add_") and len(ins) == 2:
        add(Op("add", node.name, ins))
    elif t in (F.relu, torch.relu, "relu", F.relu6):
        _activation(ops, alias, order, node, ins[0], "relu6" if t is F.relu6 else "relu")
    elif t in (torch.flatten, "flatten") and _flat_from_1(node):
        add(Op("flatten", node.name, ins))
    elif t in ("view", "reshape") and len(node.args) == 3 and node.args[2] == -1:
        add(Op("flatten", node.name, ins))
    elif t == "size" or t is getattr:
        alias[node.name] = ins[0] if ins else node.name  # only used to build a view's shape
    else:
        name = getattr(t, "__name__", str(t))
        raise UnsupportedLayer(f"operation {name!r} (node {node.name}) is not supported by "
                               "qkit's integer engine")


def _flat_from_1(node) -> bool:
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    if start != 1:
        raise UnsupportedLayer(f"{node.name}: flatten only from dim 1")
    return True


def summary(ops: list[Op]) -> str:
    """One line per traced operation: what it is, its weights and what was fused into it."""
    lines = [f"{'#':>2}  {'op':<8}{'name':<24}{'weights':<18}fused"]
    for i, op in enumerate(ops):
        w = op.params.get("weight")
        shape = "x".join(map(str, w.shape)) if w is not None else ""
        fused = "+".join(([op.params["fused"]] if op.params.get("fused") else [])
                         + ([op.activation] if op.activation else []))
        lines.append(f"{i:>2}  {op.kind:<8}{op.name:<24}{shape:<18}{fused}".rstrip())
    return "\n".join(lines)
