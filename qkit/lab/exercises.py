"""Exercise checkers: call one with your answer, read the feedback.

Each checker returns a `Feedback` (truthy when the answer is right) and prints
it, so a notebook cell is one line: ``exercises.scale_and_zero_point(0.02, 75)``.
Reference solutions live in `SOLUTIONS`; ``python -m qkit exercises`` runs every
checker against them (instructors: that is the one command to check the set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkit.core.qparams import qparams_from_range, qparams_from_tensor, qrange


@dataclass
class Feedback:
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return ("passed: " if self.passed else "not yet: ") + self.message


def _report(fb: Feedback) -> Feedback:
    print(repr(fb))
    return fb


# --- notebook 00: welcome ------------------------------------------------------------------


def int8_bytes(count: int) -> Feedback:
    """Exercise 1: bytes of a 1000 x 1280 weight matrix in int8 with one float32 scale per row."""
    want = 1000 * 1280 + 1000 * 4
    if count == want:
        return _report(Feedback(True, f"{want:,} bytes: 25.1% of the fp32 {4 * 1000 * 1280:,}"))
    if count == 1000 * 1280:
        return _report(Feedback(False, "add the scales: one float32 (4 bytes) per row"))
    if count == 4 * 1000 * 1280:
        return _report(Feedback(False, "that is fp32; int8 takes 1 byte per weight"))
    return _report(Feedback(False, "1 byte per weight plus 4 bytes per row for its scale"))


def db_per_bit(value: float) -> Feedback:
    """Exercise 2: how many dB of SQNR does one more bit buy (uniform-noise model)?"""
    if abs(value - 6.02) < 0.01:
        return _report(Feedback(True, "20 log10(2) = 6.02 dB: the step halves, noise power /4"))
    if abs(value - 3.01) < 0.01:
        return _report(Feedback(False, "halving the step quarters the noise power: 10 log10(4)"))
    return _report(Feedback(False, "one bit halves the step Δ; noise power is Δ²/12"))


def mac_energy_ratio(ratio: float) -> Feedback:
    """Exercise 3: fp32 multiply-add energy divided by int8 multiply + int32 add (Horowitz 2014)."""
    from qkit.topics.energy import PJ

    want = (PJ["fp32_mul"] + PJ["fp32_add"]) / (PJ["int8_mul"] + PJ["int32_add"])
    if abs(ratio - want) < 0.05 * want:
        return _report(Feedback(True, f"(3.7 + 0.9) / (0.2 + 0.1) = {want:.1f}x less energy per "
                                      "multiply-add; but one DRAM read costs ~400 fp32 MACs"))
    return _report(Feedback(False, "use the 45 nm table: fp32 mult 3.7 + add 0.9 pJ; int8 mult "
                                   "0.2 + int32 add 0.1 pJ"))


# --- notebook 01: range mapping -------------------------------------------------------------

RANGE_QUESTION = {"lo": -0.5, "hi": 4.5, "bits": 8, "signed": False}


def scale_and_zero_point(scale: float, zero_point: int) -> Feedback:
    """Exercise 1: the uint8 asymmetric scale and zero point for the range [-0.5, 4.5]."""
    q = RANGE_QUESTION
    qp = qparams_from_range(q["lo"], q["hi"], q["bits"], q["signed"])
    want_s, want_z = float(qp.scale), int(qp.zero_point)
    if np.isclose(scale, want_s, rtol=1e-4) and zero_point == want_z:
        return _report(Feedback(True, f"scale = 5.0 / 255 = {want_s:.6f}, zero point = "
                                      f"round(0.5 / scale) = {want_z}."))
    if np.isclose(scale, 5.0 / 256, rtol=1e-4):
        return _report(Feedback(False, "255 steps separate 256 levels: divide the range by "
                                       "qmax - qmin = 255, not 256."))
    if not np.isclose(scale, want_s, rtol=1e-4):
        return _report(Feedback(False, "the scale is (hi - lo) / (qmax - qmin) with the range "
                                       "[lo, hi] widened to include 0."))
    if zero_point == -want_z:
        return _report(Feedback(False, "the zero point is the integer that stands for 0.0: "
                                       "qmin - round(lo / scale), here a positive number."))
    return _report(Feedback(False, f"the scale is right; the zero point is qmin - round(lo / "
                                   f"scale) = 0 - round({q['lo']} / {want_s:.6f})."))


def quantize_function(fn) -> Feedback:
    """Exercise 2: write ``fn(x, scale, zero_point, qmin, qmax) -> integer array``."""
    from qkit import QParams, quantize

    cases = [
        (np.array([0.0, 0.1, -0.1, 1.0, 2.5, -3.0], np.float32), 0.1, 10, 0, 255),
        (np.array([0.05, 0.15, 0.25, -0.05], np.float32), 0.1, 0, -128, 127),  # .5 ties
        (np.array([100.0, -100.0], np.float32), 0.5, 3, -8, 7),  # clipping
    ]
    for x, scale, zp, lo, hi in cases:
        want = quantize(x, QParams(np.float32(scale), zp, bits=8 if hi > 7 else 4,
                                   signed=lo < 0))
        try:
            got = np.asarray(fn(x, scale, zp, lo, hi))
        except Exception as e:  # the student's code: report, do not crash the notebook
            return _report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
        if got.shape != want.shape:
            return _report(Feedback(False, f"expected shape {want.shape}, got {got.shape}"))
        if not np.issubdtype(got.dtype, np.integer):
            return _report(Feedback(False, "return integers (e.g. .astype(np.int32)), not "
                                           f"{got.dtype}"))
        if got.max() > hi or got.min() < lo:
            return _report(Feedback(False, f"values must be clipped to [qmin, qmax] = [{lo}, "
                                           f"{hi}]: clip before casting"))
        if not np.array_equal(got, want):
            bad = int(np.flatnonzero(got != want)[0])
            hint = " (a .5 tie: use np.rint, which rounds half to even)" if abs(
                x[bad] / scale - np.floor(x[bad] / scale) - 0.5) < 1e-3 else ""
            return _report(Feedback(False, f"x = {x[bad]} with scale {scale}, zero point {zp} "
                                           f"should give {want[bad]}, you gave {got[bad]}{hint}"))
    return _report(Feedback(True, "round(x / scale) + zero_point, clipped: exactly qkit's rule."))


def per_channel_scales(fn) -> Feedback:
    """Exercise 3: ``fn(w) -> scales``, one symmetric int8 (narrow range) scale per row of w."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((6, 20)) * rng.uniform(0.01, 2, (6, 1))).astype(np.float32)
    want = qparams_from_tensor(w, bits=8, symmetric=True, narrow_range=True, axis=0).scale
    try:
        got = np.asarray(fn(w), np.float64).ravel()
    except Exception as e:
        return _report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
    if got.size == 1:
        return _report(Feedback(False, "that is one scale for the whole tensor; compute one "
                                       "per output channel (row): max(|w|, axis=1) / 127"))
    if got.size != 6:
        return _report(Feedback(False, f"expected 6 scales (one per row), got {got.size}"))
    if np.allclose(got, np.abs(w).max(axis=0)[:6] / 127, rtol=1e-4):
        return _report(Feedback(False, "that reduced over columns; reduce over axis=1"))
    if np.allclose(got, np.abs(w).max(axis=1) / 127.5, rtol=1e-4):
        return _report(Feedback(False, "narrow range means [-127, 127]: divide by 127"))
    if not np.allclose(got, want, rtol=1e-5):
        return _report(Feedback(False, "the scale of row i is max(|w[i]|) / 127"))
    return _report(Feedback(True, f"row ranges differ by {np.ptp(np.log10(want)):.1f} decades:"
                                  " one scale each keeps every row's resolution."))


