"""Read a QDQ ONNX model (ONNX Runtime's ``quantize_static``, ``QuantFormat.QDQ``) into an
`IntegerModel` that runs on qkit's kernels with ONNX Runtime's integers.

    im = IntegerModel.from_onnx("model_qdq.onnx")
    counts = compare_qdq("model_qdq.onnx", im, images)

In QDQ form every tensor between layers is a ``QuantizeLinear`` -> ``DequantizeLinear``
pair around a float operator; ONNX Runtime fuses each ``DQ -> op -> Q`` group into an integer
kernel. The reader does the same: the grids come from the ``QuantizeLinear`` nodes, the
weights and int32 biases from the initializers behind the ``DequantizeLinear`` nodes, so
nothing is recalibrated. Supported: Conv (with a fused Relu / Clip(0, 6)), Gemm and MatMul
with constant weights, MaxPool, Relu, Flatten, GlobalAveragePool and Add; ONNX Runtime's
arithmetic for the last two is its own (`qkit.engine.ortmath`), the others share qkit's
kernels. Anything else is refused by name.
"""

from __future__ import annotations

import numpy as np

from qkit import kernels
from qkit.engine.export import (
    count_differences,
    flattened_map,
    reorder_flattened,
    require_onnx,
    run_onnxruntime,
)
from qkit.engine.ops import Op, UnsupportedLayer
from qkit.engine.scheme import SCHEMES

UNARY = ("Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Gelu", "Elu",
         "Softplus", "Mish", "Clip", "Neg", "Abs")
SUPPORTED_NODES = ("Conv", "Gemm", "MatMul", "MaxPool", "Flatten", "Reshape",
                   "GlobalAveragePool", "Add", *UNARY)
SHAPE_NODES = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
               "ConstantOfShape")  # int64 size arithmetic (x.view(x.size(0), -1))


