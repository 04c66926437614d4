"""Two more ways to run a CNN with integer weights: dynamic and weight-only quantization.

* `DynamicModel`: int8 per-channel weights, stored once; every conv/linear quantizes its
  float input *per call* (uint8, per-tensor min/max of this batch: no calibration), runs qkit's
  exact integer convolution or GEMM, and returns float ``(acc - z_x sum w) s_x s_w + b``.
  PyTorch offers this for Linear/LSTM only; for a CNN it costs a quantization per layer.
* `WeightOnlyModel`: weights stored as b-bit integers (per output channel), dequantized to
  float for a float computation (W8A16 / W4A16): memory saved, arithmetic unchanged.

Both run the traced, BN-folded graph of `qkit.engine.trace` in NCHW float between layers.
"""

from __future__ import annotations

import numpy as np

from qkit import kernels
from qkit.core.metrics import quantized_bytes
from qkit.core.qparams import QParams, qparams_from_tensor
from qkit.engine import adaround
from qkit.engine.floatrun import run_graph
from qkit.engine.graph import trace


def _weights(op, bits: int, moments=None):
    w = op.params["weight"]
    qp = qparams_from_tensor(w, bits=bits, signed=True, symmetric=True, narrow_range=True, axis=0)
    if moments is not None and op.name in moments:  # adaptive rounding (qkit.engine.adaround)
        w_q = adaround.round_weights(w, qp.scale, moments[op.name], qp.qmin, qp.qmax)
        return w_q.astype(np.int8), qp.scale.astype(np.float32)
    return kernels.quantize(w, qp).astype(np.int8), qp.scale.astype(np.float32)


def quantize_dynamic(x: np.ndarray) -> tuple[np.ndarray, np.float32, int]:
    """uint8 per-tensor quantization from this tensor's own min/max (0 always representable)."""
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = np.float32(max((hi - lo) / 255.0, 1e-8))
    zp = int(np.clip(round(-lo / float(scale)), 0, 255))
    return kernels.quantize(x, QParams(scale, zp, bits=8, signed=False)), scale, zp


class _Graph:
    def __init__(self, model):
        self.ops, self.output = trace(model)

    def _layer(self, op, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def to_onnx(self, path=None, all_outputs: bool = False):
        raise NotImplementedError(
            f"{type(self).__name__} quantizes at run time or keeps float activations; only an "
            "IntegerModel (IntegerModel.from_float, static W8A8 / W4A8) is written as ONNX")

    def __call__(self, x) -> np.ndarray:
        import torch

        with torch.no_grad():
            return run_graph(self.ops, x, self._layer)[self.output].numpy()


class DynamicModel(_Graph):
    """int8 weights, activations quantized at run time, exact integer conv/GEMM per layer."""

    def __init__(self, model, weight_bits: int = 8):
        super().__init__(model)
        self.layers = {}
        for op in self.ops:
            if op.kind in ("conv", "linear"):
                w_q, sw = _weights(op, weight_bits)
                layer = {"w_scale": sw, "bias": op.params["bias"].astype(np.float32),
                         "col_sums": w_q.reshape(w_q.shape[0], -1).astype(np.int64).sum(1),
                         "bits": weight_bits, "size": w_q.size}
                if op.kind == "conv":
                    layer["w_q"] = np.ascontiguousarray(w_q.transpose(0, 2, 3, 1))  # OHWI
                else:
                    layer["packed"] = kernels.pack_weights(w_q)
                self.layers[op.name] = layer

    def _layer(self, op, x):
        import torch

        L = self.layers[op.name]
        xf = x.numpy()
        if op.kind == "conv":
            x_q, sx, zx = quantize_dynamic(np.ascontiguousarray(xf.transpose(0, 2, 3, 1)))
            p = op.params
            acc = kernels.conv2d(x_q, L["w_q"], p["stride"], p["padding"], p["dilation"],
                                 p["groups"], pad_value=zx)  # padding holds the zero point
            # sum over each window of (x_q - zx) w = acc - zx * (sum of that filter's weights)
            y = (acc.astype(np.int64) - zx * L["col_sums"]).astype(np.float32)
            y = y * (sx * L["w_scale"]) + L["bias"]
            return torch.from_numpy(np.ascontiguousarray(y.transpose(0, 3, 1, 2)))
        x_q, sx, zx = quantize_dynamic(xf)
        acc = kernels.gemm_packed(x_q, L["packed"]).astype(np.int64) - zx * L["col_sums"]
        return torch.from_numpy(acc.astype(np.float32) * (sx * L["w_scale"]) + L["bias"])

    def size_bytes(self) -> int:
        return sum(quantized_bytes(L["size"], L["bits"], L["w_scale"].size) + 4 * L["bias"].size
                   for L in self.layers.values())


class WeightOnlyModel(_Graph):
    """Weights stored as ``bits``-bit integers per output channel, computed in float.

    With ``calibration`` images (NCHW) the weights are rounded adaptively
    (`qkit.engine.adaround`) instead of to the nearest grid point.
    """

    def __init__(self, model, bits: int = 8, calibration=None):
        import torch

        super().__init__(model)
        self.bits, self.layers = bits, {}
        moments = None if calibration is None else adaround.collect(self.ops, calibration)
        for op in self.ops:
            if op.kind in ("conv", "linear"):
                w_q, sw = _weights(op, bits, moments)
                w = w_q.astype(np.float32) * sw.reshape(-1, *[1] * (w_q.ndim - 1))
                self.layers[op.name] = {"weight": torch.from_numpy(w), "size": w_q.size,
                                        "scales": sw.size,
                                        "bias": torch.from_numpy(op.params["bias"])}

    def _layer(self, op, x):
        from torch.nn import functional as F

        L, p = self.layers[op.name], op.params
        if op.kind == "conv":
            return F.conv2d(x, L["weight"], L["bias"], p["stride"], p["padding"], p["dilation"],
                            p["groups"])
        return F.linear(x, L["weight"], L["bias"])

    def size_bytes(self) -> int:
        return sum(quantized_bytes(L["size"], self.bits, L["scales"]) + 4 * L["bias"].numel()
                   for L in self.layers.values())
