"""Exercises of notebook 04 (making int8 fast): checkers, and their reference solutions."""

from __future__ import annotations

from qkit.lab.exercises.feedback import Feedback, checker, report


@checker
def ops_count(count: int) -> Feedback:
    """Exercise 1: operations in one (128 x 384) @ (384 x 1536) GEMM (a multiply-add is 2)."""
    want = 2 * 128 * 384 * 1536
    if count == want:
        return report(Feedback(True, f"2 M K N = {want:,}: about 0.15 GOP"))
    if count == want // 2:
        return report(Feedback(False, "that counts multiply-adds; count the multiply and the "
                                      "add separately"))
    return report(Feedback(False, "how many outputs are there, and how many operations does "
                                  "each one take?"))


@checker
def gemv_bytes_ratio(ratio: float) -> Feedback:
    """Exercise 2: for a batch-1 GEMV (4096 x 4096), how many times fewer weight bytes does int8
    move than fp32? (Weights dominate: each is used once.)"""
    if abs(ratio - 4) < 1e-9:
        return report(Feedback(True, "4x fewer bytes: where memory rules, int8 can be up to 4x "
                                     "faster even without faster arithmetic"))
    if abs(ratio - 0.25) < 1e-9:
        return report(Feedback(False, "that is int8 over fp32; how many times fewer?"))
    return report(Feedback(False, "how many bytes does each format spend on one weight?"))


@checker
def roofline(gops: float) -> Feedback:
    """Exercise 3: peak 400 GOP/s, memory 20 GB/s, int8 GEMV at ~2 ops/byte: the best GOP/s?"""
    want = min(400.0, 20.0 * 2.0)
    if abs(gops - want) < 1e-6:
        return report(Feedback(True, "min(peak, bandwidth x intensity) = 40 GOP/s: memory-bound"
                                     " at a tenth of the peak"))
    if abs(gops - 400) < 1e-6:
        return report(Feedback(False, "the arithmetic is not the limit here: bytes per second "
                                      "times operations per byte is"))
    if abs(gops - 10) < 1e-6:
        return report(Feedback(False, "check the units: bytes per second and operations per "
                                      "byte: multiply, don't divide"))
    return report(Feedback(False, "which is smaller: the peak, or what the memory can feed "
                                  "(bytes per second x operations per byte)?"))


MISTAKES = {
    "ops_count": [((128 * 384 * 1536,), "multiply-adds"), ((1,), "how many outputs")],
    "gemv_bytes_ratio": [((0.25,), "int8 over fp32"), ((2.0,), "how many bytes")],
    "roofline": [((400.0,), "not the limit"), ((10.0,), "multiply, don't divide"),
                 ((100.0,), "which is smaller")],
}
ANSWERS = {"ops_count": 2 * 128 * 384 * 1536, "gemv_bytes_ratio": 4, "roofline": 40}

SOLUTIONS = {
    "ops_count": lambda: ops_count(2 * 128 * 384 * 1536),
    "gemv_bytes_ratio": lambda: gemv_bytes_ratio(4.0),
    "roofline": lambda: roofline(min(400.0, 20.0 * 2.0)),
}
