"""Plain NumPy references: the obviously-correct version of every integer kernel.

Each function here has a numba twin of the same name and signature in
`qkit.kernels`; the tests assert that both give identical integers.
"""

from qkit.reference.blockdot import block_dot, block_dot_q8, quantize_q8_blocks
from qkit.reference.convolution import conv2d, im2col, qconv2d
from qkit.reference.elementwise import lut, qmul
from qkit.reference.floats import encode_e8m0, encode_float
from qkit.reference.gemms import gemm, gemm_codebook, gemm_int4, gemm_pairs16, qlinear
from qkit.reference.hadamard import fwht
from qkit.reference.int4 import pack_int4, unpack_int4
from qkit.reference.mx import gemm_mxfp4
from qkit.reference.pooling import avgpool2d, maxpool2d, qadd, relu
from qkit.reference.quantization import dequantize, fake_quantize, quantize
from qkit.reference.requantization import requantize_fixed, requantize_float
from qkit.reference.spatial import pad2d, upsample2d

__all__ = [
    "block_dot", "block_dot_q8", "quantize_q8_blocks",
    "avgpool2d", "maxpool2d", "qadd", "relu", "lut", "qmul", "pad2d", "upsample2d",
    "encode_e8m0", "encode_float", "fwht", "gemm_mxfp4",
    "conv2d", "dequantize", "fake_quantize", "gemm", "gemm_codebook", "gemm_int4",
    "gemm_pairs16", "im2col", "pack_int4", "qconv2d", "qlinear", "quantize", "requantize_fixed",
    "requantize_float",
    "unpack_int4",
]
