"""The ``call_function`` / ``call_method`` nodes of a traced model (`qkit.engine.graph`):
arithmetic between tensors and with numbers, concatenation, functional layers
(``F.conv2d(x, self.weight, ...)``, ``F.linear``, ``F.pad``, ``F.interpolate``, pooling,
activations), reshapes around a linear layer and spatial means. Each becomes an `Op` or an
alias of one; anything else raises `UnsupportedLayer` naming the call and its node."""

from __future__ import annotations

from qkit.engine import functions
from qkit.engine.ops import (
    HINT,
    Builder,
    Op,
    UnsupportedLayer,
    conv_op,
    linear_op,
    pad_op,
    pool_op,
    upsample_op,
)

ADD = ("add", "add_", "iadd", "__add__", "__radd__", "__iadd__")
MUL = ("mul", "mul_", "imul", "__mul__", "__rmul__", "__imul__")
SUB = ("sub", "sub_", "isub", "__sub__", "__rsub__")
DIV = ("div", "div_", "truediv", "itruediv", "__truediv__", "__rtruediv__")
PASS = ("contiguous", "clone", "detach", "dropout", "dropout1d", "dropout2d", "dropout3d",
        "alpha_dropout", "feature_alpha_dropout")
MEAN_DIMS = ({2, 3}, {-1, -2}, {2, -1}, {-2, 3})


def name_of(target) -> str:
    """``F.conv2d`` -> ``conv2d``; ``operator.add`` -> ``add``; method names as they are."""
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def arg(node, i: int, key: str, default=None):
    """Argument ``i`` of a call, given by position or as ``key=``."""
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def call(node, b: Builder) -> None:
    """One function or method call of the traced graph, added to ``b``."""
    name = name_of(node.target)
    if node.target is getattr or name == "size" or (
            name == "getitem" and getattr(node.args[0], "name", None) in b.shapes):
        b.shapes.add(node.name)  # a size, only used to build a view's shape
        return
    tensors = [a for a in node.args if _is_node(a) and a.name not in b.shapes]
    consts = [a.name for a in tensors if a.name in b.consts]
    if name in ("conv2d", "linear"):
        return _functional_layer(node, name, b)
    if consts:
        raise UnsupportedLayer(f"call {name!r} (node {node.name}) uses the model's tensor "
                               f"{consts[0]!r} directly: only F.conv2d / F.linear may read "
                               f"parameters ({HINT})")
    ins = [b.src(a) for a in tensors]
    if _arithmetic(node, name, ins, b) or _activation_call(node, name, ins, b) or \
            _shape_call(node, name, ins, b):
        return
    raise UnsupportedLayer(f"call {name!r} (node {node.name}) is not supported by qkit's "
                           f"integer engine: {HINT}")


def _is_node(a) -> bool:
    return hasattr(a, "name") and hasattr(a, "op")


def _arithmetic(node, name, ins, b: Builder) -> bool:
    """x + y, x * y, and x (+ - * /) number in either order."""
    kind = next((k for k, names in (("add", ADD), ("mul", MUL), ("sub", SUB), ("div", DIV))
                 if name in names), None)
    if kind is None:
        return False
    if "alpha" in node.kwargs:
        raise UnsupportedLayer(f"call {name!r} (node {node.name}) with alpha=: write "
                               f"x + alpha * y instead")
    a, c = node.args[0], node.args[1] if len(node.args) > 1 else node.kwargs.get("other")
    if len(ins) == 2 and kind in ("add", "mul"):
        b.add(Op(kind, node.name, ins))
        return True
    if len(ins) != 1:
        raise UnsupportedLayer(f"call {name!r} (node {node.name}): {kind} of two tensors is "
                               f"not supported (x + y and x * y are): {HINT}")
    number = c if _is_node(a) else a
    reflected = not _is_node(a) or name.startswith("__r")
    op = {"add": "add", "mul": "mul", "sub": "rsub" if reflected else "sub",
          "div": "rdiv" if reflected else "div"}[kind]
    params = {"fn": "scalar", "op": op, "value": number}
    try:
        functions.check(params, f"call {name!r} (node {node.name})")
    except ValueError as err:
        raise UnsupportedLayer(str(err)) from None
    b.add(Op("lut", node.name, ins, params))
    return True


ACTIVATIONS = {"hardswish": "hardswish", "hardsigmoid": "hardsigmoid", "silu": "silu",
               "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "gelu", "leaky_relu": "leaky_relu",
               "hardtanh": "hardtanh", "elu": "elu", "mish": "mish", "softplus": "softplus"}


def _activation_call(node, name, ins, b: Builder) -> bool:
    base = name.rstrip("_")
    if base in ("relu", "relu6"):
        b.activation(node, node.args[0], base)
        return True
    fn = ACTIVATIONS.get(base)
    if fn is None:
        return False
    params = {"fn": fn}
    if fn == "gelu":
        params["approximate"] = node.kwargs.get("approximate", "none")
    elif fn == "leaky_relu":
        params["slope"] = float(arg(node, 1, "negative_slope", 0.01))
    elif fn == "hardtanh":
        params.update(min=float(arg(node, 1, "min_val", -1.0)),
                      max=float(arg(node, 2, "max_val", 1.0)))
    elif fn == "elu":
        params["alpha"] = float(arg(node, 1, "alpha", 1.0))
    elif fn == "softplus":
        params.update(beta=float(arg(node, 1, "beta", 1.0)),
                      threshold=float(arg(node, 2, "threshold", 20.0)))
    b.add(Op("lut", node.name, ins, params))
    return True


