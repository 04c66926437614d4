"""Figures of signals, grids and their error (notebooks 00-03).

Each function draws on the axes it is given (or new ones) and returns its numbers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def weights_and_error(report: dict, w, axes=None):
    """Left: the weight histogram with the integer grid's clip range. Right: the error histogram."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    ax_w, ax_e = axes
    w = np.asarray(w).ravel()
    qp = report["qparams"]
    ax_w.hist(w, bins=200, color="tab:blue", log=True)
    if qp.scale.size == 1:
        lo = float((qp.qmin - qp.zero_point) * qp.scale)
        hi = float((qp.qmax - qp.zero_point) * qp.scale)
        for v in (lo, hi):
            ax_w.axvline(v, color="tab:red", ls="--", lw=1)
    ax_w.set(title=f"weights ({w.size:,} values)", xlabel="value", ylabel="count (log)")
    err = report["error"].ravel()
    ax_e.hist(err, bins=101, color="tab:orange")
    ax_e.set(title=f"{report['bits']}-bit {report['granularity']}: SQNR {report['sqnr_db']:.1f} dB",
             xlabel="w - dequantize(quantize(w))", ylabel="count")
    ax_w.figure.tight_layout()
    return {"sqnr_db": report["sqnr_db"], "max_abs_error": report["max_abs_error"]}


def range_mapping(report: dict, x, ax=None):
    """The data's histogram on the float axis, the integer grid's levels and its clip range."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.2))
    x = np.asarray(x).ravel()
    ax.hist(x, bins=200, color="tab:blue", alpha=0.8)
    lo, hi = report["grid"]
    half = report["scale"] / 2  # within half a step of the grid's end a value rounds onto it
    if x.min() < lo - half:  # red only where data really is clipped
        ax.axvspan(x.min(), lo - half, color="tab:red", alpha=0.12)
    if x.max() > hi + half:
        ax.axvspan(hi + half, x.max(), color="tab:red", alpha=0.12)
    n_levels = report["qmax"] - report["qmin"] + 1
    if n_levels <= 64:  # draw every level; at 8 bits they would merge into a band
        levels = (np.arange(report["qmin"], report["qmax"] + 1) - report["zero_point"])
        for v in levels * report["scale"]:
            ax.axvline(v, color="black", lw=0.6, alpha=0.5)
    ax.axvline(0.0, color="tab:green", lw=1.5)
    ax.set(title=f"scale {report['scale']:.4g}, zero point {report['zero_point']}, "
                 f"levels from {lo:.3g} to {hi:.3g} ({n_levels} levels)", xlabel="real value",
           ylabel="count")
    ax.figure.tight_layout()
    return {k: report[k] for k in ("scale", "zero_point", "sqnr_db", "clipped_fraction")}


def channel_ranges(report: dict, ax=None):
    """Each output channel's [min, max] side by side, and its SQNR under both granularities."""
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(11, 3.2))
    ranges = report["ranges"]
    idx = np.arange(len(ranges))
    ax[0].vlines(idx, ranges[:, 0], ranges[:, 1], color="tab:blue", lw=2)
    amax = np.abs(ranges).max()
    ax[0].axhline(amax, color="tab:red", ls="--", lw=1, label="per-tensor grid edge")
    ax[0].axhline(-amax, color="tab:red", ls="--", lw=1)
    ax[0].set(title="weight range of each output channel", xlabel="channel", ylabel="value")
    ax[0].legend(loc="lower right", fontsize=8)
    for name, color in (("per-tensor", "tab:red"), ("per-channel", "tab:green")):
        s = np.clip(report[name]["channel_sqnr_db"], -10, 80)
        ax[1].plot(idx, s, ".", color=color, label=f"{name}: {report[name]['sqnr_db']:.1f} dB")
    ax[1].set(title="SQNR of each channel", xlabel="channel", ylabel="dB")
    ax[1].legend(fontsize=8)
    ax[0].figure.tight_layout()
    return {"per_tensor": report["per-tensor"]["sqnr_db"],
            "per_channel": report["per-channel"]["sqnr_db"]}