# --- notebook 02: quantization noise --------------------------------------------------------


def sqnr_theory(bits: int, answer_db: float) -> Feedback:
    """Exercise 1: the SQNR the uniform-noise model predicts for a full-scale sine at ``bits``."""
    want = 6.02 * bits + 1.76
    if abs(answer_db - want) < 0.05:
        return _report(Feedback(True, f"6.02 x {bits} + 1.76 = {want:.2f} dB"))
    if abs(answer_db - 6.02 * bits) < 0.05:
        return _report(Feedback(False, "add the sine's 1.76 dB: 10 log10(3/2)"))
    return _report(Feedback(False, "SQNR = 6.02 b + 1.76 dB for a full-scale sine"))


def noise_power(fn) -> Feedback:
    """Exercise 2: ``fn(step) -> variance`` of the uniform rounding error for that step."""
    for step in (1.0, 0.1, 2.0 ** -7):
        try:
            got = float(fn(step))
        except Exception as e:
            return _report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
        if np.isclose(got, step**2 / 4, rtol=1e-6):
            return _report(Feedback(False, "that is the largest squared error (Δ/2)²; the mean "
                                           "of e² over U(-Δ/2, Δ/2) is Δ²/12"))
        if not np.isclose(got, step**2 / 12, rtol=1e-6):
            return _report(Feedback(False, f"for step {step} expected {step ** 2 / 12:.6g}, got "
                                           f"{got:.6g}: integrate e² over U(-Δ/2, Δ/2)"))
    return _report(Feedback(True, "Δ²/12: quarter the step, 16x less noise (12 dB = 2 bits)."))


