"""What PyTorch's quantized CPU engine (fbgemm) computes, rebuilt from qkit's kernels.

`FbgemmLayer` holds a quantized Linear or Conv2d as plain NumPy arrays and
runs it with qkit's integer kernels and fbgemm's float32 requantization, so
that every uint8 output equals PyTorch's (docs/semantics.md, "PyTorch's quantized Linear")::

    acc[m,n]  = sum_k x[m,k] * w[n,k]                       (int32; see `accumulation`)
    raw       = acc - zx*(sum_k w[n,k] - zw[n]*K) - zw[n]*sum_k x[m,k]
    atws[n]   = f32(sx * sw[n]);   mult[n] = f32(atws[n] / sy)
    bias_q[n] = f32(bias[n] / atws[n])        (per-tensor: bias * f32(1.0 / (double)atws))
    y         = clamp(rne(f32(f32(raw) + bias_q) * mult) + zy, zy if relu else 0, 255)

On CPUs without VNNI, fbgemm multiplies with AVX2 ``vpmaddubsw``, which adds
each pair of u8*s8 products into a *saturating* int16 (`qkit.kernels.gemm_pairs16`);
with VNNI the int32 sum is exact. Conv2d pairs follow the NHWC im2col order (kh, kw, c).

qkit never needs torch for this module: `from_torch` only reads a torch
module's parameters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from qkit import kernels
from qkit.core.checks import check_conv2d, check_float_array, check_int_array
from qkit.kernels.conv import im2col

ACCUMULATIONS = ("exact", "pairs16")
OVERFLOWS = ("saturate", "wrap")
INT32_LIMIT = np.float32(2.0**31)  # the first float32 that cvtps2dq cannot convert


# --- quantize_per_tensor / per_channel, exactly as torch 2.13.0+cpu ------------------------


def _fma32(x: np.ndarray, inv: np.float32, zp: int) -> np.ndarray:
    """``float32(x * inv + zp)`` rounded once, as a fused multiply-add does.

    ``x * inv`` is exact in float64; the float64 sum ``s`` and its exact
    error (TwoSum) decide the float32 rounding, including the rare case
    where ``s`` lands exactly halfway between two float32 numbers.
    """
    p = x.astype(np.float64) * np.float64(inv)  # exact: 24 + 24 bits
    s = p + zp
    bv = s - zp
    err = (p - bv) + (zp - (s - bv))  # s + err == p + zp exactly
    f = s.astype(np.float32)
    back = f.astype(np.float64)
    tie = np.abs(s - back) == np.spacing(np.abs(f)).astype(np.float64) / 2
    up, down = np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))
    nearer = np.where(err > 0, np.where(back > s, f, up), np.where(back < s, f, down))
    return np.where(tie & (err != 0), nearer, f).astype(np.float32)


def quantize_per_tensor_torch(x, scale: float, zero_point: int, qmin: int, qmax: int):
    """torch 2.13.0+cpu ``quantize_per_tensor``: ``clamp(rne(fma(x, 1.0f/scale, zp)))``.

    Differs from the textbook ``round(x / scale) + zp`` at some .5 ties with an
    odd zero point and in rare 1-ulp cases; earlier torch versions computed
    ``zp + rne(x * inv)``. The parity tests check this rule against the installed torch.

    >>> quantize_per_tensor_torch(np.array([0.25, 0.75], np.float32), 0.5, 1, 0, 255)
    array([2, 2], dtype=uint8)

    (the textbook rule gives ``[2, 3]``: ``rne(1.5) + 1 = 3`` but ``rne(1.5 + 1) = 2``).
    """
    x = check_float_array(x)
    inv = np.float32(1.0) / np.float32(scale)
    q = np.rint(_fma32(x, inv, int(zero_point)))
    return np.clip(q, qmin, qmax).astype(np.uint8 if qmin >= 0 else np.int8)


def quantize_per_channel_torch(x, scales, zero_points, axis: int, qmin: int, qmax: int):
    """torch 2.13.0+cpu ``quantize_per_channel``: ``clamp(rne(f32(f32(x * inv) + zp)))``.

    Two float32 roundings (not a fused multiply-add): measured, not assumed.
    """
    x = check_float_array(x)
    shape = [1] * x.ndim
    shape[axis] = -1
    inv = (np.float32(1.0) / np.asarray(scales, np.float32)).reshape(shape)
    zp = np.asarray(zero_points, np.float32).reshape(shape)
    q = np.rint((x * inv).astype(np.float32) + zp)
    return np.clip(q, qmin, qmax).astype(np.uint8 if qmin >= 0 else np.int8)


# --- the layer ------------------------------------------------------------------------------


@dataclass
class FbgemmLayer:
    """A quantized Linear (``w`` (N,K)) or Conv2d (``w`` (O,KH,KW,C/groups)) as fbgemm runs it."""

    w: np.ndarray  # int8
    w_scale: np.ndarray  # float32, (1,) per-tensor or (N,) per-channel
    w_zero_point: np.ndarray  # int32, like w_scale
    out_scale: float
    out_zero_point: int
    bias: np.ndarray | None = None  # float32 (N,)
    relu: bool = False
    conv: dict = field(default_factory=dict)  # stride, padding, dilation, groups (Conv2d only)
    engine: str = "fbgemm"  # torch.backends.quantized.engine the module runs on
    # (w, its packing), made on the first call; w is not written in place once packed
    _packed: tuple | None = field(default=None, init=False, repr=False)
    _bound: dict = field(default_factory=dict, init=False, repr=False)  # calls, bound

    def _bound_key(self, x_q, x_scale, x_zero_point) -> tuple:
        """What a bound call depends on besides the weights: the input's shape and grid and
        the layer's own fields (so that editing one of them can never meet a stale binding)."""
        return (x_q.shape, float(x_scale), int(x_zero_point), float(self.out_scale),
                int(self.out_zero_point), bool(self.relu), self.w_scale.tobytes(),
                None if self.bias is None else self.bias.tobytes(), str(self.conv))

    @property
    def per_channel(self) -> bool:
        return self.w_scale.size > 1

    def fbgemm_depthwise(self) -> bool:
        """Whether fbgemm runs this layer on its specialised depthwise kernel: a 3x3 or 5x5
        depthwise conv (one input channel per group) over a multiple of 8 channels, channel
        multiplier 1 or 2, stride 1 or 2, "same" padding ((k - 1) / 2) and no dilation."""
        c = self.conv
        if not c or self.w.shape[3] != 1 or c["groups"] % 8:
            return False
        kh, kw = self.w.shape[1:3]
        return (kh == kw and kh in (3, 5) and self.w.shape[0] // c["groups"] in (1, 2)
                and all(s in (1, 2) for s in c["stride"]) and tuple(c["dilation"]) == (1, 1)
                and all(p == (kh - 1) // 2 for p in c["padding"]))

    def accumulation(self) -> str:
        """How PyTorch sums this layer on this CPU: the accumulation is a property of the
        layer's path, not only of the CPU (docs/semantics.md, "accumulation"). With VNNI,
        fbgemm's depthwise kernel still sums saturating int16 pairs and the rest is exact;
        the ``x86`` engine runs convs on oneDNN there, exact. Without VNNI every path sums
        pairs (`default_accumulation`)."""
        cpu = default_accumulation()
        if cpu == "exact" and self.engine == "fbgemm" and self.fbgemm_depthwise():
            return "pairs16"
        return cpu

    def accumulate(self, x: np.ndarray, accumulation: str, x_zero_point: int) -> np.ndarray:
        """Raw ``sum (x - zx)(w - zw)`` per output, in int32: (M,N) or (N,OH,OW,O)."""
        if accumulation not in ACCUMULATIONS:
            raise ValueError(f"accumulation must be one of {ACCUMULATIONS}, got {accumulation!r}")
        if not self.conv:
            cols, wmat, out_shape = x, self.w, None  # (M,K), (N,K)
        else:
            c = self.conv
            *_, (oh, ow) = check_conv2d(x, self.w, c["stride"], c["padding"], c["dilation"],
                                        c["groups"], x_zero_point, pad_name="x_zero_point")
            out_shape = (x.shape[0], oh, ow, self.w.shape[0])
            cols = _conv_cols(x, self.w, self.conv, x_zero_point)  # (groups, P, K)
            wmat = self.w.reshape(self.w.shape[0], -1)
        acc = _grouped_product(cols, wmat, accumulation, self.conv.get("groups", 1))
        k = wmat.shape[1]
        zw = self.w_zero_point.astype(np.int64)
        col_sum = wmat.astype(np.int64).sum(axis=1)  # (N,)
        raw = acc.astype(np.int64) - x_zero_point * (col_sum - zw * k)
        if zw.any():
            raw -= zw * _row_sums(cols, self.conv.get("groups", 1), wmat.shape[0])
        raw = raw.astype(np.int32)
        return raw if out_shape is None else raw.reshape(out_shape)

    def requant_params(self, x_scale: float):
        """fbgemm's float32 multiplier and bias per output channel (see the module docstring)."""
        atws = (np.float32(x_scale) * self.w_scale).astype(np.float32)
        mult = (atws / np.float32(self.out_scale)).astype(np.float32)
        bias_q = None
        if self.bias is not None:
            if self.per_channel:
                bias_q = (self.bias / atws).astype(np.float32)
            else:
                inv = np.float32(1.0 / np.float64(atws[0]))
                bias_q = (self.bias * inv).astype(np.float32)
        return mult, bias_q

    def __call__(self, x_q, x_scale: float, x_zero_point: int, accumulation: str = "auto",
                 overflow: str = "saturate"):
        """uint8 outputs for uint8 inputs ``x_q`` ((M,K), or (N,H,W,C) for Conv2d).

        With exact accumulation and symmetric weights this is one fused kernel
        (`qkit.kernels.qlinear` / `qconv2d`); otherwise the steps run one by one.

        ``overflow="wrap"`` reproduces what PyTorch does when a requantized value reaches
        2^31 (a tiny output scale): fbgemm's float -> int32 conversion returns INT_MIN, so
        the output lands on its lower clamp (0, or the zero point with a fused ReLU) where
        the formula, and qkit by default, saturates to 255. That is a PyTorch bug, modelled
        only to compare outputs; "saturate" is the arithmetic the formula defines.
        """
        x_q = check_int_array(x_q, "x_q", (np.uint8,), ndim=4 if self.conv else 2)
        if overflow not in OVERFLOWS:
            raise ValueError(f"overflow must be one of {OVERFLOWS}, got {overflow!r}")
        if accumulation == "auto":
            accumulation = self.accumulation()
        exact = (accumulation == "exact" and not self.w_zero_point.any()
                 and overflow == "saturate")
        if exact and self._packed is not None and self._packed[0] is self.w:
            bound = self._bound.get(self._bound_key(x_q, x_scale, x_zero_point))
            if bound is not None:
                return bound(x_q)
        mult, bias_q = self.requant_params(x_scale)
        qmin = self.out_zero_point if self.relu else 0
        if exact:
            if self._packed is None or self._packed[0] is not self.w:  # new weights: repack
                pack = kernels.pack_conv if self.conv else kernels.pack_weights
                self._packed, self._bound = (self.w, pack(self.w)), {}
            # the call bound to this input's shape and grid: the next one skips straight to
            # the kernel (BoundQConv / BoundQLinear in qkit.kernels)
            args = (int(x_zero_point), mult, self.out_zero_point, qmin, 255, bias_q)
            c = self.conv
            conv_args = (c["stride"], c["padding"], c["dilation"], c["groups"]) if c else ()
            bound = self._packed[1].bind(x_q, *args, *conv_args)
            if len(self._bound) >= 8:
                self._bound.clear()
            self._bound[self._bound_key(x_q, x_scale, x_zero_point)] = bound
            return bound(x_q)
        raw = self.accumulate(x_q, accumulation, int(x_zero_point))
        flat = raw.reshape(-1, raw.shape[-1])
        y = kernels.requantize_float(flat, mult, self.out_zero_point, qmin, 255, bias=bias_q)
        if overflow == "wrap":
            scaled = flat.astype(np.float32)
            if bias_q is not None:
                scaled = (scaled + bias_q).astype(np.float32)
            scaled = (scaled * mult).astype(np.float32)
            y[np.abs(scaled) >= INT32_LIMIT] = qmin  # INT_MIN + zero point, then the clamp
        return y.reshape(raw.shape)


def _conv_cols(x, w, conv, x_zero_point):
    """(groups, N*OH*OW, KH*KW*C/groups): the reference's im2col, built by the numba twin."""
    groups = conv["groups"]
    cg = x.shape[3] // groups
    (oh, ow), geometry = _out_size(x, w, conv), np.asarray(
        w.shape[1:3] + conv["stride"] + conv["padding"] + conv["dilation"], np.int64)
    return np.stack([im2col(np.ascontiguousarray(x[..., g * cg:(g + 1) * cg]), geometry, oh, ow,
                             int(x_zero_point)) for g in range(groups)])


def _out_size(x, w, conv):
    (sh, sw), (ph, pw), (dh, dw) = conv["stride"], conv["padding"], conv["dilation"]
    return ((x.shape[1] + 2 * ph - dh * (w.shape[1] - 1) - 1) // sh + 1,
            (x.shape[2] + 2 * pw - dw * (w.shape[2] - 1) - 1) // sw + 1)


def _grouped_product(cols, wmat, accumulation, groups):
    product = kernels.gemm if accumulation == "exact" else kernels.gemm_pairs16
    if cols.ndim == 2:
        return product(cols, wmat)
    og = wmat.shape[0] // groups
    acc = np.concatenate([product(cols[g], wmat[g * og:(g + 1) * og]) for g in range(groups)],
                         axis=1)  # (P, O)
    return acc


def _row_sums(cols, groups, n_out):
    if cols.ndim == 2:
        return cols.astype(np.int64).sum(axis=1, keepdims=True)
    og = n_out // groups
    return np.repeat(cols.astype(np.int64).sum(axis=2).T, og, axis=1)  # (P, O)


# --- which accumulation this CPU's fbgemm uses ----------------------------------------------


@lru_cache(maxsize=1)
def default_accumulation() -> str:
    """``"exact"`` where fbgemm uses VNNI (``vpdpbusd``), else ``"pairs16"`` (AVX2 ``vpmaddubsw``).

    Follows fbgemm's own switch: ``FBGEMM_ENABLE_INSTRUCTIONS`` (``AVX2``,
    ``AVX512``, ``AVX512_E1``...; E1 is the VNNI level) when set, else the CPU flags.
    """
    forced = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS")
    if forced:
        return "exact" if "E1" in forced.upper() else "pairs16"
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return "pairs16"
    return "exact" if "avx512_vnni" in flags else "pairs16"


def from_torch(module, engine: str | None = None) -> FbgemmLayer:
    """Read a ``torch.ao.nn.quantized`` Linear/Conv2d (optionally with fused ReLU) that runs
    on ``engine`` (default: torch's current ``torch.backends.quantized.engine``)."""
    import torch

    name = type(module).__name__
    if ".dynamic" in type(module).__module__:
        raise TypeError(f"from_torch reads static quantized layers; {name} from "
                        f"{type(module).__module__} is dynamic (its activations are quantized "
                        "per call and its output is float, so it has no output scale or zero "
                        "point): run dynamic quantization with qkit.engine.dynamic.DynamicModel")
    quantized = ".quantized" in type(module).__module__
    if not quantized or name not in ("Linear", "LinearReLU", "Conv2d", "ConvReLU2d"):
        raise TypeError(f"from_torch reads quantized Linear/Conv2d (+ReLU) modules, got {name}")
    wq = module.weight()
    if wq.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        w_scale = np.array([wq.q_scale()], np.float32)
        w_zp = np.array([wq.q_zero_point()], np.int32)
    else:
        w_scale = wq.q_per_channel_scales().numpy().astype(np.float32)
        w_zp = wq.q_per_channel_zero_points().numpy().astype(np.int32)
    w = wq.int_repr().numpy()
    bias = module.bias()
    bias = None if bias is None else bias.detach().numpy().astype(np.float32)
    conv = {}
    if name.startswith("Conv"):
        if module.padding_mode != "zeros":
            raise ValueError(f"padding_mode {module.padding_mode!r} is not supported")
        w = np.ascontiguousarray(w.transpose(0, 2, 3, 1))  # (O,C/g,KH,KW) -> (O,KH,KW,C/g)
        conv = {"stride": tuple(module.stride), "padding": tuple(module.padding),
                "dilation": tuple(module.dilation), "groups": int(module.groups)}
    return FbgemmLayer(w, w_scale, w_zp, float(module.scale), int(module.zero_point), bias,
                       relu=name.endswith("ReLU") or name == "ConvReLU2d", conv=conv,
                       engine=engine or torch.backends.quantized.engine)


def random_torch_linear(k: int = 256, n: int = 64, m: int = 32, seed: int = 0,
                        per_channel: bool = True):
    """A PyTorch quantized Linear with random weights and uint8 inputs over all of [0, 255].

    Returns ``(module, x_q, x_scale, x_zero_point, y_torch)`` with ``y_torch`` PyTorch's uint8
    output; for notebooks and tests (needs ``torch.ao``; PyTorch's deprecation warnings muted).
    """
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch.ao.nn.quantized as nnq

        torch.backends.quantized.engine = "fbgemm"
        rng = np.random.default_rng(seed)
        w = torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32))
        if per_channel:
            wq = torch.quantize_per_channel(w, torch.from_numpy(rng.uniform(0.01, 0.03, n)),
                                            torch.zeros(n, dtype=torch.long), 0, torch.qint8)
        else:
            wq = torch.quantize_per_tensor(w, 0.02, 0, torch.qint8)
        mod = nnq.Linear(k, n)
        mod.set_weight_bias(wq, torch.from_numpy(rng.standard_normal(n).astype(np.float32)))
        mod.scale, mod.zero_point = 0.5, 128
        x_q = rng.integers(0, 256, (m, k)).astype(np.uint8)
        x_scale, x_zp = 0.02, 3
        y = mod(torch._make_per_tensor_quantized_tensor(torch.from_numpy(x_q), x_scale, x_zp))
        return mod, x_q, x_scale, x_zp, y.int_repr().numpy()