def observer_clips(x, clips: dict, ax=None):
    """Histogram (log) of activations with each observer's clip range drawn over it."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.2))
    ax.hist(np.asarray(x).ravel(), bins=300, color="tab:gray", log=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, (lo, hi)), color in zip(clips.items(), colors, strict=False):
        ax.axvline(lo, color=color, lw=1.5, label=name)
        ax.axvline(hi, color=color, lw=1.5)
    ax.legend(fontsize=8, ncols=len(clips))
    ax.set(title="activations and the ranges the observers choose", xlabel="value",
           ylabel="count (log)")
    ax.figure.tight_layout()
    return clips


def error_histogram(stats: dict, ax=None):
    """Histogram of the quantization error (as a density) against the uniform model's."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    e, step = stats["error"], stats["step"]
    inside = e[np.abs(e) <= step]
    ax.hist(inside, bins=60, density=True, color="tab:orange", alpha=0.8, label="measured")
    ax.hlines(1 / step, -step / 2, step / 2, color="black", lw=2, label="uniform model")
    ax.set(title=f"{stats['bits']} bits: error / (Δ²/12) = "
                 f"{stats['variance'] / stats['uniform_variance']:.2f}, mean {stats['mean']:.2g}",
           xlabel="x̂ - x", ylabel="density")
    ax.legend(fontsize=8)
    return {"variance_ratio": stats["variance"] / stats["uniform_variance"],
            "mean": stats["mean"], "sqnr_db": stats["sqnr_db"]}


def sqnr_curve(bits, measured, current: int | None = None, ax=None, label="measured"):
    """Measured SQNR against bits, with the 6.02·b + 1.76 dB line."""
    from qkit.core.metrics import theoretical_sqnr_db

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    bits = np.asarray(bits)
    ax.plot(bits, measured, "o-", label=label)
    ax.plot(bits, [theoretical_sqnr_db(b) for b in bits], "k--", label="6.02 b + 1.76 dB")
    if current is not None:
        ax.axvline(current, color="tab:red", lw=1)
    ax.set(xlabel="bits", ylabel="SQNR (dB)", title="SQNR per bit")
    ax.legend(fontsize=8)
    return {"slope_db_per_bit": float(np.polyfit(bits, measured, 1)[0])}


def image_and_error(img, shown, bits: int, axes=None):
    """A photo at ``bits`` bits per pixel next to its error against the original."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(7, 3.2), dpi=72)
    err = shown.astype(np.int16) - img.astype(np.int16)
    axes[0].imshow(shown, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(f"{bits} bits: {2 ** bits} grey levels")
    axes[1].imshow(err, cmap="coolwarm", vmin=-64, vmax=64)
    axes[1].set_title("error")
    for a in axes:
        a.axis("off")
    axes[0].figure.tight_layout()
    return {"max_abs_error": int(np.abs(err).max())}


def fixed_point_difference(sweep: dict, ax=None):
    """Fixed-point requantization minus exact rounding across a sweep of accumulators
    (`qkit.topics.arithmetic.requant_sweep`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.0))
    ax.plot(sweep["acc"], sweep["difference"], ".", ms=2)
    ax.set(title=f"m = {sweep['m']:.6g} = {sweep['m0']} x 2^({sweep['shift']} - 31): fixed "
                 "point minus exact rounding", xlabel="accumulator", ylabel="difference")
    ax.figure.tight_layout()
    return {"max_diff": sweep["max_diff"]}


def activation_table(t: dict, axes=None):
    """A lookup-table activation (`qkit.topics.arithmetic.activation_table`): the table itself
    (uint8 in, uint8 out) and its error against the float function, in output steps."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    ax, err = axes
    ax.plot(t["q"], t["table"], ".", ms=3)
    ax.set(title=f"{t['fn']}: the 256 entries ({t['distinct']} distinct outputs)",
           xlabel=f"input code q (scale {t['in_grid'][0]:.4g}, zero point {t['in_grid'][1]})",
           ylabel=f"T[q] (scale {t['out_grid'][0]:.4g}, zero point {t['out_grid'][1]})")
    steps = (t["y_table"] - t["y_float"]) / t["out_grid"][0]
    err.plot(t["x"], steps, ".", ms=3)
    err.axhline(0.5, color="0.6", lw=0.8, ls="--")
    err.axhline(-0.5, color="0.6", lw=0.8, ls="--")
    err.set(title=f"table minus float {t['fn']}: within {t['max_error_steps']:.2f} steps"
                  + (f" ({t['saturated']} beyond the grid)" if t["saturated"] else ""),
            xlabel="input value", ylabel="output steps")
    ax.figure.tight_layout()
    return {"distinct": t["distinct"], "max_error_steps": t["max_error_steps"]}