def best_clip(fn) -> Feedback:
    """Exercise 3: ``fn(x, bits) -> alpha``, the clip of a symmetric grid with the least MSE."""
    from qkit.topics.noise import clipping_curve

    x = np.random.default_rng(1).laplace(size=20_000).astype(np.float32)
    alphas = np.linspace(0.5, float(np.abs(x).max()), 200)
    curve = clipping_curve(x, 4, alphas)
    try:
        got = float(fn(x, 4))
    except Exception as e:
        return _report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
    best = float(curve["measured"].min())
    at_got = float(clipping_curve(x, 4, [got])["measured"][0])
    if at_got <= best * 1.02:
        return _report(Feedback(True, f"alpha {got:.2f} (about {got / curve['laplace_b']:.1f} "
                                      "Laplace b; ACIQ predicts 5.03 b at 4 bits)"))
    if np.isclose(got, np.abs(x).max(), rtol=1e-3):
        return _report(Feedback(False, "that is min-max: no clipping. At 4 bits a smaller alpha "
                                       "buys a finer step; search alphas below max|x|"))
    return _report(Feedback(False, f"alpha {got:.2f} gives MSE {at_got:.4g}; the best is "
                                   f"{best:.4g}. Try a grid of alphas and keep the least MSE"))


# --- notebook 03: integer arithmetic -------------------------------------------------------


def zero_point_correction(fn) -> Feedback:
    """Exercise 1: ``fn(x_q, w_q, zx, zw) -> sum_k (x - zx)(w - zw)`` for one row and one column,
    using only ``sum(x*w)``, ``sum(x)``, ``sum(w)`` and K (the zero-point expansion)."""
    rng = np.random.default_rng(3)
    for k in (1, 7, 64):
        x = rng.integers(0, 256, k)
        w = rng.integers(-128, 128, k)
        zx, zw = int(rng.integers(0, 256)), int(rng.integers(-5, 6))
        want = int(((x - zx) * (w - zw)).sum())
        try:
            got = int(fn(x, w, zx, zw))
        except Exception as e:
            return _report(Feedback(False, f"your function raised {type(e).__name__}: {e}"))
        if got != want:
            if got == int((x * w).sum() - zx * w.sum() - zw * x.sum()):
                return _report(Feedback(False, "almost: the constant term K * zx * zw is missing"))
            return _report(Feedback(False, f"K={k}, zx={zx}, zw={zw}: expected {want}, got {got}."
                                           " Expand (x - zx)(w - zw) and sum each term"))
    return _report(Feedback(True, "sum(xw) - zw sum(x) - zx sum(w) + K zx zw: the weight sums "
                                  "are computed once, at load time."))


