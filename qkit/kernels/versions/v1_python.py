"""Version 1: three Python loops, the definition.

``acc[m, n] = sum_k a[m, k] * w[n, k]`` written as it reads. Every multiply is a Python
object operation (type checks, boxing, a dictionary lookup or two): about a million times
slower than the hardware can go. Everything after this keeps these integers and changes only
how they are computed.
"""

from __future__ import annotations

import numpy as np

TITLE = "Python loops"


def gemm(a, w) -> np.ndarray:
    """(M,K) x (N,K) -> (M,N) int32, one Python multiply-add at a time."""
    m_len, k_len = a.shape
    out = np.zeros((m_len, w.shape[0]), np.int32)
    for m in range(m_len):
        for n in range(w.shape[0]):
            acc = 0
            for k in range(k_len):
                acc += int(a[m, k]) * int(w[n, k])
            out[m, n] = acc
    return out


def prepare(a, w):
    """A zero-argument callable computing ``a @ w.T`` (nothing to prepare)."""
    return lambda: gemm(a, w)
