"""Exercises of notebook 06 (uniform vs non-uniform): checkers, and their reference solutions."""

from __future__ import annotations

import numpy as np

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def kmeans_step(fn) -> Feedback:
    """Exercise 1: ``fn(x, centers) -> new centers``: one Lloyd step (assign to the nearest
    center, then move each center to the mean of its values; keep empty ones)."""
    rng = np.random.default_rng(7)
    x, centers = rng.normal(size=2000), np.array([-2.0, -0.5, 0.1, 3.0, 9.0])
    assign = np.abs(x[:, None] - centers[None]).argmin(1)
    want = np.array([x[assign == i].mean() if (assign == i).any() else c
                     for i, c in enumerate(centers)])
    try:
        got = np.asarray(fn(x, centers.copy()), float)
    except Exception as err:
        return report(Feedback(False, f"your function raised {type(err).__name__}: {err}"))
    if got.shape == want.shape and np.allclose(got, want):
        return report(Feedback(True, "repeat until nothing moves: that is k-means (Lloyd)"))
    if got.shape == want.shape and np.isnan(got).any():
        return report(Feedback(False, "the center at 9.0 gets no values: keep it as it is"))
    return report(Feedback(False, "assign each x to argmin |x - c|, then average per center"))


@checker
def lut_multiplies(count: int) -> Feedback:
    """Exercise 2: multiplies of one K = 64 dot product with a 16-entry codebook in the bucket
    kernel (`gemm_codebook`: add activations per code first)."""
    if count == 16:
        return report(Feedback(True, "16 (one per code) instead of 64: but 64 scattered adds"))
    if count == 64:
        return report(Feedback(False, "that is the direct way; the kernel sums the activations "
                                      "of each code first"))
    return report(Feedback(False, "once the activations sharing a code are summed, how many "
                                  "products remain?"))


@checker
def nf4_bits_per_weight(bits: float) -> Feedback:
    """Exercise 3: NF4 codes with one float32 absmax per block of 64 weights: bits per weight."""
    if abs(bits - 4.5) < 1e-9:
        return report(Feedback(True, "4 + 32/64 = 4.5; QLoRA's double quantization brings the "
                                     "scales down to 8 bits: 4.127"))
    if abs(bits - 4) < 1e-9:
        return report(Feedback(False, "add the scales: 32 bits shared by 64 weights"))
    if abs(bits - (4 + 4 / 64)) < 1e-9:
        return report(Feedback(False, "a float32 scale is 32 bits, not 4"))
    return report(Feedback(False, "count the code bits and the scale's bits of one block, then "
                                  "divide by the weights in it"))


def _solve_kmeans_step(x, centers):
    assign = np.abs(x[:, None] - centers[None]).argmin(1)
    return np.array([x[assign == i].mean() if (assign == i).any() else c
                     for i, c in enumerate(centers)])


MISTAKES = {
    "kmeans_step": [((lambda x, c: np.array([x[np.abs(x[:, None] - c).argmin(1) == i].mean()
                                              for i in range(len(c))]),), "keep it as it is"),
                    ((lambda x, c: c,), "assign each x")],
    "lut_multiplies": [((64,), "the direct way"), ((4,), "how many products")],
    "nf4_bits_per_weight": [((4,), "add the scales"), ((4 + 4 / 64,), "32 bits, not 4"),
                            ((5,), "count the code bits")],
}
ANSWERS = {"lut_multiplies": 16, "nf4_bits_per_weight": 4.5}

SOLUTIONS = {
    "kmeans_step": lambda: kmeans_step(_solve_kmeans_step),
    "lut_multiplies": lambda: lut_multiplies(16),
    "nf4_bits_per_weight": lambda: nf4_bits_per_weight(4 + 32 / 64),
}
