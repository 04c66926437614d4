"""An `IntegerModel` as a standard ONNX model, run by ONNX Runtime on the same integers.

    model = to_onnx(im, "model.onnx")            # or im.to_onnx("model.onnx")
    q = run_onnxruntime(model, images)           # uint8 outputs of every layer, NCHW

The graph takes float NCHW input and returns float output; between them every tensor is
uint8 on the grid qkit calibrated, and each layer is written in ONNX's own operators:

- conv: ``QLinearConv`` (ONNX Runtime's integer kernel and its requantization
  ``rne(f32(acc + b) * f32(s_x * s_w / s_y)) + z_y``), with the bias as int32
  ``rne(b / (s_x * s_w))``. qkit keeps the bias in float32 (PyTorch's fbgemm rule);
  `IntegerModel.with_int32_bias` is the qkit model that computes exactly what ONNX computes.
- linear: ``MatMulInteger`` + int32 bias, then the same requantization in float32 ops.
- lookup tables (activations, scalar arithmetic, concat requantization): ``Gather`` on
  qkit's 256-entry table, so ONNX Runtime applies the very table qkit computed.
- add, mul, bilinear upsampling, average pools: the float32 steps of qkit's references,
  one ONNX operator per step (IEEE float32 has one answer per step), ending in ``Round`` /
  ``QuantizeLinear``; max pooling, padding, nearest upsampling, flatten: uint8 directly.

``all_outputs=True`` adds every layer's uint8 tensor as an output named after its op, which
is how the tests compare the two engines layer by layer.
"""

from __future__ import annotations

import numpy as np

from qkit.core.qparams import activation_range
from qkit.engine.elementwise import concat_axis
from qkit.reference.spatial import bilinear_weights

OPSET = 21  # ONNX Runtime 1.20 and newer run it


def require_onnx():
    """The onnx package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - onnx is in the lab/test extras
        raise ImportError("ONNX export needs the onnx package: pip install 'qkit[onnx]' "
                          "(make lab and make test install it)") from err
    return onnx


class _Graph:
    """Nodes and constants of the graph being written; ``const`` names each constant once."""

    def __init__(self, onnx):
        self.onnx, self.h = onnx, onnx.helper
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, value, dtype) -> str:
        self.n += 1
        name = f"qkit/c{self.n}"  # fx names never hold a "/"
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op_type, inputs, out=None, domain="", **attrs) -> str:
        self.n += 1
        out = out or f"qkit/t{self.n}"
        self.nodes.append(self.h.make_node(op_type, list(inputs), [out], name=f"qkit/n{self.n}",
                                           domain=domain, **attrs))
        return out

    def to_float(self, x, zero_point) -> str:
        """``f32(q - z)``: exact for uint8 values and zero points."""
        return self.node("Sub", [self.node("Cast", [x], to=1),
                                 self.const(np.float32(zero_point), np.float32)])

    def requantize(self, v, zero_point, qmin=0, qmax=255, out=None) -> str:
        """``clamp(rne(v) + z, qmin, qmax)`` as uint8 (QuantizeLinear with scale 1)."""
        q = self.node("QuantizeLinear", [v, self.const(np.float32(1), np.float32),
                                         self.const(np.uint8(zero_point), np.uint8)],
                      out=None if (qmin, qmax) != (0, 255) else out)
        return q if (qmin, qmax) == (0, 255) else self.clip(q, qmin, qmax, out)

    def clip(self, x, qmin, qmax, out=None) -> str:
        return self.node("Clip", [x, self.const(np.uint8(qmin), np.uint8),
                                  self.const(np.uint8(qmax), np.uint8)], out=out)


def to_onnx(im, path=None, all_outputs: bool = False):
    """``im`` (an `IntegerModel`) as an ``onnx.ModelProto``, saved to ``path`` if given.
    The input is float NCHW of the calibration images' shape (any batch size)."""
    onnx = require_onnx()
    shapes = getattr(im, "shapes", None)
    if not shapes:
        raise ValueError("im must be a calibrated IntegerModel (IntegerModel.from_float)")
    g = _Graph(onnx)
    first = im.ops[0]
    for op in im.ops:
        _write(g, im, op)
    out = g.node("DequantizeLinear", [im.output,
                                      g.const(np.float32(im.act[im.output][0]), np.float32),
                                      g.const(np.uint8(im.act[im.output][1]), np.uint8)],
                 out="output")
    h = onnx.helper
    in_shape = ["N", *shapes[first.name]]
    outputs = [h.make_tensor_value_info(out, onnx.TensorProto.FLOAT,
                                        ["N", *shapes[im.output]])]
    if all_outputs:
        outputs += [h.make_tensor_value_info(op.name, onnx.TensorProto.UINT8,
                                             ["N", *shapes[op.name]]) for op in im.ops]
    graph = h.make_graph(g.nodes, "qkit", [h.make_tensor_value_info(
        "input", onnx.TensorProto.FLOAT, in_shape)], outputs, g.inits)
    opsets = [h.make_opsetid("", OPSET)]
    if any(n.domain == "com.microsoft" for n in g.nodes):
        opsets.append(h.make_opsetid("com.microsoft", 1))
    model = h.make_model(graph, opset_imports=opsets, producer_name="qkit", ir_version=10)
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, str(path))
    return model


