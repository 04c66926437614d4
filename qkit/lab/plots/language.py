"""Figures of notebook 12 (a language model in 4 bits): one GGUF block byte by byte, the RTN
sweep, activation channels, and a generated text scored by the reference."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

FIELD_COLOURS = {"d": "tab:orange", "m": "tab:green", "codes": "tab:blue"}


def block_bytes(view: dict, ax) -> None:
    """The raw bytes of one block as a strip of boxes: scale, minimum, then the codes."""
    raw = view["bytes"]
    scale_bytes = 4 if view["m"] is not None else 2
    for j, byte in enumerate(raw):
        field = "d" if j < 2 else "m" if j < scale_bytes else "codes"
        ax.add_patch(Rectangle((j, 0), 0.95, 1, color=FIELD_COLOURS[field], alpha=0.35))
        ax.text(j + 0.47, 0.5, f"{byte:02X}", ha="center", va="center", fontsize=7,
                family="monospace")
    ax.set_xticks(range(0, raw.size + 1, 2))
    ax.set(xlim=(0, raw.size), ylim=(0, 1), yticks=[],
           xlabel=f"byte of the block ({raw.size} bytes: orange d, green m, blue codes)")


def block_values(view: dict, ax) -> None:
    """The block's 32 weights on the grid its scale (and minimum) make."""
    d, m = view["d"], view["m"] if view["m"] is not None else 0.0
    levels = (np.arange(16) * d + m if view["fmt"] == "q4_1"
              else np.arange(-127, 128) * d)
    lo, hi = float(view["values"].min()), float(view["values"].max())
    for v in levels:
        if lo - 2 * abs(d) <= v <= hi + 2 * abs(d):
            ax.axhline(v, color="0.85", lw=0.6, zorder=0)
    ax.stem(np.arange(32), view["values"], basefmt=" ")
    ax.set(xlabel=f"weight j of the block (row {view['row']}, columns "
                  f"{view['columns'][0]}..{view['columns'][1]})", ylabel="value",
           title=f"{view['tensor']} ({view['fmt']}): grey lines are the block's grid")


def sweep(rows: list[dict], selected: dict, axes) -> None:
    """Perplexity and KL against stored bits per weight for every RTN setting of the sweep,
    one line per group size; the selected setting ringed."""
    groups = sorted({r["group_size"] or 0 for r in rows}, key=lambda g: (g == 0, g))
    for ax, key in zip(axes, ("perplexity", "kl"), strict=True):
        for g in groups:
            for sym, style in ((False, "-o"), (True, ":s")):
                pts = sorted((r["bits_per_weight"], r[key]) for r in rows
                             if (r["group_size"] or 0) == g and r["symmetric"] == sym)
                label = f"{'per channel' if g == 0 else f'g{g}'} {'sym' if sym else 'asym'}"
                ax.plot(*zip(*pts, strict=True), style, ms=3, lw=1, label=label)
        ax.plot(selected["bits_per_weight"], selected[key], "o", ms=12, mfc="none", mec="red",
                mew=2)
        ax.set(yscale="log", xlabel="stored bits per weight (codes + float16 scales)",
               ylabel=key if key == "perplexity" else "KL to the reference (nats per token)")
    axes[0].legend(fontsize=7, ncol=2)


def channel_means(means: np.ndarray, top: np.ndarray, ax, title: str) -> None:
    """``mean |x|`` of every input channel, the top ones in red."""
    ax.bar(np.arange(means.size), means, width=1.0, color="0.5")
    ax.bar(top, means[top], width=3.0, color="red", label=f"top {top.size} channels")
    ax.axhline(float(np.median(means)), color="k", ls=":", lw=1, label="median")
    ax.set(xlabel="input channel", ylabel="mean |x|", yscale="log", title=title)
    ax.legend(fontsize=8)


def token_probabilities(pieces: list[str], probs: np.ndarray, same: np.ndarray, ax,
                        title: str) -> None:
    """The reference's probability of each token a model generated; grey where the model chose
    what the reference would have, red where it went its own way."""
    x = np.arange(len(pieces))
    pieces = [p.replace("\n", "\\n") for p in pieces]
    ax.bar(x, probs, color=np.where(same, "0.6", "tab:red"))
    ax.set_xticks(x, [p if len(p) < 9 else p[:8] + "." for p in pieces], rotation=70,
                  fontsize=7)
    ax.set(ylim=(0, 1.02), ylabel="p_reference(token)", title=title)