class _Reader:
    def __init__(self, model):
        onnx = require_onnx()
        self.nh = onnx.numpy_helper
        model = onnx.shape_inference.infer_shapes(model)
        g = model.graph
        self.consts = {i.name: self.nh.to_array(i) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = self.nh.to_array(n.attribute[0].t)
        self.producer = {o: n for n in g.node for o in n.output}
        self.users: dict = {}
        for n in g.node:
            for i in n.input:
                self.users.setdefault(i, []).append(n)
        self.dims, self.types = {}, {}
        for v in [*g.input, *g.value_info, *g.output]:
            d = v.type.tensor_type.shape.dim
            self.dims[v.name] = tuple(x.dim_value if x.HasField("dim_value") else None
                                      for x in d)
            self.types[v.name] = v.type.tensor_type.elem_type
        self.graph, self.inputs = g, [i.name for i in g.input if i.name not in self.consts]
        self.opsets, self.ir_version = list(model.opset_import), model.ir_version
        self.ops, self.act, self.layers, self.shapes = [], {}, {}, {}
        self.qname = {}  # QuantizeLinear output -> the op whose uint8 value it is
        self.done = set()  # QuantizeLinear nodes folded into the op before them

    def grid(self, node):
        scale = self.consts.get(node.input[1])
        zp = self.consts.get(node.input[2]) if len(node.input) > 2 else np.uint8(0)
        if scale is None or zp is None or np.size(scale) != 1 or np.size(zp) != 1:
            raise UnsupportedLayer(f"node {node.name}: activations need a constant per-tensor "
                                   "scale and zero point")
        if np.asarray(zp).dtype != np.uint8:
            raise UnsupportedLayer(f"node {node.name}: activations must be uint8 (quantize "
                                   f"with activation_type=QUInt8), got {np.asarray(zp).dtype}")
        return np.float32(np.asarray(scale).reshape(())), int(np.asarray(zp).reshape(()))

    def activation(self, tensor, node):
        """The qkit op behind a DequantizeLinear of a quantized activation."""
        dq = self.producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in self.qname:
            raise UnsupportedLayer(f"node {node.name} ({node.op_type}): input {tensor!r} is not "
                                   "a dequantized activation (QDQ form expected: quantize with "
                                   "quant_format=QuantFormat.QDQ)")
        src = self.qname[dq.input[0]]
        if self.grid(dq) != self.act[src]:
            raise UnsupportedLayer(f"node {dq.name}: dequantizes with another grid than its "
                                   "QuantizeLinear")
        return src

    def weight(self, tensor, node, dtype=np.int8):
        """(integers, scales, axis) of a DequantizeLinear of a constant."""
        dq = self.producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in self.consts:
            raise UnsupportedLayer(f"node {node.name} ({node.op_type}): {tensor!r} must be a "
                                   "dequantized constant")
        q = self.consts[dq.input[0]]
        if q.dtype != dtype:
            raise UnsupportedLayer(f"node {node.name}: {tensor!r} is {q.dtype}, {dtype.__name__} "
                                   "expected (weight_type=QInt8, int32 bias)")
        zp = self.consts.get(dq.input[2], np.zeros(1)) if len(dq.input) > 2 else np.zeros(1)
        if np.any(np.asarray(zp) != 0):
            raise UnsupportedLayer(f"node {node.name}: {tensor!r} has a nonzero zero point; "
                                   "qkit's weights are symmetric (quantize with QInt8 weights)")
        scale = np.asarray(self.consts[dq.input[1]], np.float32)
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        return q, scale, axis

    def output_of(self, node):
        """The QuantizeLinear that quantizes ``node``'s output, through at most one Relu or
        Clip(0, 6): (its node, the fused activation)."""
        out, act = node.output[0], None
        users = self.users.get(out, [])
        if len(users) == 1 and users[0].op_type in ("Relu", "Clip") and node.op_type == "Conv":
            act = _activation_kind(users[0], self.consts)
            out = users[0].output[0]
            users = self.users.get(out, [])
        if len(users) != 1 or users[0].op_type != "QuantizeLinear":
            raise UnsupportedLayer(f"node {node.name} ({node.op_type}): its output must feed one "
                                   "QuantizeLinear")
        return users[0], act

    def add(self, op: Op, q_node, dims) -> None:
        self.ops.append(op)
        self.act[op.name] = self.grid(q_node)
        self.qname[q_node.output[0]] = op.name
        self.done.add(q_node.name or q_node.output[0])
        if dims is not None:
            self.shapes[op.name] = tuple(dims[1:])


def _activation_kind(node, consts) -> str:
    if node.op_type == "Relu":
        return "relu"
    lo, hi = (float(consts[i]) if i in consts else None
              for i in (list(node.input[1:]) + ["", ""])[:2])
    if (lo, hi) == (0.0, 6.0):
        return "relu6"
    if (lo, hi) == (0.0, None):
        return "relu"
    raise UnsupportedLayer(f"node {node.name}: Clip({lo}, {hi}) is not supported (Relu or "
                           "Clip(0, 6))")


def read(model, cls):
    """A ``cls`` (`IntegerModel`) from a QDQ ONNX model (``ModelProto`` or path)."""
    onnx = require_onnx()
    if not hasattr(model, "graph"):
        try:
            model = onnx.load(str(model))
        except Exception as err:  # a missing, truncated or foreign file
            raise ValueError(f"model {str(model)!r} is not a readable ONNX file: {err}") from err
    r = _Reader(model)
    if len(r.inputs) != 1:
        raise UnsupportedLayer(f"the model must have one input, got {r.inputs}")
    for node in r.graph.node:
        if node.op_type in ("DequantizeLinear", "Constant") or \
                (node.name or node.output[0]) in r.done or _is_shape_arithmetic(r, node):
            continue
        _node(r, node)
    outs = [o.name for o in r.graph.output]
    final = r.producer.get(outs[0]) if len(outs) == 1 else None
    if final is None or final.op_type != "DequantizeLinear" or final.input[0] not in r.qname:
        raise UnsupportedLayer("the model must end in one DequantizeLinear of a quantized "
                               "tensor")
    im = cls(r.ops, r.qname[final.input[0]], SCHEMES["w8a8-per-channel"])
    im.act, im.layers, im.shapes = r.act, r.layers, r.shapes
    im.input_name = r.inputs[0]
    return im


def _node(r: _Reader, node) -> None:
    t = node.op_type
    if t == "QuantizeLinear":
        if node.input[0] not in r.inputs:
            raise UnsupportedLayer(f"node {node.name}: QuantizeLinear of {node.input[0]!r}, "
                                   "which no supported node computes")
        r.add(Op("input", node.output[0], []), node, r.dims.get(node.input[0]))
        return
    if t not in SUPPORTED_NODES:
        raise UnsupportedLayer(f"node {node.name} ({t}) is not supported by qkit's QDQ reader; "
                               f"supported: {', '.join(SUPPORTED_NODES)} between "
                               "QuantizeLinear / DequantizeLinear pairs")
    q, act = r.output_of(node)
    name, dims = q.output[0], r.dims.get(q.output[0])
    attrs = {a.name: _attr(a) for a in node.attribute}
    if t == "Conv":
        _conv(r, node, q, act, attrs)
    elif t in ("Gemm", "MatMul"):
        _linear(r, node, q, attrs)
    elif t == "MaxPool":
        if any(attrs.get("pads", [0])) or attrs.get("ceil_mode", 0) or \
                any(d != 1 for d in attrs.get("dilations", [1])):
            raise UnsupportedLayer(f"node {node.name}: MaxPool with pads, ceil_mode or "
                                   "dilations is not supported")
        k = tuple(attrs["kernel_shape"])
        r.add(Op("maxpool", name, [r.activation(node.input[0], node)],
                 {"kernel": k, "stride": tuple(attrs.get("strides", k))}), q, dims)
        _same_grid(r, node, name)
    elif t in ("Flatten", "Reshape"):
        if (t == "Flatten" and attrs.get("axis", 1) != 1) or \
                (t == "Reshape" and len(r.dims.get(node.output[0], ())) != 2):
            raise UnsupportedLayer(f"node {node.name} ({t}): only a flatten to (N, features) "
                                   "is supported")
        r.add(Op("flatten", name, [r.activation(node.input[0], node)]), q, dims)
        _same_grid(r, node, name)
    elif t in UNARY:
        _unary(r, node, q, name, dims)
    elif t == "GlobalAveragePool":
        r.add(Op("ort_avgpool", name, [r.activation(node.input[0], node)]), q, dims)
    else:  # Add of two activations
        ins = [r.activation(i, node) for i in node.input]
        if len(ins) != 2:
            raise UnsupportedLayer(f"node {node.name}: Add needs two activations")
        r.add(Op("ort_add", name, ins), q, dims)


def _is_shape_arithmetic(r: _Reader, node) -> bool:
    """A node that computes sizes (int64) for a Reshape, not values."""
    return node.op_type in SHAPE_NODES and all(r.types.get(o) == 7 for o in node.output)


def _unary(r: _Reader, node, q, name, dims) -> None:
    """A one-input float operator between a DequantizeLinear and a QuantizeLinear: its 256
    possible outputs computed once by ONNX Runtime itself (the same DQ -> op -> Q group as a
    model of its own, on the 256 codes), then run as a qkit lookup table."""
    onnx = require_onnx()
    h = onnx.helper
    src = r.activation(node.input[0], node)
    (sx, zx), (sy, zy) = r.act[src], r.grid(q)
    consts = [onnx.numpy_helper.from_array(np.asarray(v, d), n) for n, v, d in (
        ("sx", sx, np.float32), ("zx", zx, np.uint8), ("sy", sy, np.float32),
        ("zy", zy, np.uint8))]
    extra = [i for i in node.input[1:] if i]
    for i in extra:
        if i not in r.consts:
            raise UnsupportedLayer(f"node {node.name} ({node.op_type}): input {i!r} must be a "
                                   "constant")
        consts.append(onnx.numpy_helper.from_array(np.asarray(r.consts[i]), i))
    op = h.make_node(node.op_type, ["f", *node.input[1:]], ["g"], domain=node.domain,
                     **{a.name: _attr(a) for a in node.attribute})
    graph = h.make_graph([h.make_node("DequantizeLinear", ["q", "sx", "zx"], ["f"]), op,
                          h.make_node("QuantizeLinear", ["g", "sy", "zy"], ["y"])], "table",
                         [h.make_tensor_value_info("q", onnx.TensorProto.UINT8, [256])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.UINT8, [256])], consts)
    opsets = [h.make_opsetid(o.domain, o.version) for o in r.opsets]
    table = run_onnxruntime(h.make_model(graph, opset_imports=opsets, ir_version=r.ir_version),
                            np.arange(256, dtype=np.uint8), input_name="q", dtype=np.uint8)["y"]
    r.add(Op("lut", name, [src], {"fn": node.op_type.lower(), "onnx": True}), q, dims)
    r.layers[name] = {"table": table.astype(np.uint8), "lut_bytes": 256}


