"""Figures of real models and what quantization does to them (notebooks 04-10).

Each function draws on the axes it is given (or new ones) and returns its numbers (or its
axes). The widgets of `qkit.lab.widgets` and the notebooks call these; nothing else draws.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def speed_bars(measured: dict, shape, threads: int, peak_gops=None, ax=None):
    """GOP/s of each GEMM version on one shape (log axis: a GEMV and a GEMM differ 100-fold),
    with this CPU's int8 peak for ``threads`` cores. ``measured`` maps a name to GOP/s, or to
    (GOP/s, threads it ran on); a bar that ran on fewer threads says so."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.2))
    names = list(measured)
    pairs = [measured[x] if isinstance(measured[x], tuple) else (measured[x], threads)
             for x in names]
    values = [g for g, _ in pairs]
    labels = [f"{x} (1 thread)" if t < threads else x for x, (_, t) in zip(names, pairs,
                                                                         strict=True)]
    ax.barh(labels, values, color="tab:blue")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.3g}", va="center", fontsize=8)
    ax.set_xscale("log")
    if peak_gops:
        label = f"int8 peak of {threads} core{'s' if threads > 1 else ''} (measured)"
        ax.axvline(peak_gops * threads, color="tab:red", ls="--", label=label)
        ax.legend(fontsize=8, loc="lower right")
    m, k, n = shape
    ax.set(xlabel="GOP/s (log scale)", title=f"({m} x {k}) @ ({k} x {n}), up to {threads} "
                                              f"thread{'s' if threads > 1 else ''}")
    ax.figure.tight_layout()
    return ax


def layer_sqnr_bars(layers: list, title: str, ax=None):
    """SQNR of each layer's integer output against the float model, in execution order."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.0))
    ax.bar([n for n, _ in layers], [v for _, v in layers], color="tab:blue")
    ax.set(ylabel="SQNR vs float (dB)", title=title)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.figure.tight_layout()
    return ax


def layer_sqnr_lines(by_scheme: dict, title: str, ax=None):
    """Per-layer SQNR curves of several schemes on one model (``{scheme: [(layer, dB)]}``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 3.2))
    for name, rows in by_scheme.items():
        ax.plot([v for _, v in rows], label=f"{name}: output {rows[-1][1]:.1f} dB")
    ax.set(xlabel="layer (execution order)", ylabel="SQNR vs float (dB)", title=title)
    ax.legend(fontsize=8)
    return {name: rows[-1][1] for name, rows in by_scheme.items()}


def ste_staircase(picture: dict, axes=None):
    """Fake quantization forward (a staircase) and its straight-through gradient
    (`qkit.topics.qat.ste_picture`)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 2.8))
    x = picture["x"]
    axes[0].plot(x, x, "k:", lw=1, label="identity")
    axes[0].plot(x, picture["y"], label=f"fake_quant(x), {picture['bits']} bits")
    axes[0].set(title="forward: a staircase", xlabel="x")
    axes[0].legend(fontsize=8)
    axes[1].plot(x, picture["grad"], color="tab:orange")
    axes[1].set(title="backward (STE): 1 inside the range, 0 when clipped", xlabel="x",
                ylim=(-0.1, 1.2))
    return axes


def grid_levels(w, dequantized: dict, sqnr: dict, title: str, axes=None):
    """The weights' histogram (grey) and where each grid puts its levels (red), per grid."""
    if axes is None:
        _, axes = plt.subplots(1, len(dequantized), figsize=(12, 2.8), sharey=True)
    lim = float(np.abs(w).max())
    for ax, (grid, w_hat) in zip(axes, dequantized.items(), strict=True):
        ax.hist(np.asarray(w).ravel(), bins=120, range=(-lim, lim), color="0.75", log=True)
        vals, counts = np.unique(w_hat, return_counts=True)
        if vals.size <= 64:
            ax.vlines(vals, 1, counts, color="tab:red", lw=1.2)
        ax.set_title(f"{grid}: {sqnr[grid]:.1f} dB", fontsize=10)
    axes[0].set_ylabel("count (log)")
    axes[0].figure.suptitle(title, fontsize=10)
    axes[0].figure.tight_layout()
    return axes