def _shape_call(node, name, ins, b: Builder) -> bool:
    """Concatenation, padding, upsampling, pooling, means, flatten and reshapes."""
    if name in PASS:
        b.alias[node.name] = ins[0]
    elif name in ("cat", "concat", "concatenate"):
        _concat(node, name, b)
    elif name == "pad":
        if arg(node, 2, "mode", "constant") != "constant":
            raise UnsupportedLayer(f"call 'pad' (node {node.name}): only mode='constant' is "
                                   f"supported ({HINT})")
        b.add(pad_op(node.name, ins, arg(node, 1, "pad"), float(arg(node, 3, "value", 0.0)
                                                               or 0.0)))
    elif name in ("interpolate", "upsample"):
        b.add(upsample_op(node.name, ins, arg(node, 1, "size"), arg(node, 2, "scale_factor"),
                          arg(node, 3, "mode", "nearest"), arg(node, 4, "align_corners")))
    elif name in ("max_pool2d", "avg_pool2d"):
        b.add(pool_op(node.name, ins, name[:3] + "pool", arg(node, 1, "kernel_size"),
                      arg(node, 2, "stride"), arg(node, 3, "padding", 0),
                      arg(node, 4 if name == "avg_pool2d" else 5, "ceil_mode", False),
                      arg(node, 4, "dilation", 1) if name == "max_pool2d" else 1))
    elif name == "adaptive_avg_pool2d":
        if arg(node, 1, "output_size") not in (1, (1, 1), [1, 1]):
            raise UnsupportedLayer(f"call 'adaptive_avg_pool2d' (node {node.name}): only "
                                   "output size 1 is supported")
        b.add(Op("avgpool", node.name, ins, {"global": True}))
    elif name == "mean":
        _mean(node, ins, b)
    elif name == "flatten":
        start = arg(node, 1, "start_dim", 0)
        if start != 1 or arg(node, 2, "end_dim", -1) != -1:
            raise UnsupportedLayer(f"call 'flatten' (node {node.name}): only flatten(x, 1)")
        b.add(Op("flatten", node.name, ins))
    elif name in ("view", "reshape"):
        _reshape(node, name, ins, b)
    else:
        return False
    return True


def _concat(node, name, b: Builder) -> None:
    parts = arg(node, 0, "tensors")
    if not isinstance(parts, list | tuple) or not all(_is_node(p) for p in parts):
        raise UnsupportedLayer(f"call {name!r} (node {node.name}): concatenate a list of the "
                               "model's tensors")
    if any(p.name in b.consts for p in parts):
        raise UnsupportedLayer(f"call {name!r} (node {node.name}) concatenates a model "
                               f"parameter: {HINT}")
    dim = arg(node, 1, "dim", 0)
    if not isinstance(dim, int):
        raise UnsupportedLayer(f"call {name!r} (node {node.name}): dim must be a number")
    b.add(Op("concat", node.name, [b.src(p) for p in parts], {"dim": dim}))


def _mean(node, ins, b: Builder) -> None:
    dims = arg(node, 1, "dim")
    dims = {dims} if isinstance(dims, int) else set(dims or ())
    if dims not in MEAN_DIMS:
        raise UnsupportedLayer(f"call 'mean' (node {node.name}) over dims {sorted(dims)}: "
                               "only the spatial mean over (2, 3) is supported")
    if arg(node, 2, "keepdim", False):
        b.add(Op("avgpool", node.name, ins, {"global": True}))
    else:  # (N, C): the pooled (N, C, 1, 1) map, flattened
        b.add(Op("avgpool", f"{node.name}_pool", ins, {"global": True}))
        b.add(Op("flatten", node.name, [f"{node.name}_pool"]))


def _reshape(node, name, ins, b: Builder) -> None:
    shape = list(node.args[1:])
    if len(shape) == 1 and isinstance(shape[0], list | tuple):
        shape = list(shape[0])
    if len(shape) == 2 and shape[1] == -1:
        b.add(Op("flatten", node.name, ins))
    elif len(shape) == 4 and shape[2:] == [1, 1]:
        b.add(Op("unflatten", node.name, ins))
    else:
        raise UnsupportedLayer(f"call {name!r} (node {node.name}): only x.{name}(n, -1) "
                               f"(flatten) and x.{name}(n, c, 1, 1) are supported")


def _functional_layer(node, name, b: Builder) -> None:
    """``F.conv2d(x, self.weight, self.bias, ...)`` and ``F.linear``: the weights must be the
    model's own tensors (``get_attr`` nodes), not computed in ``forward``."""
    x, w, bias = arg(node, 0, "input"), arg(node, 1, "weight"), arg(node, 2, "bias")
    for what, v in (("weight", w), ("bias", bias)):
        if _is_node(v) and v.name not in b.consts or (what == "weight" and not _is_node(v)):
            raise UnsupportedLayer(f"call {name!r} (node {node.name}): its {what} is computed "
                                   f"in forward ({getattr(v, 'name', v)!r}), not a parameter of "
                                   f"the model; qkit quantizes stored weights only ({HINT})")
    if not _is_node(x) or x.name in b.consts:
        raise UnsupportedLayer(f"call {name!r} (node {node.name}): its input must be a tensor "
                               "of the model")
    weight = b.consts[w.name]
    bias_t = b.consts[bias.name] if _is_node(bias) else None
    ins = [b.src(x)]
    if name == "linear":
        b.add(linear_op(node.name, ins, weight, bias_t))
        return
    args = {"stride": arg(node, 3, "stride", 1), "padding": arg(node, 4, "padding", 0),
            "dilation": arg(node, 5, "dilation", 1), "groups": arg(node, 6, "groups", 1)}
    conv_op(node.name, ins, weight, bias_t, args, b)

