"""An integer-only model: uint8 activations between every layer, int8/int4 weights.

    im = IntegerModel.from_float(torch_model, calibration_images, SCHEMES["w8a8-per-channel"])
    logits = im(images)               # float in, float out, integers in between
    q_out = im.run(im.quantize_input(images))   # integers in, integers out

Activations are per-tensor affine uint8 (scale and zero point from an observer on
calibration data); weights are symmetric narrow-range (zero point 0), per output
channel or per tensor; the bias stays float32 and every layer requantizes as
PyTorch's fbgemm engine does (`qkit.reference.qlinear`). Layouts are NHWC.
``backend`` is `qkit.kernels` (fast) or `qkit.reference` (readable): the tests
check that both give the same integers at every layer.
"""

from __future__ import annotations

import copy

import numpy as np

from qkit import kernels
from qkit.core.checks import check_float_array
from qkit.core.metrics import quantized_bytes
from qkit.core.observers import OBSERVERS
from qkit.core.qparams import QParams, activation_range, qparams_from_range, qparams_from_tensor
from qkit.engine import adaround, elementwise, export, ortmath, qdq, ranges
from qkit.engine.equalize import equalize
from qkit.engine.floatrun import PASS_THROUGH, run_float
from qkit.engine.graph import Op, trace
from qkit.engine.scheme import SCHEMES, Scheme