def overflow_bound(k_max: int) -> Feedback:
    """Exercise 2: the largest K for which a u8 x s8 dot product cannot overflow int32."""
    want = (2**31 - 1) // (255 * 128)
    if k_max == want:
        return _report(Feedback(True, f"(2^31 - 1) // (255 * 128) = {want}: far beyond any "
                                      "layer in this kit, so int32 is safe here."))
    if k_max == (2**31 - 1) // (255 * 127):
        return _report(Feedback(False, "the most negative int8 is -128, not -127"))
    if k_max == 2**31 // (255 * 128):
        return _report(Feedback(False, "INT32_MAX is 2^31 - 1"))
    return _report(Feedback(False, "every product can be as large as 255 x 128 in magnitude: "
                                   "K_max = (2^31 - 1) // (255 * 128)"))


def multiplier_by_hand(m0: int, shift: int) -> Feedback:
    """Exercise 3: ``quantize_multiplier(0.3)`` by hand: M0 in [2^30, 2^31) and the shift."""
    from qkit.core.fixedpoint import quantize_multiplier

    want_m0, want_shift = quantize_multiplier(0.3)
    if (m0, shift) == (want_m0, want_shift):
        return _report(Feedback(True, f"0.3 = 0.6 x 2^-1: M0 = round(0.6 x 2^31) = {want_m0}, "
                                      "shift = -1"))
    if shift == want_shift:
        return _report(Feedback(False, "the shift is right; M0 = round(q x 2^31) with q = 0.6"))
    return _report(Feedback(False, "write 0.3 = q x 2^shift with q in [0.5, 1) (frexp)"))


# --- notebook 04: making int8 fast ---------------------------------------------------------


def ops_count(count: int) -> Feedback:
    """Exercise 1: operations in one (128 x 384) @ (384 x 1536) GEMM (a multiply-add is 2)."""
    want = 2 * 128 * 384 * 1536
    if count == want:
        return _report(Feedback(True, f"2 M K N = {want:,}: about 0.15 GOP"))
    if count == want // 2:
        return _report(Feedback(False, "that counts multiply-adds; count the multiply and the "
                                       "add separately (2 M K N)"))
    return _report(Feedback(False, "each of the M x N outputs takes K multiplies and K adds"))


def gemv_bytes_ratio(ratio: float) -> Feedback:
    """Exercise 2: for a batch-1 GEMV (4096 x 4096), how many times fewer weight bytes does int8
    move than fp32? (Weights dominate: each is used once.)"""
    if abs(ratio - 4) < 1e-9:
        return _report(Feedback(True, "4x fewer bytes: where memory rules, int8 can be up to 4x "
                                      "faster even without faster arithmetic"))
    return _report(Feedback(False, "an fp32 weight is 4 bytes, an int8 weight 1 byte"))


def roofline(gops: float) -> Feedback:
    """Exercise 3: peak 400 GOP/s, memory 20 GB/s, int8 GEMV at ~2 ops/byte: the best GOP/s?"""
    want = min(400.0, 20.0 * 2.0)
    if abs(gops - want) < 1e-6:
        return _report(Feedback(True, "min(peak, bandwidth x intensity) = 40 GOP/s: memory-bound"
                                      " at a tenth of the peak"))
    if abs(gops - 400) < 1e-6:
        return _report(Feedback(False, "the arithmetic is not the limit here: bytes per second "
                                       "times operations per byte is"))
    return _report(Feedback(False, "roofline: attainable = min(peak, bandwidth x intensity)"))


# --- notebook 05: calibration and PTQ ------------------------------------------------------


def fold_bn(fn) -> Feedback:
    """Exercise 1: ``fn(w, b, gamma, beta, mean, var, eps) -> (w_folded, b_folded)`` for a conv
    (w: (O, I, kh, kw)) followed by BatchNorm2d in eval mode."""
    rng = np.random.default_rng(5)
    w, b = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    gamma, beta, mean = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    var, eps = rng.uniform(0.1, 2, size=4), 1e-5
    k = gamma / np.sqrt(var + eps)
    want_w, want_b = w * k[:, None, None, None], (b - mean) * k + beta
    try:
        got_w, got_b = fn(w, b, gamma, beta, mean, var, eps)
    except Exception as err:  # a student's function may fail in any way: report, never raise
        return _report(Feedback(False, f"your function raised {type(err).__name__}: {err}"))
    if np.allclose(got_w, want_w, rtol=1e-6) and np.allclose(got_b, want_b, rtol=1e-6):
        return _report(Feedback(True, "w' = w * gamma/sqrt(var+eps) per output channel, "
                                      "b' = (b - mean) * gamma/sqrt(var+eps) + beta"))
    if np.allclose(got_w, want_w, rtol=1e-6):
        return _report(Feedback(False, "weights right; the bias: subtract the mean before "
                                       "scaling, then add beta"))
    return _report(Feedback(False, "scale each output channel's weights by "
                                   "gamma / sqrt(var + eps)"))


