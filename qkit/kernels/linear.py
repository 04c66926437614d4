"""The quantized linear layer, 8 bits in and out: `qlinear`, and layers bound once.

``y = requantize_float(x @ w.T - x_zero_point * colsum(w), multiplier, ...)``: see
`qkit.reference.qlinear` for the formula. With VNNI the requantization happens in registers
as each tile finishes (`qkit.kernels.vnni.gemm.QGemmVnni`); elsewhere the int32 GEMM runs
first and `requantize_float` after it.
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import (
    centred_bound,
    check_accumulation,
    check_int_array,
    check_qlinear,
    dtype_proves_exact,
    storage_dtype,
)
from qkit.kernels import dispatch
from qkit.kernels.gemm import gemm_no_vnni
from qkit.kernels.packing import PackedWeights
from qkit.kernels.requantization import requantize_float
from qkit.kernels.vnni.gemm import QGemmVnni


class PackedLinear(PackedWeights):
    """`PackedWeights` that can also be bound into a layer: ``pack_weights(w).bind(x, ...)``."""

    def bind(self, x, x_zero_point: int, multiplier, out_zero_point: int, qmin: int, qmax: int,
             bias=None) -> BoundQLinear:
        """`qlinear`'s arguments fixed for inputs shaped like ``x``: see `BoundQLinear`."""
        return BoundQLinear(self, x, (x_zero_point, multiplier, out_zero_point, qmin, qmax,
                                      bias))


def pack_weights(w) -> PackedLinear:
    """Pack int8 weights (N,K) once for `gemm_packed` and `qlinear` (as fbgemm prepacks a
    Linear's weights); ``pack_weights(w).bind(x, ...)`` also fixes `qlinear`'s arguments."""
    w = check_int_array(w, "w", (np.int8,), ndim=2)
    return PackedLinear(w)


class BoundQLinear:
    """`qlinear` with everything but the input fixed: ``bound(x)`` equals
    ``qlinear(x, w, *args)`` for inputs of one shape and dtype (`PackedLinear.bind`). The
    checks and the epilogue's per-column vectors are made once, as for a bound conv
    (`qkit.kernels.qconv.BoundQConv`); where the dtype alone cannot prove the int32 sums
    exact (a very long K), each input's values are still checked."""

    def __init__(self, packed, x, args):
        x_zero_point, multiplier, out_zero_point, qmin, qmax, bias = args
        x, qmin, qmax, mult, bias = check_qlinear(x, (packed.n, packed.k), packed.max_abs,
                                                  x_zero_point, multiplier, out_zero_point,
                                                  qmin=qmin, qmax=qmax, bias=bias)
        self.shape, self.dtype, self._packed, self._args = x.shape, x.dtype, packed, args
        self._recheck = not dtype_proves_exact(x.dtype, x_zero_point, packed.k, packed.max_abs)
        grid = (x_zero_point, mult, bias, out_zero_point, qmin, qmax)
        self._gemm = (QGemmVnni(packed, x.dtype, grid, storage_dtype(qmin, qmax))
                      if dispatch.USE_VNNI else None)

    def __call__(self, x) -> np.ndarray:
        if not (isinstance(x, np.ndarray) and x.shape == self.shape and x.dtype == self.dtype):
            raise ValueError(f"this layer was bound to {self.dtype} inputs of shape "
                             f"{self.shape}; got {getattr(x, 'dtype', type(x).__name__)} "
                             f"{getattr(x, 'shape', '')}: bind it again (PackedLinear.bind)")
        if self._gemm is None:
            return qlinear(x, self._packed, *self._args)
        if self._recheck:
            k, zx, bmax = self._packed.k, self._args[0], self._packed.max_abs
            check_accumulation(k, centred_bound(x, zx, k, bmax), bmax, "(x - x_zero_point) @ w")
        return self._gemm.run(np.ascontiguousarray(x))


def qlinear(x_q, w, x_zero_point: int, multiplier, out_zero_point: int, qmin: int, qmax: int,
            bias=None) -> np.ndarray:
    """A quantized linear layer, 8-bit in and out (see the reference for the formula).

    ``w`` is int8 (N,K) or, for a layer that runs many times, `pack_weights(w)`.
    """
    packed = w if isinstance(w, PackedWeights) else pack_weights(w)
    x_q, qmin, qmax, mult, bias = check_qlinear(x_q, (packed.n, packed.k), packed.max_abs,
                                                x_zero_point, multiplier, out_zero_point,
                                                qmin=qmin, qmax=qmax, bias=bias)
    x_q = np.ascontiguousarray(x_q)
    if dispatch.USE_VNNI:
        grid = (x_zero_point, mult, bias, out_zero_point, qmin, qmax)
        return QGemmVnni(packed, x_q.dtype, grid, storage_dtype(qmin, qmax)).run(x_q)
    raw = gemm_no_vnni(x_q, packed).astype(np.int64)
    raw -= int(x_zero_point) * packed.col_sums.astype(np.int64)
    return requantize_float(raw.astype(np.int32), mult, out_zero_point, qmin, qmax, bias)
