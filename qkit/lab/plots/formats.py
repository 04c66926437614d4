"""Figures of low-bit float and block formats (notebook 11): a code's bit fields, grids on one
axis, a block against its shared scale, and activations before/after a rotation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

_FIELD_COLOURS = {"s": "tab:red", "e": "tab:blue", "m": "tab:green"}


def bit_fields(fields: dict, fmt, ax=None):
    """The bits of one code as coloured boxes: sign, exponent, mantissa."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.4))
    kinds = ["s"] + ["e"] * fmt.ebits + ["m"] * fmt.mbits
    bits = fields["bits"].replace(".", "")
    for i, (b, kind) in enumerate(zip(bits, kinds, strict=True)):
        ax.add_patch(plt.Rectangle((i, 0), 0.95, 1, color=_FIELD_COLOURS[kind],
                                   alpha=0.85 if b == "1" else 0.25))
        ax.text(i + 0.47, 0.5, b, ha="center", va="center", fontsize=16, color="black")
        ax.text(i + 0.47, -0.25, {"s": "sign", "e": "exp", "m": "man"}[kind], ha="center",
                va="center", fontsize=8)
    ax.set(xlim=(-0.1, len(bits)), ylim=(-0.5, 1.1))
    ax.axis("off")
    ax.set_title(f"{fmt.name}: {fields['formula']} = {fields['value']:.6g}", fontsize=10)
    return ax


def grid_line(fmt_values: dict, mark=None, ax=None, xlabel: str = "value (log scale)"):
    """Positive values of each grid (``{name: values}``) on one log axis, one row each."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 2.2))
    for row, v in enumerate(fmt_values.values()):
        ax.scatter(v, np.full(v.shape, row), marker="|", s=120)
    ax.set_yticks(range(len(fmt_values)), list(fmt_values))
    ax.set_xscale("log")
    if mark is not None:
        ax.axvline(mark, color="black", lw=1, ls=":")
    ax.set(ylim=(-0.6, len(fmt_values) - 0.4), xlabel=xlabel)
    return ax


def block_bars(view: dict, ax=None):
    """A block's values and what the format keeps of them, with each block's ceiling
    (element max x scale)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3))
    i = np.arange(view["x"].size)
    ax.bar(i - 0.2, view["x"], 0.4, label="value", color="tab:gray")
    ax.bar(i + 0.2, view["decoded"], 0.4, label=f"in {view['fmt']}", color="tab:orange")
    b = view["block"]
    for k, c in enumerate(view["ceilings"]):
        lo, hi = k * b - 0.5, min((k + 1) * b, i.size) - 0.5
        ax.hlines([c, -c], lo, hi, colors="tab:red", ls="--", lw=1)
    ax.plot([], [], color="tab:red", ls="--", lw=1, label="largest value the block holds")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set(xlabel="element", ylabel="value")
    return ax


def rotation_panels(before: np.ndarray, after: np.ndarray, axes, hist_ax=None):
    """Per-channel max |x| of activations before and after a rotation (two axes), and on
    ``hist_ax`` the histograms of all their values."""
    for ax, x, title in ((axes[0], before, "as the layer sees them"),
                         (axes[1], after, "after a random Hadamard rotation")):
        m = np.abs(x).max(axis=0)
        ax.bar(np.arange(m.size), m, width=1.0, color="tab:blue")
        ax.set(title=f"{title}: max/median {m.max() / np.median(m):.1f}x", xlabel="channel",
               ylabel="max |x| over tokens")
    top = max(float(np.abs(before).max()), float(np.abs(after).max()))
    for ax in axes[:2]:
        ax.set_ylim(0, top * 1.05)
    if hist_ax is not None:  # the values themselves: the rotation trades a long tail for a bell
        bins = np.linspace(-top, top, 81)
        hist_ax.hist(before.ravel(), bins, histtype="step", label="as is", log=True)
        hist_ax.hist(after.ravel(), bins, histtype="step", label="rotated", log=True)
        hist_ax.set(title="all values (log count)", xlabel="x")
        hist_ax.legend(fontsize=8)
    return axes
