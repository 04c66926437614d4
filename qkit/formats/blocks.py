"""Block formats: a few bits per element plus one shared scale per block.

OCP Microscaling (MX) v1.0: blocks of 32 elements share an E8M0 scale 2^X, where
``X = floor(log2(amax of the block)) - emax`` and ``emax`` is the exponent of the element
format's largest binade (E4M3 8, E5M2 15, E2M3 2, E3M2 4, E2M1 2, INT8 0). Each element is
``x / 2^X`` rounded to nearest (ties to even) and *saturated* to the element's max: with
this X the block max lands in [2^emax, 2^(emax+1)), above the element max for FP4/FP6/FP8,
so the largest values are clipped a little (at most 25 % for E2M1: 7.99 -> 6) rather than
overflowing. MXINT8's elements are int8 with an implicit 2^-6 (1.111111b = 127/64 at most);
qkit clamps them to +-127, a symmetric grid (the spec's range also has -128 = -2.0, which
this rule never needs).

NVFP4 (NVIDIA): blocks of 16 E2M1 elements, an E4M3 scale per block and one float32 scale per
tensor. The tensor scale is ``amax(x) / (6 * 448)`` so that every block scale
``amax(block) / 6 / tensor_scale`` fits E4M3; the block scale is rounded to E4M3 (ties to
even, saturating), and the elements are ``x / (block_scale * tensor_scale)`` rounded to E2M1.

These formats run natively only on recent accelerators (NVIDIA Blackwell, AMD MI355); on a
CPU qkit emulates them exactly: the codes and scales are the ones the hardware would hold,
the arithmetic on them is float64 (or the integer kernel `qkit.kernels.gemm_mxfp4`).

>>> t = quantize(np.array([0.1, -0.7, 2.5, 11.0] + [0.0] * 28, np.float32), "mxfp4")
>>> int(t.scales[0]) - 127, t.dequantize()[:4].tolist()  # 11 -> 2^(3 - 2): elements x / 2
(1, [0.0, -1.0, 2.0, 12.0])
>>> round(t.bits_per_element, 2)
4.25
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkit import kernels
from qkit import reference as _reference
from qkit.core.checks import check_float_array
from qkit.formats import floats


@dataclass(frozen=True)
class BlockFormat:
    name: str
    element: str  # a qkit.formats.floats name, or "int8"
    block: int
    scale: str  # "e8m0" (MX) or "e4m3" (NVFP4, plus one float32 per tensor)

    @property
    def element_bits(self) -> int:
        return 8 if self.element == "int8" else floats.FORMATS[self.element].bits

    @property
    def element_max(self) -> float:
        return 127 / 64 if self.element == "int8" else floats.FORMATS[self.element].max

    @property
    def emax(self) -> int:
        return 0 if self.element == "int8" else floats.FORMATS[self.element].emax

    @property
    def bits_per_element(self) -> float:
        """Element bits plus the block scale's share (NVFP4's tensor scale not counted)."""
        return self.element_bits + 8 / self.block


BLOCK_FORMATS = {f.name: f for f in (
    BlockFormat("mxfp8_e4m3", "fp8_e4m3", 32, "e8m0"),
    BlockFormat("mxfp8_e5m2", "fp8_e5m2", 32, "e8m0"),
    BlockFormat("mxfp6_e2m3", "fp6_e2m3", 32, "e8m0"),
    BlockFormat("mxfp6_e3m2", "fp6_e3m2", 32, "e8m0"),
    BlockFormat("mxfp4", "fp4_e2m1", 32, "e8m0"),
    BlockFormat("mxint8", "int8", 32, "e8m0"),
    BlockFormat("nvfp4", "fp4_e2m1", 16, "e4m3"),
)}


def get_block_format(fmt) -> BlockFormat:
    if isinstance(fmt, BlockFormat):
        return fmt
    if isinstance(fmt, str) and fmt in BLOCK_FORMATS:
        return BLOCK_FORMATS[fmt]
    raise ValueError(f"fmt must be one of {', '.join(BLOCK_FORMATS)}; got {fmt!r}")


def shared_exponent(amax, element: str = "fp4_e2m1") -> np.ndarray:
    """MX's X = floor(log2(amax)) - emax(element), within E8M0's -127..127 (amax 0 -> -127)."""
    amax = np.asarray(amax, np.float64)
    emax = 0 if element == "int8" else floats.FORMATS[element].emax
    _, e = np.frexp(amax)  # amax = m * 2^e with m in [0.5, 1): floor(log2 amax) = e - 1
    x = np.where(amax > 0, e.astype(np.int64) - 1 - emax, -127)
    return np.clip(x, -127, 127)


def encode_elements(v, element: str) -> np.ndarray:
    """Element codes of already-scaled values, rounded to nearest even and saturated."""
    if element == "int8":
        return np.clip(np.rint(np.asarray(v, np.float64) * 64), -127, 127).astype(np.int8)
    return floats.encode(v, element, saturate=True)


def decode_elements(codes, element: str) -> np.ndarray:
    if element == "int8":
        return codes.astype(np.float64) / 64
    return floats.decode(codes, element).astype(np.float64)


@dataclass
class BlockTensor:
    """A tensor in a block format: element codes (..., blocks, block) with ``axis`` moved last
    and zero padding to whole blocks, one scale code per block, NVFP4's tensor scale."""

    fmt: BlockFormat
    codes: np.ndarray  # uint8 (int8 for MXINT8)
    scales: np.ndarray  # uint8 codes: E8M0 or E4M3
    tensor_scale: float
    shape: tuple
    axis: int

    def scale_values(self) -> np.ndarray:
        """The scale of each block as a float64 (NVFP4: block scale x tensor scale)."""
        if self.fmt.scale == "e8m0":
            return np.ldexp(1.0, self.scales.astype(np.int64) - 127)
        return floats.decode(self.scales, "fp8_e4m3").astype(np.float64) * self.tensor_scale

    def dequantize(self) -> np.ndarray:
        v = decode_elements(self.codes, self.fmt.element) * self.scale_values()[..., None]
        v = v.reshape(v.shape[:-2] + (-1,))[..., : self.shape[self.axis]]
        return np.moveaxis(v, -1, self.axis).astype(np.float32)

    @property
    def nbytes(self) -> int:
        """Bytes as stored: packed elements, one byte per block scale, NVFP4's float32."""
        n = -(-self.codes.size * self.fmt.element_bits // 8)
        return n + self.scales.size + (4 if self.fmt.scale == "e4m3" else 0)

    @property
    def bits_per_element(self) -> float:
        return 8 * self.nbytes / int(np.prod(self.shape))

    def element_bytes(self) -> np.ndarray:
        """The element codes packed as the format stores them (FP4 two per byte, low nibble
        first; FP6 four in three bytes)."""
        return pack_codes(self.codes.view(np.uint8), self.fmt.element_bits)


def _check_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array of {ndim} dimension(s)")
    return int(axis) % ndim


def _blocks(x: np.ndarray, axis: int, block: int) -> np.ndarray:
    v = np.moveaxis(x, axis, -1).astype(np.float64)
    pad = (-v.shape[-1]) % block
    if pad:
        v = np.concatenate([v, np.zeros(v.shape[:-1] + (pad,))], axis=-1)
    return v.reshape(v.shape[:-1] + (-1, block))


def quantize(x, fmt, *, axis: int = -1) -> BlockTensor:
    """``x`` (float, no NaN/Inf) in a block format, blocks running along ``axis`` (for a
    linear layer's weight and input: the reduction axis, the last one)."""
    f = get_block_format(fmt)
    x = check_float_array(x)
    if x.ndim == 0:
        x = x.reshape(1)
    axis = _check_axis(axis, x.ndim)
    b = _blocks(x, axis, f.block)
    amax = np.abs(b).max(axis=-1)
    if f.scale == "e8m0":
        e = shared_exponent(amax, f.element)
        codes = encode_elements(np.ldexp(b, -e[..., None]), f.element)
        return BlockTensor(f, codes, (e + 127).astype(np.uint8), 1.0, x.shape, axis)
    top = float(amax.max())
    tensor_scale = float(np.float32(top / (6 * 448))) if top > 0 else 1.0
    scales = floats.encode(amax / 6 / tensor_scale, "fp8_e4m3", saturate=True)
    d = floats.decode(scales, "fp8_e4m3").astype(np.float64) * tensor_scale
    safe = np.where(d > 0, d, 1.0)[..., None]
    codes = np.where(d[..., None] > 0, encode_elements(b / safe, f.element), 0)
    return BlockTensor(f, codes.astype(np.uint8), scales, tensor_scale, x.shape, axis)


def round_to_block_format(x, fmt, *, axis: int = -1) -> np.ndarray:
    """Quantize and dequantize: the values the block format stands for, float32."""
    x = np.asarray(x)
    out = quantize(x, fmt, axis=axis).dequantize()
    return out.reshape(x.shape)


def quantize_one_block(values, fmt) -> tuple[int, np.ndarray]:
    """The readable rule on one block (plain Python): ``(scale code, element codes)``.

    Used by the tests against the vectorized `quantize`; spells the spec out step by step."""
    f = get_block_format(fmt)
    values = [float(v) for v in values]
    amax = max(abs(v) for v in values)
    if f.scale == "e8m0":
        x = int(shared_exponent(amax, f.element))
        return x + 127, encode_elements([v / 2.0 ** x for v in values], f.element)
    raise ValueError("quantize_one_block spells out the MX rule; NVFP4 needs the tensor's amax")


def pack_codes(codes, bits: int) -> np.ndarray:
    """Pack ``bits``-bit codes (uint8) into bytes, first code in the lowest bits."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        raise TypeError(f"codes must be uint8, got {codes.dtype}")
    if bits not in (4, 6, 8):
        raise ValueError(f"bits must be 4, 6 or 8, got {bits!r}")
    flat = codes.reshape(-1)
    if flat.size and int(flat.max()) >= 2 ** bits:
        raise ValueError(f"codes must be below 2^{bits}; got {int(flat.max())}")
    if bits == 8:
        return flat.copy()
    bitstream = np.unpackbits(flat[:, None], axis=1, bitorder="little")[:, :bits]
    return np.packbits(bitstream.reshape(-1), bitorder="little")


def unpack_codes(packed, bits: int, count: int) -> np.ndarray:
    """The first ``count`` ``bits``-bit codes of ``packed`` (inverse of `pack_codes`)."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8:
        raise TypeError(f"packed must be uint8, got {packed.dtype}")
    if bits not in (4, 6, 8):
        raise ValueError(f"bits must be 4, 6 or 8, got {bits!r}")
    if count < 0 or count * bits > packed.size * 8:
        raise ValueError(f"count {count} needs {count * bits} bits; packed has "
                         f"{packed.size * 8}")
    if bits == 8:
        return packed[:count].copy()
    stream = np.unpackbits(packed, bitorder="little")[: count * bits].reshape(count, bits)
    return np.packbits(stream, axis=1, bitorder="little").reshape(-1)


def mxfp4_matmul(a: BlockTensor, w: BlockTensor, *, reference: bool = False) -> np.ndarray:
    """``a @ w.T`` of two 2-D MXFP4 tensors blocked along their last axis, on the integer
    kernel `qkit.kernels.gemm_mxfp4` (float64; equal to multiplying the dequantized values,
    up to the float64 rounding of the sum over blocks)."""
    for name, t in (("a", a), ("w", w)):
        if not isinstance(t, BlockTensor) or t.fmt.name != "mxfp4":
            raise TypeError(f"{name} must be an MXFP4 BlockTensor (quantize(x, 'mxfp4'))")
        if len(t.shape) != 2 or t.axis != 1:
            raise ValueError(f"{name} must be 2-D and blocked along its last axis; got shape "
                             f"{t.shape}, axis {t.axis}")
    if a.shape[1] != w.shape[1]:
        raise ValueError(f"a has {a.shape[1]} columns but w has {w.shape[1]}")
    impl = _reference if reference else kernels
    return impl.gemm_mxfp4(a.codes, a.scales, w.codes, w.scales)
