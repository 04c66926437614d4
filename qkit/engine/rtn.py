"""Weight-only quantization of a linear layer's matrix: the scheme and round-to-nearest (RTN).

A `WeightScheme` says how the ``(out, in)`` weight of a Linear becomes integers: ``bits``
(2-8), one (scale, zero point) per output row (``group_size=None``, per channel) or per
``group_size`` consecutive inputs of a row (per group, along the reduction axis, as GPTQ,
AWQ and llama.cpp do), symmetric (zero point 0, signed codes) or asymmetric (unsigned codes
and a zero point). RTN is the baseline every method is measured against: min-max parameters
from the weights (the range always includes 0, as in GPTQ's quantizer), then
``q = clip(round(w / scale) + zero_point, qmin, qmax)``, ties to even.

>>> w = np.array([[-1.0, 0.5, 0.25, 2.0]], np.float32)
>>> q = rtn(w, WeightScheme(bits=4, group_size=2))
>>> q.codes.tolist(), q.zero_point.tolist()      # group [0.25, 2] spans [0, 2]: 0.25 -> 2
([[0, 15, 2, 15]], [[10, 0]])
>>> q.dequantize().round(4).tolist()
[[-1.0, 0.5, 0.2667, 2.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkit import reference
from qkit.core.checks import check_float_array
from qkit.core.qparams import QParams, qparams_from_tensor, qrange


@dataclass(frozen=True)
class WeightScheme:
    bits: int = 4
    group_size: int | None = 128
    symmetric: bool = False

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 8:
            raise ValueError(f"bits must be an int in 2..8, got {self.bits!r}")
        g = self.group_size
        if g is not None and (isinstance(g, bool) or not isinstance(g, int) or g < 2):
            raise ValueError(f"group_size must be None (per channel) or an int >= 2, got {g!r}")

    @property
    def qmin_qmax(self) -> tuple[int, int]:
        return qrange(self.bits, signed=self.symmetric)

    def describe(self) -> str:
        g = "per channel" if self.group_size is None else f"g{self.group_size}"
        return f"int{self.bits} {g} {'sym' if self.symmetric else 'asym'}"

    def bits_per_weight(self, n_in: int) -> float:
        """Codes plus a float16 scale (and zero point) per group, as stored."""
        per = (1 if self.symmetric else 2) * 16
        return self.bits + per * self.groups(n_in) / n_in

    def groups(self, n_in: int) -> int:
        return 1 if self.group_size is None else -(-n_in // self.group_size)

    def check_weight(self, w) -> np.ndarray:
        w = check_float_array(w, "w")
        if w.ndim != 2:
            raise ValueError(f"w must be a 2-D (out, in) weight, got shape {w.shape}")
        return w

    def params(self, w: np.ndarray) -> QParams:
        """Min-max (or max-abs) parameters of ``w`` at this scheme's granularity. When
        ``group_size`` does not divide the inputs (576 = 4 x 128 + 64), the last group is
        shorter: it is padded with zeros, which changes nothing as ranges include 0."""
        axis, group = (0, None) if self.group_size is None else (1, self.group_size)
        if group is not None and w.shape[1] % group:
            w = np.pad(w, ((0, 0), (0, self.groups(w.shape[1]) * group - w.shape[1])))
        return qparams_from_tensor(w, self.bits, signed=self.symmetric, symmetric=self.symmetric,
                                   axis=axis, group_size=group)


@dataclass
class QuantizedWeight:
    codes: np.ndarray  # (out, in) int16 codes in [qmin, qmax]
    scale: np.ndarray  # (out, groups) float32
    zero_point: np.ndarray  # (out, groups) int32
    scheme: WeightScheme

    def dequantize(self) -> np.ndarray:
        n = self.codes.shape[1]
        g = self.scheme.group_size or n
        scale = np.repeat(self.scale, g, axis=1)[:, :n]
        zero = np.repeat(self.zero_point, g, axis=1)[:, :n]
        return ((self.codes.astype(np.float32) - zero) * scale).astype(np.float32)


def expand(qp: QParams, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A scheme's parameters as (out, groups) arrays (per channel: one group)."""
    scale = np.asarray(qp.scale, np.float32).reshape(shape[0], -1)
    zero = np.asarray(qp.zero_point, np.int32).reshape(shape[0], -1)
    return scale, zero


def rtn(w, scheme: WeightScheme) -> QuantizedWeight:
    """Round-to-nearest quantization of an (out, in) weight with min-max parameters."""
    w = scheme.check_weight(w)
    qp = scheme.params(w)
    n = w.shape[1]
    padded = np.pad(w, ((0, 0), (0, scheme.groups(n) * (scheme.group_size or n) - n)))
    codes = reference.quantize(padded, qp).astype(np.int16)[:, :n]
    scale, zero = expand(qp, w.shape)
    return QuantizedWeight(codes, scale, zero, scheme)
