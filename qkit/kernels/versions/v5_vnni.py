"""Version 5: the VNNI micro-kernel, the tile of version 4 written in LLVM IR.

What changed: the ``ROWS x 32`` tile lives in 16 zmm registers for the whole K loop (8 rows
x 2 halves of 16 int32), and one ``vpdpbusd`` computes a row-half's 64 multiply-adds (the
``for j`` and ``for t`` loops of version 4) in one instruction. Per step of four K values:
two 64-byte weight loads, eight 4-byte broadcasts, sixteen ``vpdpbusd`` — 1024 multiply-adds
from ten loads. The code is `qkit.kernels.vnni.gemm` (``dot_tile`` emits the loop; the
building blocks are `qkit.kernels.simd.ir`); `qkit.reference.simd` is its NumPy model, and
a test checks one IR tile against it. Runs where the CPU has AVX-512 VNNI.
"""

from __future__ import annotations

import numpy as np

from qkit.kernels.packing import PackedWeights
from qkit.kernels.simd.cpu import vnni_available
from qkit.kernels.vnni.gemm import gemm_vnni

TITLE = "VNNI micro-kernel (packed)"


def available() -> bool:
    return vnni_available()


def prepare(a, w):
    packed = PackedWeights(np.ascontiguousarray(w))
    a = np.ascontiguousarray(a)
    return lambda: gemm_vnni(a, packed)
