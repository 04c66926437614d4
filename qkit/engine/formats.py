"""Low-bit float and block formats as engine schemes, *fake-quantized*: weights and the input of
every conv/linear are rounded to the format (`qkit.formats`), and the arithmetic is float32.

No CPU computes FP8, MX or NVFP4 natively; what this measures is the accuracy those formats
give a real model, not their speed (an emulated forward is slower than fp32, and every row
says "fake-quant" in its engine column). Sizes are the formats' stored bytes: elements at
their bit width plus every scale (one E8M0 or E4M3 byte per block, NVFP4's float32 per
tensor, FP8's float32 per output channel), and float32 biases.

Blocks run along the reduction axis: a conv weight's ``C * kh * kw`` inputs of each output
channel (a depthwise conv: its ``kh * kw`` taps) and an activation's channels. FP8 elements
alone get a float32 scale (per output channel for weights, per tensor and per call for
activations) mapping the largest |value| to the format's max. ``rotate`` multiplies the
channels of every conv (groups = 1) and linear input by a random Hadamard rotation and folds
it into the weights (`qkit.formats.rotation`): the float model is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkit.core.checks import check_float_array
from qkit.formats import blocks, floats


@dataclass(frozen=True)
class FormatScheme:
    weights: str | None  # a floats element (with a float32 scale), a block format, None: fp32
    activations: str | None = None  # the same choices; None keeps activations float
    rotate: bool = False

    def __post_init__(self):
        for name in ("weights", "activations"):
            value = getattr(self, name)
            if value is None:
                continue
            if value not in FORMAT_NAMES:
                raise ValueError(f"{name} must be one of {sorted(FORMAT_NAMES)}, got {value!r}")
        if not isinstance(self.rotate, bool):
            raise TypeError(f"rotate must be True or False, got {self.rotate!r}")

    @property
    def label(self) -> str:
        rot = " + Hadamard rotation" if self.rotate else ""
        return f"W {self.weights or 'fp32'} / A {self.activations or 'fp32'}{rot}"


ELEMENTS = ("fp8_e4m3", "fp8_e5m2")
FORMAT_NAMES = set(ELEMENTS) | set(blocks.BLOCK_FORMATS)

FORMAT_SCHEMES = {
    "fp8-e4m3": FormatScheme("fp8_e4m3", "fp8_e4m3"),
    "fp8-e5m2": FormatScheme("fp8_e5m2", "fp8_e5m2"),
    "mxfp8-e4m3": FormatScheme("mxfp8_e4m3", "mxfp8_e4m3"),
    "mxfp6-e2m3": FormatScheme("mxfp6_e2m3", "mxfp6_e2m3"),
    "w-mxfp4-a-mxfp8": FormatScheme("mxfp4", "mxfp8_e4m3"),
    "mxfp4": FormatScheme("mxfp4", "mxfp4"),
    "mxfp4-rotated": FormatScheme("mxfp4", "mxfp4", rotate=True),
    "nvfp4": FormatScheme("nvfp4", "nvfp4"),
    "nvfp4-rotated": FormatScheme("nvfp4", "nvfp4", rotate=True),
}


def _scaled_element(x: np.ndarray, fmt: str, axis) -> np.ndarray:
    top = np.abs(x).max(axis=axis, keepdims=axis is not None)
    s = np.where(top > 0, top / floats.get_format(fmt).max, 1.0).astype(np.float32)
    return (floats.round_to_format(x / s, fmt) * s).astype(np.float32)


def _check_format(fmt, name: str) -> None:
    if fmt not in FORMAT_NAMES:
        raise ValueError(f"{name} must be one of {sorted(FORMAT_NAMES)}, got {fmt!r}")


def _weight(w) -> np.ndarray:
    w = check_float_array(w, "w")
    if w.ndim < 2:
        raise ValueError(f"w must be a weight (N, ...) with at least 2 axes, got shape {w.shape}")
    return w


def round_weight(w, fmt: str) -> np.ndarray:
    """A weight (N, ...) rounded to ``fmt`` along its reduction axis, same shape, float32."""
    w = _weight(w)
    _check_format(fmt, "fmt")
    rows = w.reshape(w.shape[0], -1)
    if fmt in ELEMENTS:
        return _scaled_element(rows, fmt, 1).reshape(w.shape)
    return blocks.round_to_block_format(rows, fmt, axis=-1).reshape(w.shape)


def weight_bytes(w, fmt: str) -> int:
    """Stored bytes of ``w`` in ``fmt``, scales included."""
    w = _weight(w)
    _check_format(fmt, "fmt")
    rows = w.reshape(w.shape[0], -1)
    if fmt in ELEMENTS:
        return rows.size + 4 * rows.shape[0]
    return blocks.quantize(rows, fmt).nbytes


def round_activation(x, fmt: str, axis: int = -1) -> np.ndarray:
    """Activations rounded to ``fmt``: blocks along ``axis`` (the channels), or FP8 elements
    with one float32 scale for the whole tensor."""
    x = check_float_array(x)
    _check_format(fmt, "fmt")
    if fmt in ELEMENTS:
        return _scaled_element(x, fmt, None)
    return blocks.round_to_block_format(x, fmt, axis=axis)


class FormatModel:
    """A traced CNN (`qkit.engine.graph.trace`, BN folded) run in float with its conv/linear
    weights and inputs rounded to the formats of ``scheme``. Call it on NCHW inputs: logits as
    a NumPy array, like `qkit.engine.IntegerModel`."""

    def __init__(self, model, scheme: FormatScheme, seed: int = 0):
        from qkit.engine.graph import trace
        from qkit.formats.rotation import random_hadamard

        if not isinstance(scheme, FormatScheme):
            raise TypeError(f"scheme must be a FormatScheme, got {type(scheme).__name__}")
        self.scheme = scheme
        self.ops, _ = trace(model)
        self.weights, self.rotations, self._bytes = {}, {}, 0
        for i, op in enumerate(self.ops):
            if op.kind not in ("conv", "linear"):
                continue
            w = op.params["weight"].astype(np.float64)
            if scheme.rotate and op.params.get("groups", 1) == 1:
                r = random_hadamard(w.shape[1], seed + i)
                self.rotations[op.name] = r  # W Q along the input channels, for every tap
                w = np.moveaxis(r.apply(np.moveaxis(w, 1, -1)), -1, 1)
            w = w.astype(np.float32)
            fmt = scheme.weights
            self.weights[op.name] = round_weight(w, fmt) if fmt else w
            self._bytes += (weight_bytes(w, fmt) if fmt else 4 * w.size) + 4 * op.params[
                "bias"].size

    def _layer(self, op, x):
        import torch
        from torch.nn import functional as F

        xa = x.numpy()
        if op.name in self.rotations:
            xa = np.moveaxis(self.rotations[op.name].apply(np.moveaxis(xa, 1, -1)), -1, 1)
        if self.scheme.activations is not None:
            xa = round_activation(xa, self.scheme.activations, axis=1)
        xt = torch.from_numpy(np.ascontiguousarray(xa, np.float32))
        w, p = torch.from_numpy(self.weights[op.name]), op.params
        b = torch.from_numpy(p["bias"])
        if op.kind == "conv":
            return F.conv2d(xt, w, b, p["stride"], p["padding"], p["dilation"], p["groups"])
        return F.linear(xt, w, b)

    def to_onnx(self, path=None, all_outputs: bool = False):
        raise NotImplementedError(
            "a FormatModel computes the formats' values in float32 (fake quantization); only an "
            "IntegerModel (IntegerModel.from_float) is written as ONNX")

    def __call__(self, x) -> np.ndarray:
        import torch

        from qkit.engine.floatrun import run_graph

        with torch.no_grad():
            vals = run_graph(self.ops, x, self._layer)
        return vals[self.ops[-1].name].numpy()

    def size_bytes(self) -> int:
        return self._bytes