def percentile_clip(fn) -> Feedback:
    """Exercise 2: ``fn(x, p)``: the clipping value that keeps p% of |x| (a percentile)."""
    x = np.random.default_rng(6).standard_t(3, 20_000)
    want = float(np.percentile(np.abs(x), 99.9))
    try:
        got = float(fn(x, 99.9))
    except Exception as err:
        return _report(Feedback(False, f"your function raised {type(err).__name__}: {err}"))
    if abs(got - want) <= 0.02 * want:
        return _report(Feedback(True, f"{got:.3f}: clipping there trades a few large errors "
                                      f"for a {np.abs(x).max() / got:.1f}x finer step"))
    if abs(got - float(np.percentile(x, 99.9))) <= 1e-9:
        return _report(Feedback(False, "take the percentile of |x|, not of x"))
    return _report(Feedback(False, "np.percentile(np.abs(x), p)"))


def cle_factor(s: float) -> Feedback:
    """Exercise 3: channel ranges r1 = 4.0 (layer 1 output) and r2 = 0.25 (layer 2 input):
    the CLE factor s that divides layer 1's channel and multiplies layer 2's."""
    want = float(np.sqrt(4.0 / 0.25))
    if abs(s - want) < 1e-6:
        return _report(Feedback(True, "s = sqrt(r1 / r2) = 4: both ranges become sqrt(r1 r2) = 1"))
    if abs(s - 1 / want) < 1e-6:
        return _report(Feedback(False, "that is 1/s: dividing layer 1 by it would widen r1"))
    return _report(Feedback(False, "after scaling, r1 / s must equal r2 * s"))


# --- notebook 06: uniform vs non-uniform ---------------------------------------------------


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
        return _report(Feedback(False, f"your function raised {type(err).__name__}: {err}"))
    if got.shape == want.shape and np.allclose(got, want):
        return _report(Feedback(True, "repeat until nothing moves: that is k-means (Lloyd)"))
    if got.shape == want.shape and np.isnan(got).any():
        return _report(Feedback(False, "the center at 9.0 gets no values: keep it as it is"))
    return _report(Feedback(False, "assign each x to argmin |x - c|, then average per center"))


def lut_multiplies(count: int) -> Feedback:
    """Exercise 2: multiplies of one K = 64 dot product with a 16-entry codebook in the bucket
    kernel (`gemm_codebook`: add activations per code first)."""
    if count == 16:
        return _report(Feedback(True, "16 (one per code) instead of 64: but 64 scattered adds"))
    if count == 64:
        return _report(Feedback(False, "that is the direct way; the kernel sums the activations "
                                       "of each code first"))
    return _report(Feedback(False, "one multiply per codebook entry"))


def nf4_bits_per_weight(bits: float) -> Feedback:
    """Exercise 3: NF4 codes with one float32 absmax per block of 64 weights: bits per weight."""
    if abs(bits - 4.5) < 1e-9:
        return _report(Feedback(True, "4 + 32/64 = 4.5; QLoRA's double quantization brings the "
                                      "scales down to 8 bits: 4.127"))
    if abs(bits - 4) < 1e-9:
        return _report(Feedback(False, "add the scales: 32 bits shared by 64 weights"))
    return _report(Feedback(False, "4 bits of code plus 32 bits of scale per 64 weights"))


# --- notebook 07: quantization-aware training ----------------------------------------------