def _write(g: _Graph, im, op) -> None:
    """The ONNX nodes of one op; its uint8 output is the tensor named ``op.name``."""
    act, name = im.act, op.name
    x = op.inputs[0] if op.inputs else "input"
    sy, zy = act[name]
    if op.kind == "input":
        g.node("QuantizeLinear", ["input", g.const(np.float32(sy), np.float32),
                                  g.const(np.uint8(zy), np.uint8)], out=name)
    elif op.kind == "conv":
        _conv(g, im, op)
    elif op.kind == "linear":
        _linear(g, im, op)
    elif op.kind == "relu":
        g.clip(x, act[x][1], 255, out=name)
    elif op.kind == "maxpool":
        g.node("MaxPool", [x], out=name, kernel_shape=_pair(op.params["kernel"]),
               strides=_pair(op.params["stride"]))
    elif op.kind == "avgpool":
        _avgpool(g, im, op)
    elif op.kind == "flatten":
        g.node("Flatten", [x], out=name, axis=1)
    elif op.kind == "unflatten":
        g.node("Reshape", [x, g.const([0, -1, 1, 1], np.int64)], out=name)
    elif op.kind in ("add", "mul", "lut", "concat", "pad"):
        _elementwise(g, im, op)
    elif op.kind == "upsample":
        _upsample(g, im, op)
    elif op.kind in ("ort_add", "ort_avgpool"):  # read from ONNX: ONNX Runtime's own ops
        ins = [v for i in op.inputs for v in (i, g.const(np.float32(act[i][0]), np.float32),
                                              g.const(np.uint8(act[i][1]), np.uint8))]
        ins += [g.const(np.float32(sy), np.float32), g.const(np.uint8(zy), np.uint8)]
        kind = "QLinearAdd" if op.kind == "ort_add" else "QLinearGlobalAveragePool"
        extra = {} if op.kind == "ort_add" else {"channels_last": 0}
        g.node(kind, ins, out=name, domain="com.microsoft", **extra)
    else:
        raise ValueError(f"op {name}: kind {op.kind!r} cannot be written to ONNX")


