"""Random Hadamard rotations: orthogonal matrices applied in n log n before a grid.

``Q = diag(signs) (H_p ⊗ M) / sqrt(p)`` for ``n = p * m`` (p the largest power of two in n):
random signs, Sylvester's Hadamard matrix of size p applied by the fast Walsh-Hadamard
transform (`qkit.kernels.fwht`), and a random orthogonal m x m matrix (QR of a Gaussian one)
for the odd part. ``x @ Q`` spreads each channel over all n; `qkit.topics.rotation` shows what
that does to outliers and `qkit.engine.formats` folds it into weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qkit import kernels
from qkit.reference.hadamard import hadamard_matrix


def _split(n: int) -> tuple[int, int]:
    """``n = 2^k * m`` with m odd: (2^k, m)."""
    p = n & -n
    return p, n // p


@dataclass(frozen=True)
class Rotation:
    """``Q = diag(signs) (H_p ⊗ M) / sqrt(p)``, orthogonal, n = p * m."""

    signs: np.ndarray  # (n,) +-1
    m: np.ndarray  # (m, m) orthogonal
    p: int  # the power-of-two factor, Hadamard-transformed

    @property
    def n(self) -> int:
        return self.p * self.m.shape[0]

    def matrix(self) -> np.ndarray:
        """The dense n x n matrix (readable; `apply` never builds it)."""
        h = hadamard_matrix(self.p)
        return self.signs[:, None] * np.kron(h, self.m) / math.sqrt(self.p)

    def apply(self, x, *, fast: bool = True) -> np.ndarray:
        """``x @ Q`` along the last axis (any leading shape), float64."""
        x = np.asarray(x, np.float64)
        if x.ndim == 0 or x.shape[-1] != self.n:
            raise ValueError(f"x's last axis must have length {self.n}, got shape {x.shape}")
        if not fast:
            return x @ self.matrix()
        lead = x.shape[:-1]
        mm = self.m.shape[0]
        # (x D) (H ⊗ M): rows of X (p, m) -> H X M; M on the last axis, H by the FWHT
        y = ((x * self.signs).reshape(-1, self.p, mm) @ self.m).transpose(0, 2, 1)
        y = kernels.fwht(y.reshape(-1, self.p)).reshape(-1, mm, self.p).transpose(0, 2, 1)
        return (y / math.sqrt(self.p)).reshape(*lead, self.n)


def random_hadamard(n: int, seed: int = 0) -> Rotation:
    """A random Hadamard rotation of size ``n`` (any positive int; n = 2^k * m)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = np.random.default_rng(seed)
    p, mm = _split(int(n))
    q, r = np.linalg.qr(rng.standard_normal((mm, mm)))
    m = q * np.sign(np.diag(r))  # Haar-distributed orthogonal
    return Rotation(rng.choice([-1.0, 1.0], int(n)), m, p)