def ste_gradient(fn) -> Feedback:
    """Exercise 1: ``fn(x, scale, qmin, qmax)``: d fake_quant / dx under the clipped STE, with
    the clamp after the rounding as in PyTorch's FakeQuantize: 1 where ``round(x / scale)`` is
    inside ``[qmin, qmax]``, else 0."""
    x = np.linspace(-3, 3, 601)
    scale, qmin, qmax = 0.5, -3, 3
    r = np.round(x / scale)
    want = ((r >= qmin) & (r <= qmax)).astype(float)
    try:
        got = np.asarray(fn(x, scale, qmin, qmax), float)
    except Exception as err:
        return _report(Feedback(False, f"your function raised {type(err).__name__}: {err}"))
    ties = np.abs(np.abs(x / scale) - 3.5) < 1e-9  # where rounding itself is a coin toss
    if got.shape == want.shape and np.allclose(got[~ties], want[~ties]):
        return _report(Feedback(True, "1 where round(x/scale) is inside [qmin, qmax], 0 where the "
                                      "clamp cuts it"))
    if got.shape == want.shape and np.allclose(got, 1):
        return _report(Feedback(False, "that is the plain STE: clipping has zero gradient"))
    inside = ((x / scale >= qmin) & (x / scale <= qmax)).astype(float)
    if got.shape == want.shape and np.allclose(got, inside):
        return _report(Feedback(False, "almost: the clamp comes after the rounding, so values up "
                                       "to half a step beyond the range still pass"))
    return _report(Feedback(False, "the STE treats round() as identity; clamp() still clips"))


def lsq_init(step: float) -> Feedback:
    """Exercise 2: LSQ's initial step for 4-bit signed weights (Qp = 7) with mean |w| = 0.05."""
    want = 2 * 0.05 / np.sqrt(7)
    if abs(step - want) < 1e-4:
        return _report(Feedback(True, f"2 mean|w| / sqrt(Qp) = {want:.4f}"))
    return _report(Feedback(False, "LSQ: s0 = 2 <|w|> / sqrt(Qp)"))


def lsq_grad_scale(g: float) -> Feedback:
    """Exercise 3: LSQ's gradient scale for one per-channel step covering 288 weights, 4 bits."""
    want = 1 / np.sqrt(288 * 7)
    if abs(g - want) < 1e-5:
        return _report(Feedback(True, f"1 / sqrt(N Qp) = {want:.5f}: keeps the step's updates "
                                      "in proportion to the weights'"))
    if abs(g - 1 / np.sqrt(288)) < 1e-5:
        return _report(Feedback(False, "include Qp: g = 1 / sqrt(N * Qp)"))
    return _report(Feedback(False, "g = 1 / sqrt(N * Qp), N = values sharing the step"))


# --- notebook 08: mixed precision ----------------------------------------------------------


def additive_sqnr(db: float) -> Feedback:
    """Exercise 1: two layers each alone give 30 dB output SQNR; both quantized (additive
    noise), the predicted SQNR?"""
    want = 30 - 10 * np.log10(2)
    if abs(db - want) < 0.01:
        return _report(Feedback(True, f"{want:.2f} dB: twice the noise power is 3 dB less"))
    if abs(db - 15) < 0.01 or abs(db - 60) < 0.01:
        return _report(Feedback(False, "add noise powers, not decibels"))
    return _report(Feedback(False, "noise powers add: 10 log10(P / (2 N))"))


def allocation_bytes(count: int) -> Feedback:
    """Exercise 2: bytes of a 1000 x 1000 layer at 4 bits with one float32 scale per row."""
    want = 1000 * 1000 // 2 + 4 * 1000
    if count == want:
        return _report(Feedback(True, f"{want:,} bytes: 12.6% of fp32"))
    if count == 1000 * 1000 // 2:
        return _report(Feedback(False, "plus 1000 float32 scales"))
    return _report(Feedback(False, "half a byte per weight plus 4 bytes per row"))


def greedy_choice(layer: str) -> Feedback:
    """Exercise 3: lowering layer A adds 2e-4 noise and saves 1000 bytes; layer B adds 1e-4 and
    saves 100 bytes. Which does the greedy allocator lower first?"""
    if str(layer).strip().upper() == "A":
        return _report(Feedback(True, "A: 2e-7 noise per byte saved, against B's 1e-6"))
    if str(layer).strip().upper() == "B":
        return _report(Feedback(False, "B adds less noise, but saves 10x fewer bytes: compare "
                                       "noise per byte"))
    return _report(Feedback(False, "answer 'A' or 'B'"))


