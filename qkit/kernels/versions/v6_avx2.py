"""Version 6: the AVX2 micro-kernel, what CPUs without VNNI run.

What changed from version 5: no ``vpdpbusd``. AVX2's exact int8 product is ``vpmaddwd``:
both operands widened to int16, 16 products per 256-bit instruction, neighbours added into
8 int32 lanes (|a w| <= 2**14, so every sum is exact). The tile is 6 rows x 16 columns (12
ymm accumulators), the weights packed in pairs of K (`qkit.kernels.packing.pack_pairs`).
Four times fewer products per instruction than version 5: the price of the older ISA. The
code is `qkit.kernels.avx2` (``madd_wd_tile``); its int16-accumulation kernel
(``vpmaddubsw``, where operand ranges prove it exact) is timed by the benchmark.
"""

from __future__ import annotations

import numpy as np

from qkit.kernels.avx2 import gemm_avx2
from qkit.kernels.packing import PackedWeights
from qkit.kernels.simd.cpu import avx2_available

TITLE = "AVX2 vpmaddwd (packed)"


def available() -> bool:
    return avx2_available()


def prepare(a, w):
    packed = PackedWeights(np.ascontiguousarray(w))
    a = np.ascontiguousarray(a)
    return lambda: gemm_avx2(a, packed, "int32")
