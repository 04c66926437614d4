"""numba kernels: the fast twins of `qkit.reference`, same names, same signatures.

Kernels are module-level ``@njit(cache=True)`` functions (so the on-disk
cache works), never ``fastmath`` (it would break bit-exact requantization).
Set ``NUMBA_DISABLE_JIT=1`` to run them as plain Python.
"""

from qkit.kernels.blockdot import (
    block_dot,
    block_dot_packed,
    block_dot_q8,
    block_dot_q8_packed,
    pack_blocks,
    pack_q8,
    quantize_q8_blocks,
)
from qkit.kernels.conv import conv2d
from qkit.kernels.elementwise import lut, qmul
from qkit.kernels.floats import encode_e8m0, encode_float
from qkit.kernels.gemm import (
    gemm,
    gemm_codebook,
    gemm_int4,
    gemm_packed,
    gemm_pairs16,
    pack_weights_int4,
)
from qkit.kernels.hadamard import fwht
from qkit.kernels.int4 import pack_int4, unpack_int4
from qkit.kernels.linear import pack_weights, qlinear
from qkit.kernels.mx import gemm_mxfp4
from qkit.kernels.pooling import avgpool2d, maxpool2d, qadd, relu
from qkit.kernels.qconv import pack_conv, qconv2d
from qkit.kernels.quantization import dequantize, fake_quantize, quantize
from qkit.kernels.requantization import requantize_fixed, requantize_float
from qkit.kernels.spatial import pad2d, upsample2d
from qkit.kernels.warm import warmup

__all__ = [
    "block_dot", "block_dot_q8", "quantize_q8_blocks",
    "avgpool2d", "maxpool2d", "qadd", "relu", "lut", "qmul", "pad2d", "upsample2d",
    "encode_e8m0", "encode_float", "fwht", "gemm_mxfp4",
    "conv2d", "dequantize", "fake_quantize", "gemm", "gemm_codebook", "gemm_int4",
    "gemm_pairs16", "pack_int4", "qconv2d", "qlinear", "quantize", "requantize_fixed",
    "requantize_float", "unpack_int4", "warmup",
    # layout helpers without a reference twin: gemm_packed(a, pack_weights(w)) == gemm(a, w),
    # qconv2d(x, pack_conv(w), ...) == qconv2d(x, w, ...)
    "gemm_packed", "pack_conv", "pack_weights", "pack_weights_int4", "block_dot_packed",
    "pack_blocks", "block_dot_q8_packed", "pack_q8",
]