def _elementwise(g: _Graph, im, op) -> None:
    """add, mul, lut, concat and pad: float32 steps, tables and uint8 operators."""
    act, name = im.act, op.name
    x = op.inputs[0]
    sy, zy = act[name]
    if op.kind == "add":
        L = im.layers[name]
        fa = g.node("Mul", [g.to_float(x, act[x][1]), g.const(L["ma"], np.float32)])
        b = op.inputs[1]
        fb = g.node("Mul", [g.to_float(b, act[b][1]), g.const(L["mb"], np.float32)])
        qmin, qmax = activation_range(op.activation, sy, zy, 0, 255)
        g.requantize(g.node("Add", [fa, fb]), zy, qmin, qmax, out=name)
    elif op.kind == "mul":
        b = op.inputs[1]
        prod = g.node("Mul", [g.to_float(x, act[x][1]), g.to_float(b, act[b][1])])
        g.requantize(g.node("Mul", [prod, g.const(im.layers[name]["mult"], np.float32)]), zy,
                     out=name)
    elif op.kind == "lut":
        g.node("Gather", [g.const(im.layers[name]["table"], np.uint8),
                          g.node("Cast", [x], to=6)], out=name)
    elif op.kind == "concat":
        parts = [i if t is None else g.node("Gather", [g.const(t, np.uint8),
                                                       g.node("Cast", [i], to=6)])
                 for i, t in zip(op.inputs, im.layers[name]["tables"], strict=True)]
        ndim = len(im.shapes[x]) + 1
        axis = op.params["dim"] % ndim
        concat_axis(op.params["dim"], ndim, name)  # the engine's own check of the dim
        g.node("Concat", parts, out=name, axis=axis)
    elif op.kind == "pad":
        t, b, left, r = op.params["pad"]
        g.node("Pad", [x, g.const([0, 0, t, left, 0, 0, b, r], np.int64),
                       g.const(np.uint8(im.layers[name]["value"]), np.uint8)], out=name,
               mode="constant")


def _pair(v) -> list[int]:
    return [int(v), int(v)] if np.ndim(v) == 0 else [int(a) for a in v]


def int32_bias(layer: dict, name: str) -> np.ndarray:
    """A conv's or linear's float bias (already divided by ``s_x * s_w``) as ONNX's int32."""
    b = np.rint(layer["bias_q"].astype(np.float64))
    if np.abs(b).max(initial=0) >= 2 ** 31:
        raise ValueError(f"layer {name}: its bias is {np.abs(b).max():.3g} steps of "
                         "s_x * s_w, beyond int32; it cannot be written as ONNX's int32 bias")
    return b.astype(np.int32)


def _conv(g: _Graph, im, op) -> None:
    L, p, x = im.layers[op.name], op.params, op.inputs[0]
    sx, zx = im.act[x]
    sy, zy = im.act[op.name]
    w = L["w_q"].transpose(0, 3, 1, 2)  # the engine's OHWI -> ONNX's OIHW
    ph, pw = p["padding"]
    ins = [x, g.const(np.float32(sx), np.float32), g.const(np.uint8(zx), np.uint8),
           g.const(w, np.int8), g.const(L["w_scale"], np.float32),
           g.const(np.zeros(w.shape[0], np.int8), np.int8),
           g.const(np.float32(sy), np.float32), g.const(np.uint8(zy), np.uint8),
           g.const(int32_bias(L, op.name), np.int32)]
    clamp = (L["qmin"], L["qmax"]) != (0, 255)
    y = g.node("QLinearConv", ins, out=None if clamp else op.name,
               kernel_shape=list(w.shape[2:]), strides=list(p["stride"]),
               pads=[ph, pw, ph, pw], dilations=list(p["dilation"]), group=p["groups"])
    if clamp:
        g.clip(y, L["qmin"], L["qmax"], out=op.name)


def _linear(g: _Graph, im, op) -> None:
    L, x = im.layers[op.name], op.inputs[0]
    w = reorder_flattened(L["w_q"], flattened_map(im.ops, im.shapes, x), to="chw")
    acc = g.node("MatMulInteger", [x, g.const(np.ascontiguousarray(w.T), np.int8),
                                   g.const(np.uint8(im.act[x][1]), np.uint8)])
    acc = g.node("Add", [acc, g.const(int32_bias(L, op.name), np.int32)])
    v = g.node("Mul", [g.node("Cast", [acc], to=1), g.const(L["mult"], np.float32)])
    g.requantize(v, im.act[op.name][1], L["qmin"], L["qmax"], out=op.name)