def _same_grid(r: _Reader, node, name) -> None:
    src = r.ops[-1].inputs[0]
    if r.act[src] != r.act[name]:
        raise UnsupportedLayer(f"node {node.name} ({node.op_type}): its output grid differs "
                               "from its input's; qkit runs it on the input's grid")


def _attr(a):
    from onnx import helper
    return helper.get_attribute_value(a)


def _requant(r: _Reader, src, name, sw, act) -> dict:
    from qkit.core.qparams import activation_range

    sx = r.act[src][0]
    sy, zy = r.act[name]
    qmin, qmax = activation_range(act, sy, zy, 0, 255)
    return {"w_scale": sw, "n_scales": sw.size, "bits": 8, "qmin": qmin, "qmax": qmax,
            "mult": ((np.float32(sx) * sw).astype(np.float32) / np.float32(sy))
            .astype(np.float32), "bound": {}}


def _bias(r: _Reader, node, index, n) -> np.ndarray:
    if len(node.input) <= index or not node.input[index]:
        return np.zeros(n, np.float32)
    b, _, _ = r.weight(node.input[index], node, np.int32)
    return np.broadcast_to(b.astype(np.float32), (n,)).copy()


def _conv(r: _Reader, node, q, act, attrs) -> None:
    name, src = q.output[0], r.activation(node.input[0], node)
    w, sw, _ = r.weight(node.input[1], node)
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:] or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedLayer(f"node {node.name}: asymmetric or automatic padding {pads} is "
                               "not supported")
    sw = np.broadcast_to(sw, (w.shape[0],)).astype(np.float32)
    params = {"weight": w.astype(np.float32) * sw[:, None, None, None],
              "bias": _bias(r, node, 2, w.shape[0]),
              "stride": tuple(attrs.get("strides", (1, 1))), "padding": tuple(pads[:2]),
              "dilation": tuple(attrs.get("dilations", (1, 1))),
              "groups": int(attrs.get("group", 1))}
    r.add(Op("conv", name, [src], params, activation=act), q, r.dims.get(name))
    w_q = np.ascontiguousarray(w.transpose(0, 2, 3, 1))  # OIHW -> the engine's OHWI
    r.layers[name] = {"w_q": w_q, "bias_q": params["bias"], "packed": kernels.pack_conv(w_q),
                      **_requant(r, src, name, sw, act)}