# --- notebook 09: speed, size and energy ---------------------------------------------------


def dram_vs_mac(count: float) -> Feedback:
    """Exercise 1: how many int8 multiply-adds (0.2 + 0.1 pJ) cost as much as one 64-bit DRAM
    read (1.95 nJ)? (`qkit.topics.energy.PJ`)"""
    from qkit.topics.energy import PJ

    want = PJ["dram_64bit"] / (PJ["int8_mul"] + PJ["int32_add"])
    if abs(count - want) <= 0.01 * want:
        return _report(Feedback(True, f"{want:,.0f}: moving weights, not multiplying them, is "
                                      "what costs energy"))
    return _report(Feedback(False, "1950 pJ divided by 0.3 pJ"))


def model_energy(uj: float) -> Feedback:
    """Exercise 2: 10^6 int8 MACs and 10^5 weight bytes read once from DRAM (ignore the
    activations): microjoules per inference?"""
    from qkit.topics.energy import estimate

    want = estimate(10**6, 10**5, 0, "int8")["total_uj"]
    if abs(uj - want) <= 0.01 * want:
        return _report(Feedback(True, f"{want:.2f} uJ, of which arithmetic 0.30: "
                                      "weights dominate"))
    return _report(Feedback(False, "MACs x 0.3 pJ + (bytes / 8) x 1950 pJ, in microjoules"))


def gemv_intensity(ops_per_byte: float) -> Feedback:
    """Exercise 3: operations per weight byte of an int8 GEMV (1 x 4096 x 4096)."""
    if abs(ops_per_byte - 2) < 1e-6:
        return _report(Feedback(True, "2 ops per byte: each weight is used once, so the memory "
                                      "bus, not the multipliers, sets the speed"))
    if abs(ops_per_byte - 1) < 1e-6:
        return _report(Feedback(False, "a multiply-add counts as 2 operations"))
    return _report(Feedback(False, "2 M K N operations over K N bytes, M = 1"))


# --- notebook 10: a transformer ------------------------------------------------------------


def smoothing_factor(s: float) -> Feedback:
    """Exercise 1: SmoothQuant's s for a channel with max|x| = 64, max|W| = 0.25, alpha = 0.5."""
    want = 64**0.5 / 0.25**0.5
    if abs(s - want) < 1e-6:
        return _report(Feedback(True, "sqrt(64) / sqrt(0.25) = 16: x/16 peaks at 4, W*16 at 4"))
    return _report(Feedback(False, "s = max|x|^alpha / max|W|^(1 - alpha)"))


def group_bytes(count: int) -> Feedback:
    """Exercise 2: bytes of a 1536 x 384 weight at 4 bits, one float32 scale per group of 64."""
    n = 1536 * 384
    want = n // 2 + 4 * n // 64
    if count == want:
        return _report(Feedback(True, f"{want:,} bytes: the scales add 0.5 bit per weight"))
    if count == n // 2:
        return _report(Feedback(False, "plus one float32 scale per 64 weights"))
    return _report(Feedback(False, "n/2 bytes of codes + 4 bytes x n/64 scales"))


def levels_left(count: int) -> Feedback:
    """Exercise 3: per-tensor symmetric int8 for a tensor whose range is [-60, 60]: how many
    integer levels does a channel with values in [-1, 1] use?"""
    step = 60 / 127
    want = 2 * int(1 / step) + 1
    if count == want:
        return _report(Feedback(True, f"{want}: an outlier channel 60x wider leaves the others "
                                      "about 2 bits"))
    return _report(Feedback(False, "step = 60/127; count the integers in [-1/step, 1/step]"))


def _solve_best_clip(x, bits):
    from qkit.topics.noise import clipping_curve

    return clipping_curve(x, bits, np.linspace(0.5, float(np.abs(x).max()), 400))["best_alpha"]