def qat_curves(row: dict, fp32: float, layer: str, axes=None):
    """One bit width of the QAT study: the training curve against fp32 and PTQ, and the steps
    LSQ learned per output channel against PTQ's absmax steps."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.0))
    acc = row["curves"]["test_accuracy"]
    axes[0].plot(range(len(acc)), acc, "o-", label="QAT (fake quant)")
    axes[0].axhline(fp32, color="k", ls=":", label="fp32")
    axes[0].axhline(row["ptq_integer"], color="tab:red", ls="--", label="PTQ (integer engine)")
    axes[0].set(xlabel="epoch", ylabel="test accuracy", title=f"W{row['bits']}A8",
                ylim=(max(0.0, min(acc + [row["ptq_integer"]]) - 0.02), 1.0))
    axes[0].legend(fontsize=8, loc="lower right")
    learned = np.array(row["weight_steps"][layer])
    ptq = np.array(row["ptq_weight_steps"][layer])
    axes[1].plot(ptq, learned, ".", ms=5)
    top = float(max(ptq.max(), learned.max())) * 1.05
    axes[1].plot([0, top], [0, top], "k:", lw=1)
    axes[1].set(xlabel="PTQ step (absmax / qmax)", ylabel="LSQ learned step",
                title=f"{layer}: one point per output channel")
    axes[0].figure.tight_layout()
    return {"ratio": float(np.median(learned / ptq))}


def allocation(layers: list, bits: dict, points: list, front: list, point: dict, axes=None):
    """Bits per layer of one allocation, and its measured (bytes, accuracy) against the other
    allocations and their Pareto front."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.0))
    axes[0].bar(layers, [bits[n] for n in layers], color="tab:blue")
    axes[0].set(ylabel="weight bits", title="allocation", ylim=(0, 8.5))
    axes[0].tick_params(axis="x", labelrotation=30, labelsize=8)
    axes[1].plot([q["bytes"] / 1e3 for q in points], [q["accuracy"] for q in points], "o",
                 color="0.7", label="measured allocations")
    axes[1].plot([q["bytes"] / 1e3 for q in front], [q["accuracy"] for q in front], "-",
                 color="tab:green", label="Pareto front")
    axes[1].plot([point["bytes"] / 1e3], [point["accuracy"]], "*", color="tab:red", ms=14,
                 label="this budget")
    axes[1].set(xlabel="weight kB", ylabel="test accuracy", ylim=(0.9, 1.0))
    axes[1].legend(fontsize=8, loc="lower right")
    axes[0].figure.tight_layout()
    return axes


def energy_bars(estimates: dict, title: str, ax=None):
    """Energy per inference of each precision, stacked by arithmetic / weights / activations
    (`qkit.topics.energy.compare_precisions`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 2.8))
    left = np.zeros(len(estimates))
    for part, color in (("arithmetic_uj", "tab:blue"), ("weights_uj", "tab:orange"),
                        ("activations_uj", "tab:green")):
        vals = np.array([e[part] for e in estimates.values()])
        ax.barh(list(estimates), vals, left=left, color=color, label=part[:-3])
        left += vals
    ax.set(xlabel="microjoules per inference (estimate)", title=title)
    ax.legend(fontsize=8, loc="lower right")
    ax.figure.tight_layout()
    return ax


def channel_smoothing(x_absmax, w, s, layer: str, axes=None, a_bits: int | None = None):
    """One layer's per-input-channel ranges of activations and weights before and after
    SmoothQuant's factors ``s`` (`qkit.topics.smoothquant.smoothing_factors`). With ``a_bits``,
    the step of an ``a_bits`` grid over +-max|x / s| (dotted): a channel below it gets at most
    a level or two."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.0), sharex=True)
    axes[0].plot(x_absmax, lw=0.8, color="tab:red", label="before")
    axes[0].plot(x_absmax / s, lw=0.8, color="tab:blue", label="after  x / s")
    title = f"layer {layer}: max |x| per input channel"
    if a_bits is not None:
        step = 2 * float(np.max(x_absmax / s)) / (2**a_bits - 1)
        axes[0].axhline(step, color="k", ls=":", lw=1, label=f"one A{a_bits} step (after)")
        title += f", A{a_bits}"
    axes[0].set(title=title, xlabel="channel")
    axes[0].legend(fontsize=8)
    axes[1].plot(np.abs(w).max(axis=0), lw=0.8, color="tab:red", label="before")
    axes[1].plot(np.abs(w * s).max(axis=0), lw=0.8, color="tab:blue", label="after  W s")
    axes[1].set(title="max |W| per input channel", xlabel="channel")
    axes[1].legend(fontsize=8)
    axes[0].figure.tight_layout()
    return axes


def sensitivity_bars(sens: dict, ax=None, top: int | None = None):
    """Output SQNR with only one layer quantized, per layer and bit width (`qkit.topics.mixed`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3))
    names = sens["layers"]
    if top is not None:  # the most sensitive layers at the lowest bit width
        names = sorted(names, key=lambda n: sens["sqnr_db"][n][0])[:top]
    x = np.arange(len(names))
    width = 0.8 / len(sens["choices"])
    for i, b in enumerate(sens["choices"]):
        ax.bar(x + i * width, [sens["sqnr_db"][n][i] for n in names], width, label=f"{b} bits")
    ax.set_xticks(x + 0.4 - width / 2, names, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="output SQNR (dB)", title="only this layer quantized")
    ax.legend(fontsize=8, ncol=len(sens["choices"]))
    return ax