def _linear(r: _Reader, node, q, attrs) -> None:
    name, src = q.output[0], r.activation(node.input[0], node)
    w, sw, axis = r.weight(node.input[1], node)
    trans = attrs.get("transB", 0) if node.op_type == "Gemm" else 0
    if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or \
            attrs.get("transA", 0) or w.ndim != 2:
        raise UnsupportedLayer(f"node {node.name}: only Gemm(alpha=1, beta=1, transA=0) with "
                               "a 2-D weight is supported")
    if not trans:
        w, axis = w.T, 1 - axis
    if sw.size > 1 and axis != 0:
        raise UnsupportedLayer(f"node {node.name}: per-channel weight scales must be per "
                               "output")
    sw = np.broadcast_to(sw, (w.shape[0],)).astype(np.float32)
    # ONNX's CHW columns after a flatten -> the engine's HWC
    w = reorder_flattened(np.ascontiguousarray(w), flattened_map(r.ops, r.shapes, src), "hwc")
    bias = _bias(r, node, 2, w.shape[0]) if node.op_type == "Gemm" else \
        np.zeros(w.shape[0], np.float32)
    r.add(Op("linear", name, [src], {"weight": w.astype(np.float32) * sw[:, None],
                                     "bias": bias}), q, r.dims.get(name))
    r.layers[name] = {"w_q": w, "bias_q": bias, "packed": kernels.pack_weights(w),
                      **_requant(r, src, name, sw, None)}


def compare_qdq(model, im, x) -> dict:
    """ONNX Runtime on the QDQ ``model`` (every QuantizeLinear output exposed) against ``im``
    on qkit's kernels, on float NCHW ``x``: ``{kind: (values that differ, values)}``."""
    onnx = require_onnx()
    if not hasattr(model, "graph"):
        model = onnx.load(str(model))
    m = onnx.ModelProto()
    m.CopyFrom(model)
    known = {o.name for o in m.graph.output}
    for op in im.ops:
        if op.name not in known:
            m.graph.output.append(onnx.helper.make_tensor_value_info(
                op.name, onnx.TensorProto.UINT8, None))
    theirs = run_onnxruntime(m, x, input_name=getattr(im, "input_name", "input"))
    return count_differences(im, im.run(im.quantize_input(x), keep=True), theirs)
