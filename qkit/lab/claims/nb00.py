"""Claims of notebook 00 (welcome): the classifier's grids, bytes and exactness."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.lab.claims import claim, measured


@cache
def _w():
    from qkit import data

    return data.real_weight("classifier.1.weight")


def _sqnr(bits, granularity, symmetric=True):
    from qkit.topics.compare import quantize_report

    return quantize_report(_w(), bits, granularity, symmetric)


@claim("00", "quantize a real weight matrix (MobileNetV2's 1000 x 1280 ImageNet classifier) to 8, "
             "4 and 2 bits;")
def _shape():
    return measured(_w().shape == (1000, 1280), f"shape {_w().shape}")


@claim("00", "Theory says each extra bit buys about 6.02 dB (uniform noise of variance "
             "$\\Delta^2/12$).")
def _theory():
    per_bit = 20 * np.log10(2)  # Delta halves: the noise power Delta^2/12 quarters
    return measured(abs(per_bit - 6.02) < 0.005, f"20 log10 2 = {per_bit:.4f} dB")


@claim("00", "Compare the 8-bit and 4-bit per-channel rows: four bits apart, about 25 dB apart. A "
             "little more than 4 x 6.02, because these symmetric narrow-range grids have 254 "
             "steps at 8 bits but only 14 at 4: the step grows 254/14 = 18x, and $20\\log_{10} "
             "18.1 = 25.2$ dB.")
def _rows():
    r8, r4 = _sqnr(8, "per-channel"), _sqnr(4, "per-channel")
    steps = [r["qparams"].qmax - r["qparams"].qmin for r in (r8, r4)]
    gap = r8["sqnr_db"] - r4["sqnr_db"]
    predicted = 20 * np.log10(steps[0] / steps[1])
    ok = steps == [254, 14] and abs(gap - predicted) < 0.3 and abs(predicted - 25.2) < 0.05
    return measured(ok,
                    f"{gap:.2f} dB measured, 20 log10(254/14) = {predicted:.2f} dB")


@claim("00", "Drop to 4 bits per-tensor: the grid's step grows 18x (254 steps become 14) and the "
             "SQNR falls by about 25 dB.")
def _drop():
    from qkit.lab import widgets

    ex = widgets.bits_explorer(_w())
    s8 = ex.result["sqnr_db"]
    ex.controls["bits"].value = 4
    drop = s8 - ex.result["sqnr_db"]
    step = float(_sqnr(4, "per-tensor")["qparams"].scale / _sqnr(8, "per-tensor")["qparams"].scale)
    return measured(17.5 < step < 18.5 and 24 < drop < 26,
                    f"step x{step:.2f}, SQNR {s8:.1f} -> {ex.result['sqnr_db']:.1f} dB")


@claim("00", "Switch to per-channel at 4 bits: rows with small weights get fine grids of their "
             "own; SQNR climbs back several dB.")
def _per_channel():
    gain = _sqnr(4, "per-channel")["sqnr_db"] - _sqnr(4, "per-tensor")["sqnr_db"]
    return measured(gain > 3, f"+{gain:.1f} dB")


@claim("00", "Untick symmetric: this matrix is nearly centred on zero, so asymmetric buys under 2 "
             "dB here.")
def _asymmetric():
    gains = {(b, g): _sqnr(b, g, False)["sqnr_db"] - _sqnr(b, g)["sqnr_db"]
             for b in (4, 8) for g in ("per-tensor", "per-channel")}
    mean = float(_w().mean() / np.abs(_w()).max())
    return measured(all(0 <= v < 2 for v in gains.values()) and abs(mean) < 0.01,
                    f"gains {', '.join(f'{b}b {g} {v:+.2f}' for (b, g), v in gains.items())} dB; "
                    f"mean/max {mean:+.4f}")


@claim("00", "The kit's MNIST CNN (trained by python -m qkit train mnist-cnn, 98.8% on 1,000 "
             "held-out digits) converted by qkit.engine: BatchNorm folded, activations "
             "calibrated, int8 weights per channel, and every layer run on qkit's integer kernels "
             "with uint8 between layers.")
def _mnist():
    import torch

    from qkit import data
    from qkit.models import mnist_cnn

    split = data.mnist5k()
    with torch.no_grad():
        pred = mnist_cnn.load()(mnist_cnn.to_input(split["x_test"])).numpy().argmax(1)
    acc = float((pred == split["y_test"]).mean())
    return measured(len(pred) == 1000 and round(acc, 3) == 0.988, f"{acc:.1%} on {len(pred)}")


@claim("00", "int8 stores weights in ~25% of the fp32 bytes, int4 in ~12.5% (plus small scales).")
def _bytes():
    r8, r4 = (_sqnr(b, "per-channel") for b in (8, 4))
    f8, f4 = (r["bytes"] / r["fp32_bytes"] for r in (r8, r4))
    return measured(0.25 <= f8 < 0.26 and 0.125 <= f4 < 0.13, f"{f8:.2%}, {f4:.2%}")


@claim("00", "Each bit is worth about 6 dB of SQNR; finer granularity (per-channel, per-group) "
             "buys back SQNR at low bits.")
def _granularity():
    s = [_sqnr(4, g)["sqnr_db"] for g in ("per-tensor", "per-channel", "per-group (64)")]
    per_bit = (_sqnr(8, "per-channel")["sqnr_db"] - _sqnr(4, "per-channel")["sqnr_db"]) / 4
    return measured(5.5 < per_bit < 7 and s[0] < s[1] < s[2],
                    f"{per_bit:.2f} dB/bit; 4-bit tensor/channel/group {s[0]:.1f}/{s[1]:.1f}/"
                    f"{s[2]:.1f} dB")


@claim("00", "qkit's integer results are exact: the fast kernel and the textbook formula agree to "
             "the last bit.")
def _exact():
    from qkit import kernels, reference
    from qkit.core.qparams import qparams_from_tensor

    w_q = kernels.quantize(_w(), qparams_from_tensor(_w(), signed=True, symmetric=True,
                                                       narrow_range=True, axis=0))
    x_q = np.random.default_rng(0).integers(0, 256, size=(64, 1280), dtype=np.uint8)
    same = np.array_equal(kernels.gemm(x_q, w_q), reference.gemm(x_q, w_q))
    return measured(same, f"{64 * 1000:,} int32 outputs identical: {same}")