class IntegerModel:
    """A traced model with integer weights and activation grids, runnable on qkit kernels."""

    def __init__(self, ops: list[Op], output: str, scheme: Scheme):
        self.ops, self.output, self.scheme = ops, output, scheme
        self.act = {}  # op name -> (scale, zero_point) of its uint8 output
        self.layers = {}  # op name -> integer parameters
        self.weight_scales = {}  # op name -> per-channel scales that override the weights' absmax

    @classmethod
    def from_float(cls, model, calibration, scheme: Scheme = SCHEMES["w8a8-per-channel"],
                   batch: int = 256) -> IntegerModel:
        """Trace, fold BN, calibrate activation ranges on ``calibration`` (NCHW), quantize.
        ``scheme`` is a `Scheme` or the name of one in `SCHEMES`."""
        scheme = _scheme(scheme)
        ops, output = trace(model)
        if scheme.equalize:
            equalize(ops)
        im = cls(ops, output, scheme)
        im.calibrate(calibration, batch)
        im.quantize_weights()
        return im

    @classmethod
    def from_onnx(cls, model) -> IntegerModel:
        """A QDQ ONNX model (``ModelProto`` or path, from ONNX Runtime's ``quantize_static``)
        on qkit's kernels with ONNX Runtime's integers: its grids, weights and int32 biases as
        they are, nothing recalibrated (`qkit.engine.qdq`)."""
        return qdq.read(model, cls)

    @classmethod
    def from_learned(cls, ops: list[Op], output: str, calibration, scheme: Scheme,
                     act: dict, weight_scales: dict, batch: int = 256) -> IntegerModel:
        """A model whose grids were learned (quantization-aware training, `qkit.topics.qat`):
        ``act`` maps op names to (scale, zero_point) and ``weight_scales`` to per-channel
        weight scales; the other activations are calibrated with the scheme's observer."""
        im = cls(ops, output, scheme)
        im.calibrate(calibration, batch)
        for name, (scale, zp) in act.items():
            im.act[name] = (np.float32(scale), int(zp))
        for op in ops:  # pass-through ops share their input's grid
            if op.kind in PASS_THROUGH:
                im.act[op.name] = im.act[op.inputs[0]]
        im.weight_scales = dict(weight_scales)
        im.quantize_weights()
        return im

    def calibrate(self, images, batch: int = 256, search_images: int = 256) -> None:
        """Activation grids from the scheme's observer, or with ``observer="loss_aware"`` from
        `qkit.engine.ranges.search` on the first ``search_images`` images (min-max where the
        search has nothing to choose); input moments for adaptive rounding; per-channel means
        for bias correction."""
        if self.scheme.rounding not in ("nearest", "adaptive"):
            raise ValueError(f"rounding must be 'nearest' or 'adaptive', got "
                             f"{self.scheme.rounding!r}")
        loss_aware = self.scheme.observer == "loss_aware"
        if not loss_aware and self.scheme.observer not in OBSERVERS:
            raise ValueError(f"observer must be one of {sorted(OBSERVERS)} or 'loss_aware', got "
                             f"{self.scheme.observer!r}")
        observer = OBSERVERS["minmax" if loss_aware else self.scheme.observer]
        observers = {op.name: observer() for op in self.ops if op.kind not in PASS_THROUGH}
        moments = {op.name: adaround.InputMoments(op) for op in self.ops
                   if self.scheme.rounding == "adaptive" and adaround.supported(op)}
        images = check_float_array(images, "calibration")
        if images.ndim < 2:
            raise ValueError(f"calibration must be a batch of inputs (N, ...), got shape "
                             f"{images.shape}")
        self.shapes, sums, counts = {}, {}, {}
        for i in range(0, len(images), batch):
            try:
                vals = run_float(self.ops, images[i:i + batch], keep=True)
            except RuntimeError as err:  # torch's shape errors name its own internals
                raise ValueError(f"calibration images of shape {images.shape} do not fit the "
                                 f"model (NCHW expected): {err}") from err
            for name, obs in observers.items():
                obs.update(vals[name].numpy())
            for op in self.ops:
                if op.name in moments:
                    moments[op.name].update(vals[op.inputs[0]])
            for k, v in vals.items():  # per-channel means, for bias correction
                self.shapes[k] = tuple(v.shape[1:])
                axes = (0, 2, 3) if v.ndim == 4 else (0,)
                sums[k] = sums.get(k, 0) + v.double().sum(dim=axes).numpy()
                counts[k] = counts.get(k, 0) + v.numel() // v.shape[1]
        self.means = {k: sums[k] / counts[k] for k in sums}
        self.moments = {k: m.matrix for k, m in moments.items()}  # for adaptive rounding
        searched = ranges.search(self.ops, images[:search_images],
                                   loss=self.scheme.range_loss) if loss_aware else {}
        for op in self.ops:
            if op.kind in PASS_THROUGH:
                self.act[op.name] = self.act[op.inputs[0]]
            else:
                lo, hi = searched.get(op.name, (0.0, 0.0))
                qp = (qparams_from_range(np.float32(lo), np.float32(hi), 8, signed=False)
                      if hi > lo else observers[op.name].qparams(bits=8, signed=False))
                self.act[op.name] = (np.float32(qp.scale), int(qp.zero_point))

    def quantize_weights(self) -> None:
        for op in self.ops:
            if op.kind in ("conv", "linear"):
                self.layers[op.name] = self._weights(op)
            elif op.kind == "add":
                (sa, _), (sb, _) = (self.act[i] for i in op.inputs)
                sy = self.act[op.name][0]
                self.layers[op.name] = {"ma": np.float32(sa / sy), "mb": np.float32(sb / sy)}
            elif op.kind in elementwise.KINDS:
                self.layers[op.name] = elementwise.prepare(op, self.act)

    def _weights(self, op: Op) -> dict:
        w = op.params["weight"]
        mean_x = self.means[op.inputs[0]].astype(np.float32)
        bits = self.scheme.bits_for(op.name)
        if op.name in self.weight_scales:
            qp = QParams(np.asarray(self.weight_scales[op.name], np.float32), 0, bits=bits,
                         signed=True, narrow_range=True, axis=0)
        else:
            qp = qparams_from_tensor(w, bits=bits, signed=True, symmetric=True,
                                     narrow_range=True,
                                     axis=0 if self.scheme.per_channel else None)
        if op.name in getattr(self, "moments", {}) and op.name not in self.weight_scales:
            w_q = adaround.round_weights(w, qp.scale, self.moments[op.name], qp.qmin,
                                         qp.qmax).astype(np.int8)
        else:
            w_q = kernels.quantize(w, qp).astype(np.int8)
        w, w_q, mean_x = self._flatten_order(op, w, w_q, mean_x)
        bias = op.params["bias"]
        if self.scheme.bias_correction:
            bias = (bias - _rounding_shift(op, w, w_q, qp.scale, mean_x)).astype(np.float32)
        if op.kind == "conv":
            w_q = np.ascontiguousarray(w_q.transpose(0, 2, 3, 1))  # OIHW -> OHWI
        sw = np.broadcast_to(qp.scale, (w.shape[0],)).astype(np.float32)
        sx = self.act[op.inputs[0]][0]
        sy, zy = self.act[op.name]
        atws = (np.float32(sx) * sw).astype(np.float32)
        qmin, qmax = activation_range(op.activation, sy, zy, 0, 255)
        return {"w_q": w_q, "w_scale": sw, "n_scales": qp.scale.size, "bits": bits,
                "qmin": qmin, "qmax": qmax,
                "mult": (atws / np.float32(sy)).astype(np.float32),
                "bias_q": (bias / atws).astype(np.float32),
                "packed": (kernels.pack_weights(w_q) if op.kind == "linear"
                           else kernels.pack_conv(w_q)),
                # calls bound to an input shape and grid (BoundQConv / BoundQLinear)
                "bound": {}}

    def _flatten_order(self, op: Op, w, w_q, mean_x):
        """A linear layer after a flatten of NHWC maps: its columns (and the input means)
        reordered from the float model's CHW to the engine's HWC."""
        if op.kind == "linear" and len(self.shapes.get(op.inputs[0], ())) == 1:
            src = self._flatten_source(op.inputs[0])
            if src is not None:
                c, h, wd = src
                w, w_q = (v.reshape(v.shape[0], c, h, wd).transpose(0, 2, 3, 1)
                          .reshape(v.shape[0], -1) for v in (w, w_q))
                mean_x = mean_x.reshape(c, h, wd).transpose(1, 2, 0).ravel()
        return w, w_q, mean_x

    def _flatten_source(self, name):
        op = next(o for o in self.ops if o.name == name)
        if op.kind == "flatten":
            shape = self.shapes[op.inputs[0]]
            return shape if len(shape) == 3 else None
        return None

    # --- running ------------------------------------------------------------------------------

    def quantize_input(self, x) -> np.ndarray:
        """Float NCHW (or (N,F)) input -> uint8 NHWC on the input grid."""
        x = np.asarray(x, np.float32)
        if x.ndim == 4:
            x = x.transpose(0, 2, 3, 1)
        scale, zp = self.act[self.ops[0].name]
        return kernels.quantize(np.ascontiguousarray(x), QParams(scale, zp, bits=8, signed=False))

    def run(self, x_q: np.ndarray, backend=kernels, keep: bool = False):
        """Integer forward pass from uint8 NHWC input; the uint8 output (or every output)."""
        self._check_input(x_q)
        vals = {}
        for op in self.ops:
            vals[op.name] = self._step(op, vals, x_q, backend)
        return vals if keep else vals[self.output]

    def _check_input(self, x_q) -> None:
        """``x_q`` must be what `quantize_input` gives: uint8, NHWC with the calibration
        images' channels (any height and width), or (N, F) with their features."""
        if not isinstance(x_q, np.ndarray) or x_q.dtype != np.uint8:
            raise TypeError(f"x_q must be a uint8 array on the input grid (quantize_input "
                            f"gives it), got {getattr(x_q, 'dtype', type(x_q).__name__)}")
        chw = getattr(self, "shapes", {}).get(self.ops[0].name)
        if chw is None:
            return
        if len(chw) == 3 and (x_q.ndim != 4 or x_q.shape[3] != chw[0]):
            raise ValueError(f"x_q must be NHWC with C={chw[0]} (quantize_input turns NCHW "
                             f"images into it), got shape {x_q.shape}")
        if len(chw) == 1 and (x_q.ndim != 2 or x_q.shape[1] != chw[0]):
            raise ValueError(f"x_q must be (N, {chw[0]}), got shape {x_q.shape}")

    def _step(self, op: Op, vals: dict, x_q, b):
        if op.kind == "input":
            return x_q
        x = vals[op.inputs[0]]
        zx = self.act[op.inputs[0]][1]
        zy = self.act[op.name][1]
        if op.kind in ("conv", "linear"):
            L = self.layers[op.name]
            p = op.params
            args = (zx, L["mult"], zy, L["qmin"], L["qmax"], L["bias_q"])
            if op.kind == "conv":
                args += (p["stride"], p["padding"], p["dilation"], p["groups"])
            if b is not kernels:
                f = b.qconv2d if op.kind == "conv" else b.qlinear
                return f(x, L["w_q"], *args)
            # the same call, bound once per input shape and grid: later batches go straight
            # to the kernel (the key holds every argument, so nothing stale is ever reused)
            key = (x.shape, x.dtype.str, zx, zy, L["qmin"], L["qmax"], L["mult"].tobytes(),
                   L["bias_q"].tobytes())
            bound = L["bound"].get(key)
            if bound is None:
                if len(L["bound"]) >= 8:
                    L["bound"].clear()
                bound = L["bound"][key] = L["packed"].bind(x, *args)
            return bound(x)
        if op.kind in elementwise.KINDS:
            return elementwise.step(op, vals, self.act, self.layers[op.name], b)
        if op.kind in ortmath.KINDS:  # read from ONNX: ONNX Runtime's arithmetic (NumPy)
            return ortmath.step(op, vals, self.act)
        if op.kind == "maxpool":
            return b.maxpool2d(x, op.params["kernel"], op.params["stride"])
        if op.kind == "avgpool":
            if op.params.get("global"):
                return b.avgpool2d(x, x.shape[1:3])
            return b.avgpool2d(x, op.params["kernel"], op.params["stride"])
        if op.kind == "flatten":
            return x.reshape(x.shape[0], -1)
        if op.kind == "relu":
            return b.relu(x, zx)
        if op.kind == "add":
            L = self.layers[op.name]
            za, zb = (self.act[i][1] for i in op.inputs)
            qmin, qmax = activation_range(op.activation, self.act[op.name][0], zy, 0, 255)
            return b.qadd(x, za, L["ma"], vals[op.inputs[1]], zb, L["mb"], zy, qmin=qmin,
                          qmax=qmax)
        raise ValueError(f"unknown op kind {op.kind}")

    def dequantize_output(self, q: np.ndarray) -> np.ndarray:
        scale, zp = self.act[self.output]
        return (q.astype(np.int32) - zp).astype(np.float32) * scale

    def __call__(self, x, backend=kernels) -> np.ndarray:
        """Float in, float out; integers in between. Maps come back NCHW, like the input."""
        y = self.dequantize_output(self.run(self.quantize_input(x), backend))
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if y.ndim == 4 else y

    def with_int32_bias(self) -> IntegerModel:
        """A copy whose conv and linear biases are rounded to whole steps of ``s_x * s_w``:
        the int32 bias of ONNX's QLinearConv, which `to_onnx` writes. Its integers equal ONNX
        Runtime's wherever ``|acc + bias| < 2**24`` (float32 holds those integers exactly)."""
        im = copy.copy(self)
        im.layers = {k: dict(L, bias_q=export.int32_bias(L, k).astype(np.float32), bound={})
                     if "bias_q" in L else L for k, L in self.layers.items()}
        return im

    def to_onnx(self, path=None, all_outputs: bool = False):
        """This model as a standard ONNX model (`qkit.engine.export.to_onnx`), saved to
        ``path`` if given; ONNX Runtime computes `with_int32_bias`'s integers with it."""
        return export.to_onnx(self, path, all_outputs)

    def size_bytes(self) -> int:
        """Weights at their bit width, plus float32 scales and biases."""
        total = 0
        for L in self.layers.values():
            if "w_q" in L:
                total += quantized_bytes(L["w_q"].size, L["bits"], L["n_scales"])
                total += 4 * L["bias_q"].size
            total += L.get("lut_bytes", 0)
        return total


def _rounding_shift(op: Op, w, w_q, scale, mean_x) -> np.ndarray:
    """E[W_q x] - E[W x] = (W_q - W) E[x] per output channel: the expected output shift that
    weight rounding causes, which bias correction removes (Nagel et al. 2019; padding and
    ReLU ignored)."""
    err = w_q.astype(np.float32) * scale.reshape(-1, *[1] * (w.ndim - 1)) - w
    if op.kind != "conv":
        return err @ mean_x
    groups = op.params["groups"]
    mx = mean_x.reshape(groups, w.shape[1])  # input channels of each group
    og = w.shape[0] // groups
    return np.einsum("oc,oc->o", err.sum(axis=(2, 3)), np.repeat(mx, og, axis=0))


def _scheme(scheme) -> Scheme:
    if isinstance(scheme, str):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme {scheme!r} is not one of SCHEMES: {sorted(SCHEMES)}")
        return SCHEMES[scheme]
    if not isinstance(scheme, Scheme):
        raise TypeError(f"scheme must be a Scheme or a name in SCHEMES, got "
                        f"{type(scheme).__name__}")
    return scheme