def _solve_quantize(x, scale, zero_point, qmin, qmax):
    return np.clip(np.rint(np.asarray(x, np.float32) / np.float32(scale)) + zero_point,
                   qmin, qmax).astype(np.int32)


def _solve_fold_bn(w, b, gamma, beta, mean, var, eps):
    k = gamma / np.sqrt(var + eps)
    return w * k[:, None, None, None], (b - mean) * k + beta


def _solve_kmeans_step(x, centers):
    assign = np.abs(x[:, None] - centers[None]).argmin(1)
    return np.array([x[assign == i].mean() if (assign == i).any() else c
                     for i, c in enumerate(centers)])


SOLUTIONS = {
    "int8_bytes": lambda: int8_bytes(1000 * 1280 + 4 * 1000),
    "db_per_bit": lambda: db_per_bit(6.02),
    "mac_energy_ratio": lambda: mac_energy_ratio(4.6 / 0.3),
    "scale_and_zero_point": lambda: scale_and_zero_point(5.0 / 255, 26),
    "quantize_function": lambda: quantize_function(_solve_quantize),
    "per_channel_scales": lambda: per_channel_scales(
        lambda w: np.abs(w).max(axis=1) / qrange(8, True, True)[1]),
    "sqnr_theory": lambda: sqnr_theory(6, 6.02 * 6 + 1.76),
    "noise_power": lambda: noise_power(lambda step: step**2 / 12),
    "best_clip": lambda: best_clip(_solve_best_clip),
    "zero_point_correction": lambda: zero_point_correction(
        lambda x, w, zx, zw: (x * w).sum() - zw * x.sum() - zx * w.sum() + len(x) * zx * zw),
    "overflow_bound": lambda: overflow_bound((2**31 - 1) // (255 * 128)),
    "multiplier_by_hand": lambda: multiplier_by_hand(1288490189, -1),
    "ops_count": lambda: ops_count(2 * 128 * 384 * 1536),
    "gemv_bytes_ratio": lambda: gemv_bytes_ratio(4.0),
    "roofline": lambda: roofline(min(400.0, 20.0 * 2.0)),
    "fold_bn": lambda: fold_bn(_solve_fold_bn),
    "percentile_clip": lambda: percentile_clip(lambda x, p: np.percentile(np.abs(x), p)),
    "cle_factor": lambda: cle_factor(np.sqrt(4.0 / 0.25)),
    "kmeans_step": lambda: kmeans_step(_solve_kmeans_step),
    "lut_multiplies": lambda: lut_multiplies(16),
    "nf4_bits_per_weight": lambda: nf4_bits_per_weight(4 + 32 / 64),
    "ste_gradient": lambda: ste_gradient(
        lambda x, s, lo, hi: ((np.round(x / s) >= lo) & (np.round(x / s) <= hi)).astype(float)),
    "lsq_init": lambda: lsq_init(2 * 0.05 / np.sqrt(7)),
    "lsq_grad_scale": lambda: lsq_grad_scale(1 / np.sqrt(288 * 7)),
    "additive_sqnr": lambda: additive_sqnr(30 - 10 * np.log10(2)),
    "allocation_bytes": lambda: allocation_bytes(1000 * 1000 // 2 + 4 * 1000),
    "greedy_choice": lambda: greedy_choice("A"),
    "dram_vs_mac": lambda: dram_vs_mac(1950 / 0.3),
    "model_energy": lambda: model_energy(10**6 * 0.3e-6 + 10**5 / 8 * 1950e-6),
    "gemv_intensity": lambda: gemv_intensity(2 * 4096 * 4096 / (4096 * 4096)),
    "smoothing_factor": lambda: smoothing_factor(64**0.5 / 0.25**0.5),
    "group_bytes": lambda: group_bytes(1536 * 384 // 2 + 4 * 1536 * 384 // 64),
    "levels_left": lambda: levels_left(2 * int(1 / (60 / 127)) + 1),
}


def check_all() -> int:
    """Run every checker on its reference solution; the number that failed."""
    failed = [name for name, run in SOLUTIONS.items() if not run()]
    print(f"{len(SOLUTIONS) - len(failed)} passed, {len(failed)} failed")
    return len(failed)
