"""Version 7: int4 weights, half the bytes of version 5, unpacked in registers.

What changed: each weight byte holds two 4-bit weights (`qkit.kernels.packing.PackedInt4`);
the kernel loads 64 bytes, splits them with ``& 0xF`` and ``>> 4``, sign-extends with
``(n ^ 8) - 8`` and feeds ``vpdpbusd`` as in version 5. The arithmetic is the same; what
halves is the weight traffic, which is what bounds a GEMV (batch 1), where each weight is
used once. The code is `qkit.kernels.vnni.int4`. The weights of this version must lie in
[-8, 7]: the runner uses ``w // 16``.
"""

from __future__ import annotations

import numpy as np

from qkit.kernels.packing import PackedInt4
from qkit.kernels.simd.cpu import vnni_available
from qkit.kernels.vnni.int4 import gemm_int4_vnni

TITLE = "VNNI int4 weights (packed)"
WEIGHT_RANGE = (-8, 7)


def available() -> bool:
    return vnni_available()


def prepare(a, w):
    packed = PackedInt4(np.ascontiguousarray(w))
    a = np.ascontiguousarray(a)
    return lambda: gemm_int4_vnni(a, packed)
