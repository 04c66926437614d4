"""ONNX Runtime's own integer arithmetic where it differs from qkit's, in NumPy, so that a
model read from ONNX (`qkit.engine.qdq`) gives ONNX Runtime's integers on qkit.

- ``QLinearAdd`` (its x86 AVX2 kernel, MLAS ``qladd_avx2.cpp``): with ``r_a = f32(s_a / s_y)``,
  ``r_b = f32(s_b / s_y)`` and ``F = f32(z_y - f32(fma(r_a, z_a, f32(r_b z_b))))``,
  ``y = sat(rne(fma(a, r_a, fma(b, r_b, F))))``: fused multiply-adds, one rounding each.
- ``QLinearGlobalAveragePool`` (MLAS x86): ``y = clamp(rne(f32(sum - z_x n) * m)) + z_y`` with
  ``m = f32(s_x / f32(s_y n))``, clamped to ``[-z_y, 255 - z_y]`` before ``z_y`` is added.

These are ONNX Runtime's x86 paths; its ARM kernels compute both differently (fixed point for
the pool). `fma32` is exact: the float64 sum of the exact product and the addend, made
round-to-odd, then rounded once to float32.
"""

from __future__ import annotations

import numpy as np

KINDS = ("ort_add", "ort_avgpool")


def fma32(a, b, c) -> np.ndarray:
    """``a * b + c`` of float32 arrays with one rounding to float32 (as the FMA instruction).
    The float64 product of two float32 values is exact; the float64 sum's error is recovered
    (TwoSum) and folded in as round-to-odd, so the final rounding to float32 is correct."""
    p = np.asarray(a, np.float32).astype(np.float64) * np.asarray(b, np.float32)
    c = np.asarray(c, np.float32).astype(np.float64)
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    odd = np.frexp(s)[0] * 2.0 ** 53
    even = (odd.astype(np.int64) % 2 == 0) & (err != 0)
    s = np.where(even, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def qlinear_add(a, a_zero_point: int, a_scale, b, b_zero_point: int, b_scale, scale,
                zero_point: int) -> np.ndarray:
    """ONNX Runtime's ``QLinearAdd`` of two uint8 tensors of one shape (x86 AVX2 kernel)."""
    f32 = np.float32
    ra, rb = f32(f32(a_scale) / f32(scale)), f32(f32(b_scale) / f32(scale))
    fixed = f32(f32(zero_point) - fma32(ra, f32(a_zero_point), f32(rb * f32(b_zero_point))))
    inner = fma32(np.asarray(b, np.float32), rb, fixed)
    v = fma32(np.asarray(a, np.float32), ra, inner)
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def qlinear_global_avgpool(x, x_zero_point: int, x_scale, scale, zero_point: int) -> np.ndarray:
    """ONNX Runtime's ``QLinearGlobalAveragePool`` of uint8 NHWC ``x``: (N, 1, 1, C)."""
    n = x.shape[1] * x.shape[2]
    m = np.float32(np.float32(x_scale) / np.float32(np.float32(scale) * np.float32(n)))
    acc = x.astype(np.int32).sum(axis=(1, 2), keepdims=True) - int(x_zero_point) * n
    v = np.clip(acc.astype(np.float32) * m, np.float32(-zero_point), np.float32(255 - zero_point))
    return (np.rint(v).astype(np.int32) + zero_point).astype(np.uint8)


def step(op, vals: dict, act: dict) -> np.ndarray:
    """One op of `KINDS` on uint8 NHWC tensors (both backends: this is the only version)."""
    x = vals[op.inputs[0]]
    sx, zx = act[op.inputs[0]]
    sy, zy = act[op.name]
    if op.kind == "ort_add":
        b = vals[op.inputs[1]]
        if b.shape != x.shape:
            raise ValueError(f"{op.name}: Add of shapes {x.shape} and {b.shape}; qkit's reader "
                             "supports same-shape adds")
        sb, zb = act[op.inputs[1]]
        return qlinear_add(x, zx, sx, b, zb, sb, sy, zy)
    if op.kind == "ort_avgpool":
        return qlinear_global_avgpool(x, zx, sx, sy, zy)
    raise ValueError(f"unknown op kind {op.kind!r} (op {op.name})")