def _avgpool(g: _Graph, im, op) -> None:
    """``(sum + count // 2) // count`` in int32; window sums in float32 are exact (< 2^24)."""
    x = op.inputs[0]
    c, h, w = im.shapes[x]
    if op.params.get("global"):
        kh, kw = h, w
        s = g.node("ReduceSum", [g.node("Cast", [x], to=6), g.const([2, 3], np.int64)],
                   keepdims=1)
    else:
        (kh, kw), stride = _pair(op.params["kernel"]), _pair(op.params["stride"])
        ones = g.const(np.ones((c, 1, kh, kw)), np.float32)
        s = g.node("Cast", [g.node("Conv", [g.node("Cast", [x], to=1), ones],
                                   kernel_shape=[kh, kw], strides=stride, group=c)], to=6)
    count = kh * kw
    q = g.node("Div", [g.node("Add", [s, g.const(np.int32(count // 2), np.int32)]),
                       g.const(np.int32(count), np.int32)])
    g.node("Cast", [q], out=op.name, to=2)


def _upsample(g: _Graph, im, op) -> None:
    p, x = op.params, op.inputs[0]
    sh, sw = p["scale"]
    if p["mode"] == "nearest":
        g.node("Resize", [x, "", g.const([1, 1, sh, sw], np.float32)], out=op.name,
               mode="nearest", coordinate_transformation_mode="asymmetric",
               nearest_mode="floor")
        return
    _, h, w = im.shapes[x]
    h_lo, h_hi, h1 = bilinear_weights(h, sh, p["align_corners"])
    w_lo, w_hi, w1 = bilinear_weights(w, sw, p["align_corners"])
    f = g.node("Cast", [x], to=1)

    def mix(rows):  # w0 * x[rows][:, w_lo] + w1 * x[rows][:, w_hi], as qkit's reference
        r = g.node("Gather", [f, g.const(rows, np.int64)], axis=2)
        a = g.node("Gather", [r, g.const(w_lo, np.int64)], axis=3)
        b = g.node("Gather", [r, g.const(w_hi, np.int64)], axis=3)
        return g.node("Add", [g.node("Mul", [g.const((1 - w1).reshape(1, 1, 1, -1),
                                                     np.float32), a]),
                              g.node("Mul", [g.const(w1.reshape(1, 1, 1, -1), np.float32),
                                             b])])
    top, bottom = mix(h_lo), mix(h_hi)
    y = g.node("Add", [g.node("Mul", [g.const((1 - h1).reshape(1, 1, -1, 1), np.float32),
                                      top]),
                       g.node("Mul", [g.const(h1.reshape(1, 1, -1, 1), np.float32), bottom])])
    g.requantize(y, 0, out=op.name)


def flattened_map(ops, shapes: dict, name: str):
    """(C, H, W) of the map that op ``name`` flattens, or None when it is not a flatten of a
    map: the engine flattens NHWC maps in HWC order, ONNX (and PyTorch) in CHW order."""
    op = next(o for o in ops if o.name == name)
    chw = shapes.get(op.inputs[0]) if op.kind == "flatten" else None
    return tuple(chw) if chw is not None and len(chw) == 3 else None


def reorder_flattened(a: np.ndarray, chw, to: str) -> np.ndarray:
    """The last axis of ``a`` (flattened features, or a linear layer's columns) from the
    engine's HWC order to ONNX's CHW (``to="chw"``) or back (``to="hwc"``); as is if ``chw``
    is None."""
    if chw is None:
        return a
    c, h, w = chw
    if to == "chw":
        out = a.reshape(-1, h, w, c).transpose(0, 3, 1, 2)
    else:
        out = a.reshape(-1, c, h, w).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(out.reshape(a.shape))


def onnx_layout(im, name: str, q: np.ndarray) -> np.ndarray:
    """qkit's value of layer ``name`` (NHWC maps; HWC order after a flatten) in the exported
    model's layout (NCHW; CHW order), so the two engines compare element by element."""
    if q.ndim == 4:
        return np.ascontiguousarray(q.transpose(0, 3, 1, 2))
    return reorder_flattened(q, flattened_map(im.ops, im.shapes, name), to="chw")


def count_differences(im, ours: dict, theirs: dict) -> dict:
    """``{kind: (values that differ, values)}`` over ``im``'s layers: qkit's uint8 values
    ``ours`` (the engine's layout) against ONNX Runtime's ``theirs`` (NCHW)."""
    counts: dict = {}
    for op in im.ops:
        q = onnx_layout(im, op.name, ours[op.name])
        if theirs[op.name].shape != q.shape or theirs[op.name].dtype != np.uint8:
            raise AssertionError(f"layer {op.name}: ONNX Runtime gave "
                                 f"{theirs[op.name].dtype} {theirs[op.name].shape}, qkit "
                                 f"uint8 {q.shape}")
        bad, total = counts.get(op.kind, (0, 0))
        counts[op.kind] = (bad + int((theirs[op.name] != q).sum()), total + q.size)
    return counts


def compare_onnxruntime(im, x, exact: bool = True) -> dict:
    """Export ``im``, run it in ONNX Runtime on float NCHW ``x`` and compare every layer's
    uint8 tensor with `IntegerModel.with_int32_bias` on qkit's kernels: ``{kind: (values that
    differ, values)}`` summed over the layers of each kind, plus ``"output"`` (the float
    outputs)."""
    twin = im.with_int32_bias()
    ours = twin.run(twin.quantize_input(x), keep=True)
    theirs = run_onnxruntime(im.to_onnx(all_outputs=True), x, exact=exact)
    counts = count_differences(im, ours, theirs)
    y = twin.dequantize_output(ours[im.output])
    y = onnx_layout(im, im.output, y) if y.ndim == 4 else y
    counts["output"] = (int((theirs["output"] != y).sum()), y.size)
    return counts


def bias_rounding(im, x) -> dict:
    """What rounding the bias to int32 does, layer by layer: each conv and linear layer of
    ``im`` and of `IntegerModel.with_int32_bias` run on the same input (the twin's values on
    float NCHW ``x``); ``{layer: (largest difference in steps, values that differ, values)}``."""
    from qkit import kernels

    twin = im.with_int32_bias()
    vals = twin.run(twin.quantize_input(x), keep=True)
    out = {}
    for op in im.ops:
        if op.kind not in ("conv", "linear"):
            continue
        ys = []
        for m in (im, twin):
            L, p = m.layers[op.name], op.params
            args = (m.act[op.inputs[0]][1], L["mult"], m.act[op.name][1], L["qmin"],
                    L["qmax"], L["bias_q"])
            if op.kind == "conv":
                ys.append(kernels.qconv2d(vals[op.inputs[0]], L["w_q"], *args, p["stride"],
                                          p["padding"], p["dilation"], p["groups"]))
            else:
                ys.append(kernels.qlinear(vals[op.inputs[0]], L["w_q"], *args))
        d = np.abs(ys[0].astype(np.int32) - ys[1])
        out[op.name] = (int(d.max(initial=0)), int((d > 0).sum()), d.size)
    return out


def run_onnxruntime(model, x, threads: int = 1, exact: bool = True,
                    input_name: str = "input", dtype=np.float32) -> dict:
    """Run an ONNX model (``ModelProto`` or path) on float input ``x`` in ONNX Runtime's CPU
    provider; every graph output by name (layers' uint8 tensors are NCHW). ``x`` is given
    to the input ``input_name`` as ``dtype``.

    On x86 CPUs without VNNI, ONNX Runtime's default uint8 x int8 kernels add pairs of
    products in int16 (``vpmaddubsw``), which can saturate; ``exact=True`` sets its
    ``session.x64quantprecision`` option, which runs those layers as uint8 x uint8 instead
    (the same integers, no saturation). On VNNI CPUs and ARM both settings are exact."""
    try:
        import onnxruntime as ort
    except ImportError as err:  # pragma: no cover
        raise ImportError("running ONNX models needs onnxruntime: pip install "
                          "'qkit[onnx]'") from err
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    opts.log_severity_level = 3  # errors only: not the optimizer's notes on unused constants
    if exact:
        opts.add_session_config_entry("session.x64quantprecision", "1")
    data = str(model) if isinstance(model, str) or hasattr(model, "__fspath__") else \
        model.SerializeToString()
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {input_name: np.asarray(x, dtype)}),
                    strict=True))
