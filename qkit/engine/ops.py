"""The records a traced model is made of (`Op`), the builder that collects them while
`qkit.engine.graph.trace` walks the torch.fx graph, and the constructors of the ops that both
modules (``nn.Conv2d``) and calls (``F.conv2d``) produce."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUPPORTED = {
    "layers": "Conv2d (zero padding, numbers or 'same'/'valid'), BatchNorm2d after a conv, "
              "Linear, ReLU, ReLU6, Hardtanh, Hardswish, Hardsigmoid, SiLU, Sigmoid, Tanh, "
              "GELU, LeakyReLU, ELU, Mish, Softplus, MaxPool2d, AvgPool2d, "
              "AdaptiveAvgPool2d(1), Flatten(1), ZeroPad2d, ConstantPad2d, Upsample / "
              "UpsamplingNearest2d / UpsamplingBilinear2d (integer factors), Dropout*, Identity",
    "calls": "F.conv2d / F.linear with the model's parameters, x + y, x * y (broadcast), "
             "x + - * / a number, torch.cat, F.pad (constant), F.interpolate (integer "
             "factors), torch.mean / x.mean over (2, 3), flatten / view(n, -1), "
             "view(n, c, 1, 1), F.adaptive_avg_pool2d(x, 1), F.max_pool2d, F.avg_pool2d, "
             "the functional activations above, F.dropout, contiguous",
}
HINT = ("replace it with a supported layer (qkit.engine.graph.SUPPORTED lists them), or "
        "compute it outside the model")


class UnsupportedLayer(ValueError):
    """The model contains an operation the integer engine cannot run."""


@dataclass
class Op:
    kind: str  # input, conv, linear, add, mul, concat, lut, pad, upsample, maxpool, avgpool,
    #            flatten, unflatten, relu
    name: str
    inputs: list[str]
    params: dict = field(default_factory=dict)
    activation: str | None = None  # fused: None, "relu" or "relu6"


class Builder:
    """The ops traced so far: ``alias`` maps a node to the op whose value it is (folded BN,
    fused activations, pass-throughs), ``consts`` holds the model's tensors read by
    ``get_attr`` nodes (functional convolutions' weights)."""

    def __init__(self):
        self.ops: dict[str, Op] = {}
        self.order: list[str] = []
        self.alias: dict[str, str] = {}
        self.consts: dict = {}
        self.shapes: set[str] = set()  # nodes holding sizes (x.size(0), x.shape[0])

    def add(self, op: Op) -> None:
        self.ops[op.name] = op
        self.order.append(op.name)

    def src(self, node) -> str:
        return self.alias.get(node.name, node.name)

    def activation(self, node, arg, kind: str) -> None:
        """ReLU/ReLU6 fused into the conv, linear or add that feeds it when that is its only
        user; otherwise a ReLU op, or ReLU6 as a lookup table."""
        src = self.src(arg)
        producer = self.ops[src]
        if producer.kind in ("conv", "linear", "add") and producer.activation is None and \
                len(arg.users) == 1:
            producer.activation = kind
            self.alias[node.name] = src
        elif kind == "relu":
            self.add(Op("relu", node.name, [src]))
        else:
            self.add(Op("lut", node.name, [src], {"fn": "relu6"}))


def conv_op(name, ins, weight, bias, args: dict, b: Builder) -> None:
    """A conv op; ``padding="same"`` with an odd total becomes a pad op before it."""
    w = weight.detach().numpy().astype(np.float32)
    stride, dilation = (_pair(args[k]) for k in ("stride", "dilation"))
    padding = args["padding"]
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        totals = [d * (k - 1) for d, k in zip(dilation, w.shape[2:], strict=True)]
        if any(t % 2 for t in totals):  # PyTorch puts the odd row/column at the end
            b.add(Op("pad", f"{name}_same_pad", ins,
                     {"pad": (totals[0] // 2, totals[0] - totals[0] // 2,
                              totals[1] // 2, totals[1] - totals[1] // 2), "value": 0.0}))
            ins, padding = [f"{name}_same_pad"], (0, 0)
        else:
            padding = (totals[0] // 2, totals[1] // 2)
    bias = np.zeros(w.shape[0], np.float32) if bias is None else \
        bias.detach().numpy().astype(np.float32)
    b.add(Op("conv", name, ins, {"weight": w, "bias": bias, "stride": stride,
                                 "padding": _pair(padding), "dilation": dilation,
                                 "groups": int(args["groups"])}))


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else tuple(int(x) for x in v)


def linear_op(name, ins, weight, bias) -> Op:
    w = weight.detach().numpy().astype(np.float32)
    bias = np.zeros(w.shape[0], np.float32) if bias is None else \
        bias.detach().numpy().astype(np.float32)
    return Op("linear", name, ins, {"weight": w, "bias": bias})


def pool_op(name, ins, kind, kernel, stride, padding, ceil_mode, dilation) -> Op:
    stride = kernel if stride in (None, ()) else stride
    if padding not in (0, (0, 0)) or ceil_mode:
        raise UnsupportedLayer(f"{name}: pooling with padding or ceil_mode is not supported "
                               f"({HINT})")
    if kind == "maxpool" and dilation not in (1, (1, 1)):
        raise UnsupportedLayer(f"{name}: dilated max pooling is not supported ({HINT})")
    return Op(kind, name, ins, {"kernel": kernel, "stride": stride})


def pad_op(name, ins, padding, value: float) -> Op:
    """torch's (left, right, top, bottom) padding as the engine's (top, bottom, left, right)."""
    p = (padding,) * 4 if np.ndim(padding) == 0 else tuple(padding)
    if len(p) == 2:
        p = p + (0, 0)
    if len(p) != 4 or any(int(v) < 0 for v in p):
        raise UnsupportedLayer(f"{name}: padding {padding!r}: only non-negative padding of "
                               "the last two dims (left, right, top, bottom) is supported")
    left, right, top, bottom = (int(v) for v in p)
    return Op("pad", name, ins, {"pad": (top, bottom, left, right), "value": float(value)})


def upsample_op(name, ins, size, scale, mode, align_corners) -> Op:
    if size is not None or scale is None:
        raise UnsupportedLayer(f"{name}: upsampling to a size is not supported; give an "
                               "integer scale_factor")
    s = (scale, scale) if np.ndim(scale) == 0 else tuple(scale)
    if len(s) != 2 or any(float(v) != int(v) or v < 1 for v in s):
        raise UnsupportedLayer(f"{name}: only integer scale factors are supported, got "
                               f"{scale!r}")
    if mode not in ("nearest", "bilinear"):
        raise UnsupportedLayer(f"{name}: upsampling mode {mode!r} is not supported (nearest, "
                               "bilinear)")
    return Op("upsample", name, ins, {"scale": (int(s[0]), int(s[1])), "mode": mode,
                                      "align_corners": bool(align_corners)})
