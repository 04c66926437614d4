"""The fast path on CPUs with AVX-512 VNNI: ``vpdpbusd`` micro-kernels in LLVM IR.

`gemm` (the register-tiled GEMM and its requantizing epilogue), `conv` (direct convolution
without an im2col matrix), `depthwise` (3x3 depthwise with the taps as byte quads), `int4`
(4-bit weights unpacked in registers).
"""
