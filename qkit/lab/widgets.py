"""Widget explorers: controls around the pure functions of `qkit.topics.compare` and `qkit.lab.plots`.

Every explorer keeps its latest numbers on ``.result`` and its figure on
``.figure`` so tests (and curious students) can read them without a browser.
"""

from __future__ import annotations

import io

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from qkit import kernels
from qkit.core.qparams import qparams_from_range
from qkit.lab.plots import weights_and_error
from qkit.topics.compare import GRANULARITIES, quantize_report


class Explorer(W.VBox):
    """Controls on top, a redrawn figure below; ``draw(**values) -> (figure, numbers)``.

    The figure is shown as a PNG in an ``ipywidgets.Image``: updating it is one property
    change. (Capturing ``display(fig)`` in an ``Output`` widget made Voila's executor wait
    forever on some renders; an Image involves no output capture at all.)
    """

    def __init__(self, controls: dict, draw, caption: str = ""):
        self.controls, self.draw = controls, draw
        self.image = W.Image(format="png")
        self.label = W.HTML()
        self.result, self.figure = None, None
        for c in controls.values():
            c.observe(self._update, names="value")
        super().__init__([W.HBox(list(controls.values())), self.label, self.image])
        self.caption = caption
        self._update()

    def _update(self, change=None):
        values = {k: c.value for k, c in self.controls.items()}
        self.figure, self.result = self.draw(**values)
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", bbox_inches="tight")
        # closed for pyplot (the Figure object stays usable): otherwise the inline backend would
        # show it a second time, below the widget, when the cell finishes
        plt.close(self.figure)
        self.label.value = self.caption.format(**self.result) if self.caption else ""
        self.image.value = buf.getvalue()


def bits_explorer(w) -> Explorer:
    """Bits, granularity and symmetry of a weight matrix's int grid: size and error, live."""
    controls = {
        "bits": W.IntSlider(value=8, min=2, max=8, description="bits", continuous_update=False),
        "granularity": W.ToggleButtons(options=list(GRANULARITIES), value="per-tensor"),
        "symmetric": W.Checkbox(value=True, description="symmetric"),
    }

    def draw(bits, granularity, symmetric):
        report = quantize_report(w, bits, granularity, symmetric)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        numbers = weights_and_error(report, w, axes)
        numbers.update(bytes=report["bytes"], fp32_bytes=report["fp32_bytes"])
        return fig, numbers

    caption = ("<b>{bytes:,}</b> bytes (fp32: {fp32_bytes:,}) &nbsp; SQNR <b>{sqnr_db:.1f} dB</b>"
               " &nbsp; max |error| {max_abs_error:.4f}")
    return Explorer(controls, draw, caption)


def range_explorer(x) -> Explorer:
    """Bits, signedness, symmetry, narrow range and clipping for the data ``x``, live."""
    from qkit.lab.plots import range_mapping
    from qkit.topics.mapping import map_range

    controls = {
        "bits": W.IntSlider(value=4, min=2, max=8, description="bits", continuous_update=False),
        "signed": W.Checkbox(value=False, description="signed"),
        "symmetric": W.Checkbox(value=False, description="symmetric"),
        "narrow_range": W.Checkbox(value=False, description="narrow range"),
        "clip_percent": W.FloatSlider(value=100.0, min=90.0, max=100.0, step=0.1,
                                      description="keep %", continuous_update=False),
    }

    def draw(bits, signed, symmetric, narrow_range, clip_percent):
        report = map_range(x, bits, signed, symmetric, narrow_range, clip_percent)
        fig, ax = plt.subplots(figsize=(10, 3.2))
        numbers = range_mapping(report, x, ax)
        numbers.update(rounding_mse=report["rounding_mse"], clipping_mse=report["clipping_mse"])
        return fig, numbers

    caption = ("SQNR <b>{sqnr_db:.1f} dB</b> &nbsp; rounding MSE {rounding_mse:.3g} &nbsp; "
               "clipping MSE {clipping_mse:.3g} &nbsp; clipped {clipped_fraction:.2%}")
    return Explorer(controls, draw, caption)


def granularity_explorer(weights: dict) -> Explorer:
    """Pick a real weight tensor and a bit width: per-tensor vs per-channel, channel by channel."""
    from qkit.lab.plots import channel_ranges
    from qkit.topics.mapping import channel_report

    controls = {
        "layer": W.Dropdown(options=list(weights), description="layer"),
        "bits": W.IntSlider(value=8, min=2, max=8, description="bits", continuous_update=False),
    }

    def draw(layer, bits):
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.2))
        return fig, channel_ranges(channel_report(weights[layer], bits), ax)

    return Explorer(controls, draw, "SQNR per-tensor <b>{per_tensor:.1f} dB</b>, per-channel "
                                    "<b>{per_channel:.1f} dB</b>")


def observer_ranges(x, bits: int = 8) -> dict:
    """The range each calibration observer picks for ``x`` and the MSE of that grid."""
    from qkit.core.observers import OBSERVERS, ACIQObserver, EntropyObserver, MSEObserver

    makers = {"min-max": OBSERVERS["minmax"], "percentile 99.99": OBSERVERS["percentile"],
              "MSE": lambda: MSEObserver(bits), "KL (TensorRT)": lambda: EntropyObserver(bits),
              "ACIQ Laplace": lambda: ACIQObserver(bits, "laplace")}
    signed = bool(np.min(x) < 0)
    out = {}
    for name, make in makers.items():
        lo, hi = make().update(x).range()
        qp = qparams_from_range(lo, hi, bits=bits, signed=signed, symmetric=signed)
        err = np.asarray(x, np.float64) - kernels.fake_quantize(x, qp)
        out[name] = {"range": (float(lo), float(hi)), "mse": float(np.mean(err**2))}
    return out


def observer_explorer(x) -> Explorer:
    """Real activations with the clip points of min-max, percentile, MSE, KL and ACIQ."""
    from qkit.lab.plots import observer_clips

    controls = {"bits": W.IntSlider(value=8, min=2, max=8, description="bits",
                                    continuous_update=False)}

    def draw(bits):
        ranges = observer_ranges(x, bits)
        fig, ax = plt.subplots(figsize=(10, 3.2))
        observer_clips(x, {k: v["range"] for k, v in ranges.items()}, ax)
        best = min(ranges, key=lambda k: ranges[k]["mse"])
        table = " &nbsp; ".join(f"{k}: {v['mse']:.3g}" for k, v in ranges.items())
        return fig, {"ranges": ranges, "best": best, "table": table}

    return Explorer(controls, draw, "MSE at this bit width: {table} &nbsp; best: <b>{best}</b>")


def noise_explorer(signals: dict) -> Explorer:
    """Pick a real signal, a bit width and a rounding mode: the error against its theory."""
    from qkit.lab.plots import error_histogram, sqnr_curve
    from qkit.topics.noise import error_stats, sqnr_vs_bits

    curves = {name: sqnr_vs_bits(x) for name, x in signals.items()}
    controls = {
        "signal": W.Dropdown(options=list(signals), description="signal"),
        "bits": W.IntSlider(value=4, min=2, max=10, description="bits", continuous_update=False),
        "rounding": W.Dropdown(options=["half_even", "floor", "stochastic"],
                               description="rounding"),
    }

    def draw(signal, bits, rounding):
        stats = error_stats(signals[signal], bits, rounding)
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.2))
        numbers = error_histogram(stats, ax[0])
        numbers.update(sqnr_curve(*curves[signal], current=bits, ax=ax[1], label=signal))
        numbers["theory_db"] = stats["theory_db"]
        fig.tight_layout()
        return fig, numbers

    caption = ("SQNR <b>{sqnr_db:.1f} dB</b> (theory {theory_db:.1f}) &nbsp; error variance / "
               "(Δ²/12) = {variance_ratio:.2f} &nbsp; mean error {mean:.3g} &nbsp; slope "
               "{slope_db_per_bit:.2f} dB/bit")
    return Explorer(controls, draw, caption)


def image_explorer(img) -> Explorer:
    """A real photo at 1..8 bits per pixel, next to its error."""
    from qkit.topics.noise import image_at_bits

    controls = {"bits": W.IntSlider(value=3, min=1, max=8, description="bits",
                                    continuous_update=False)}

    def draw(bits):
        shown = image_at_bits(img, bits) if bits > 1 else (img >= 128).astype(np.uint8) * 255
        err = shown.astype(np.int16) - img.astype(np.int16)
        fig, ax = plt.subplots(1, 2, figsize=(7, 3.2), dpi=72)
        ax[0].imshow(shown, cmap="gray", vmin=0, vmax=255)
        ax[0].set_title(f"{bits} bits: {2 ** bits} grey levels")
        ax[1].imshow(err, cmap="coolwarm", vmin=-64, vmax=64)
        ax[1].set_title("error")
        for a in ax:
            a.axis("off")
        fig.tight_layout()
        from qkit.core.metrics import sqnr_db

        return fig, {"sqnr_db": sqnr_db(img.astype(np.float32), shown.astype(np.float32))}

    return Explorer(controls, draw, "SQNR <b>{sqnr_db:.1f} dB</b>")


def requant_explorer() -> Explorer:
    """A real multiplier m becomes M0 * 2^(shift-31): watch fixed point against exact rounding."""
    from fractions import Fraction

    from qkit.core.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

    controls = {
        "log10_m": W.FloatSlider(value=-2.5, min=-6.0, max=0.5, step=0.05,
                                 description="log10 m", continuous_update=False),
        "acc": W.IntSlider(value=12345, min=-200_000, max=200_000, step=1,
                           description="int32 acc", continuous_update=False),
    }

    def draw(log10_m, acc):
        m = 10.0**log10_m
        m0, shift = quantize_multiplier(m)
        sweep = np.arange(acc - 2000, acc + 2001)
        fixed = multiply_by_quantized_multiplier(sweep, m0, shift).astype(np.int64)
        exact = np.floor(sweep * m + 0.5)  # round half up: a reference in float64
        fig, ax = plt.subplots(figsize=(10, 3.0))
        ax.plot(sweep, fixed - exact, ".", ms=2)
        ax.set(title=f"m = {m:.6g} = {m0} x 2^({shift} - 31): fixed point minus exact rounding",
               xlabel="accumulator", ylabel="difference")
        fig.tight_layout()
        value = int(multiply_by_quantized_multiplier(acc, m0, shift))
        exact_value = Fraction(acc) * Fraction(m)
        return fig, {"m0": m0, "shift": shift, "fixed": value,
                     "exact": float(exact_value), "max_diff": int(np.abs(fixed - exact).max())}

    caption = ("M0 = <b>{m0}</b>, shift = <b>{shift}</b> &nbsp; acc x m = {exact:.3f} -> fixed "
               "point <b>{fixed}</b> &nbsp; largest difference in the sweep: {max_diff}")
    return Explorer(controls, draw, caption)


def speed_explorer(peak_gops: float | None = None) -> Explorer:
    """Choose a GEMM shape; measure every version's GOP/s (timings vary from run to run)."""
    from qkit.studies import speed

    controls = {
        "m": W.SelectionSlider(options=[1, 4, 16, 64, 256, 1024], value=256, description="M"),
        "k": W.SelectionSlider(options=[128, 256, 512, 1024, 2048], value=512, description="K"),
        "n": W.SelectionSlider(options=[128, 256, 512, 1024, 2048], value=512, description="N"),
    }
    for c in controls.values():
        c.continuous_update = False

    def draw(m, k, n):
        measured = speed.gops(m, k, n)
        fig, ax = plt.subplots(figsize=(9, 3.0))
        names = list(measured)
        ax.barh(names, [measured[x] for x in names], color="tab:blue")
        if peak_gops:
            ax.axvline(peak_gops, color="tab:red", ls="--", label="int8 peak, one core")
            ax.legend(fontsize=8)
        ax.set(xlabel="GOP/s", title=f"({m} x {k}) @ ({k} x {n}), 2 threads")
        fig.tight_layout()
        best = max(measured, key=measured.get)
        return fig, {"gops": measured, "best": best,
                     "intensity": speed.arithmetic_intensity(m, k, n, 1, 1)}

    return Explorer(controls, draw, "fastest: <b>{best}</b> &nbsp; int8 arithmetic intensity "
                                    "{intensity:.1f} ops/byte")


# --- notebooks 05-10: real models ----------------------------------------------------------


def ptq_explorer(model, calibration, x_test, y_test, sqnr_images: int = 256) -> Explorer:
    """PTQ of a real CNN on qkit's integer engine: weight bits, observer, granularity and bias
    correction; the SQNR of every layer's output against the float model, and the accuracy."""
    from qkit.engine import IntegerModel, Scheme
    from qkit.topics.compare import layer_sqnr

    controls = {
        "bits": W.IntSlider(value=4, min=2, max=8, description="weight bits",
                            continuous_update=False),
        "observer": W.Dropdown(options=["minmax", "percentile", "mse", "entropy"],
                               description="observer"),
        "per_channel": W.Checkbox(value=True, description="per-channel weights"),
        "bias_correction": W.Checkbox(value=False, description="bias correction"),
    }

    def draw(bits, observer, per_channel, bias_correction):
        im = IntegerModel.from_float(model, calibration, Scheme(bits, per_channel, observer,
                                                                bias_correction))
        layers = layer_sqnr(im, x_test[:sqnr_images])
        acc = float((im(x_test).argmax(1) == y_test).mean())
        fig, ax = plt.subplots(figsize=(10, 3.0))
        ax.bar([n for n, _ in layers], [v for _, v in layers], color="tab:blue")
        ax.set(ylabel="SQNR vs float (dB)", title=f"{im.scheme.label}, {observer} activations:"
               " error accumulates layer by layer")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        fig.tight_layout()
        return fig, {"accuracy": acc, "layers": layers, "last_db": layers[-1][1],
                     "bytes": im.size_bytes()}

    return Explorer(controls, draw, "accuracy <b>{accuracy:.1%}</b> &nbsp; output SQNR "
                                    "<b>{last_db:.1f} dB</b> &nbsp; {bytes:,} bytes")


def grid_explorer(weights: dict) -> Explorer:
    """One real weight tensor through the uniform, k-means, log and NF grids at b bits: where
    each grid puts its levels, and the SQNR each gets."""
    from qkit.formats import nonuniform

    controls = {
        "bits": W.IntSlider(value=3, min=2, max=6, description="bits", continuous_update=False),
        "layer": W.Dropdown(options=list(weights), description="weights"),
        "block": W.Dropdown(options=[("per row", 0), ("blocks of 64", 64)], value=0,
                            description="scales"),
    }

    def draw(bits, layer, block):
        w = weights[layer]
        fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), sharey=True)
        numbers = {}
        lim = float(np.abs(w).max())
        for ax, grid in zip(axes, nonuniform.GRIDS, strict=True):
            r = nonuniform.report(w, grid, bits, block or None)
            w_hat = nonuniform.quantize(w, grid, bits, block or None).dequantize()
            ax.hist(w.ravel(), bins=120, range=(-lim, lim), color="0.75", log=True)
            vals, counts = np.unique(w_hat, return_counts=True)
            if vals.size <= 64:
                ax.vlines(vals, 1, counts, color="tab:red", lw=1.2)
            ax.set_title(f"{grid}: {r['sqnr_db']:.1f} dB", fontsize=10)
            numbers[grid] = r["sqnr_db"]
            numbers[f"{grid}_bpw"] = r["bits_per_weight"]
        axes[0].set_ylabel("count (log)")
        fig.suptitle(f"{layer}: weights (grey) and where each {bits}-bit grid puts them (red)",
                     fontsize=10)
        fig.tight_layout()
        numbers["best"] = max(nonuniform.GRIDS, key=lambda g: numbers[g])
        return fig, numbers

    caption = ("SQNR: uniform <b>{uniform:.1f}</b>, k-means <b>{kmeans:.1f}</b>, log "
               "<b>{log:.1f}</b>, NF <b>{nf:.1f}</b> dB &nbsp; best: <b>{best}</b> &nbsp; "
               "bits/weight with scales: {uniform_bpw:.2f} (k-means {kmeans_bpw:.2f})")
    return Explorer(controls, draw, caption)


def qat_explorer(result: dict) -> Explorer:
    """The precomputed PTQ-vs-QAT study (`qkit.topics.qat.precompute`): training curve at each bit
    width and the step sizes LSQ learned against PTQ's absmax steps."""
    rows = {r["bits"]: r for r in result["rows"]}
    layers = list(next(iter(rows.values()))["weight_steps"])
    controls = {
        "bits": W.SelectionSlider(options=sorted(rows), value=4 if 4 in rows else max(rows),
                                  description="weight bits", continuous_update=False),
        "layer": W.Dropdown(options=layers, description="layer"),
    }

    def draw(bits, layer):
        r = rows[bits]
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.0))
        acc = r["curves"]["test_accuracy"]
        ax[0].plot(range(len(acc)), acc, "o-", label="QAT (fake quant)")
        ax[0].axhline(result["fp32"], color="k", ls=":", label="fp32")
        ax[0].axhline(r["ptq_integer"], color="tab:red", ls="--", label="PTQ (integer engine)")
        ax[0].set(xlabel="epoch", ylabel="test accuracy", title=f"W{bits}A8",
                  ylim=(max(0.0, min(acc + [r["ptq_integer"]]) - 0.02), 1.0))
        ax[0].legend(fontsize=8, loc="lower right")
        learned, ptq = np.array(r["weight_steps"][layer]), np.array(r["ptq_weight_steps"][layer])
        ax[1].plot(ptq, learned, ".", ms=5)
        top = float(max(ptq.max(), learned.max())) * 1.05
        ax[1].plot([0, top], [0, top], "k:", lw=1)
        ax[1].set(xlabel="PTQ step (absmax / qmax)", ylabel="LSQ learned step",
                  title=f"{layer}: one point per output channel")
        fig.tight_layout()
        return fig, {"bits": bits, "ptq": r["ptq_integer"], "qat": r["qat_integer"],
                     "ratio": float(np.median(learned / ptq))}

    caption = ("W{bits}A8 on the integer engine: PTQ <b>{ptq:.1%}</b> &nbsp; QAT <b>{qat:.1%}"
               "</b> &nbsp; median learned / PTQ step: {ratio:.2f} (below 1 = LSQ clips)")
    return Explorer(controls, draw, caption)


def budget_explorer(study: dict, model, calibration, x_test, y_test) -> Explorer:
    """A size budget re-allocates bits per layer (greedy, from measured sensitivities); the
    allocation is then measured on the integer engine and drawn against the Pareto front."""
    from qkit.topics import mixed

    sens = study["sensitivity"]
    front = mixed.pareto_front(study["points"])
    controls = {"budget": W.FloatSlider(value=11.0, min=6.5, max=30.0, step=0.5,
                                        description="budget %", continuous_update=False,
                                        readout_format=".1f")}

    def draw(budget):
        bits = mixed.allocate(sens, budget / 100 * study["fp32_bytes"])
        p = mixed.evaluate_allocation(model, calibration, x_test, y_test, bits, rounds=1)
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.0))
        ax[0].bar(sens["layers"], [bits[n] for n in sens["layers"]], color="tab:blue")
        ax[0].set(ylabel="weight bits", title="allocation", ylim=(0, 8.5))
        ax[0].tick_params(axis="x", labelrotation=30, labelsize=8)
        pts = study["points"]
        ax[1].plot([q["bytes"] / 1e3 for q in pts], [q["accuracy"] for q in pts], "o",
                   color="0.7", label="measured allocations")
        ax[1].plot([q["bytes"] / 1e3 for q in front], [q["accuracy"] for q in front], "-",
                   color="tab:green", label="Pareto front")
        ax[1].plot([p["bytes"] / 1e3], [p["accuracy"]], "*", color="tab:red", ms=14,
                   label="this budget")
        ax[1].set(xlabel="weight kB", ylabel="test accuracy", ylim=(0.9, 1.0))
        ax[1].legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return fig, dict(p, predicted=mixed.predicted_sqnr(sens, bits),
                         fraction=p["bytes"] / study["fp32_bytes"])

    caption = ("<b>{bytes:,}</b> bytes ({fraction:.1%} of fp32) &nbsp; accuracy <b>{accuracy:.1%}"
               "</b> &nbsp; predicted output SQNR {predicted:.1f} dB &nbsp; {latency_ms:.1f} ms "
               "per 256 images")
    return Explorer(controls, draw, caption)


def energy_explorer(counts: dict) -> Explorer:
    """Estimated energy per inference (Horowitz 45 nm) of fp32 / int8 / int4 for each model,
    split into arithmetic, weight traffic and activation traffic."""
    from qkit.topics.energy import compare_precisions

    controls = {
        "dram_pj": W.FloatSlider(value=1950.0, min=1300.0, max=2600.0, step=50.0,
                                 description="DRAM pJ/64b", continuous_update=False),
        "model": W.Dropdown(options=list(counts), description="model"),
        "on_chip": W.Checkbox(value=False, description="weights stay on chip (SRAM)"),
    }

    def draw(dram_pj, model, on_chip):
        e = compare_precisions(counts[model], dram_pj, on_chip)
        fig, ax = plt.subplots(figsize=(9, 2.8))
        left = np.zeros(3)
        for part, color in (("arithmetic_uj", "tab:blue"), ("weights_uj", "tab:orange"),
                            ("activations_uj", "tab:green")):
            vals = np.array([e[p][part] for p in e])
            ax.barh(list(e), vals, left=left, color=color, label=part[:-3])
            left += vals
        ax.set(xlabel="microjoules per inference (estimate)", title=model)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return fig, {"fp32": e["fp32"]["total_uj"], "int8": e["int8"]["total_uj"],
                     "int4": e["int4"]["total_uj"],
                     "ratio": e["fp32"]["total_uj"] / e["int8"]["total_uj"],
                     "weights_share": e["int8"]["weights_uj"] / e["int8"]["total_uj"]}

    caption = ("fp32 <b>{fp32:,.1f}</b> uJ, int8 <b>{int8:,.1f}</b>, int4 <b>{int4:,.1f}</b> "
               "&nbsp; fp32/int8 = {ratio:.1f}x &nbsp; weights are {weights_share:.0%} of int8")
    return Explorer(controls, draw, caption)


def smoothquant_explorer(model, stats: dict, texts: list[str], max_len: int = 64) -> Explorer:
    """SmoothQuant's alpha and the activation bit width on MiniLM: per-channel ranges of one
    layer's input and weight before/after smoothing, and embedding cosine to fp32."""
    from qkit.models import minilm
    from qkit.topics import smoothquant

    ref = minilm.embed(model, texts, max_len)
    plain = {}

    def cosine(m):
        return float((minilm.embed(m, texts, max_len) * ref).sum(axis=1).mean())

    controls = {
        "alpha": W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="alpha",
                               continuous_update=False),
        "a_bits": W.IntSlider(value=6, min=4, max=8, description="act. bits",
                              continuous_update=False),
        "layer": W.Dropdown(options=list(stats), value="1.ffn_in", description="layer"),
    }

    def draw(alpha, a_bits, layer):
        if a_bits not in plain:
            plain[a_bits] = cosine(smoothquant.quantized_model(model, None, w_bits=8,
                                                               a_bits=a_bits))
        smoothed = cosine(smoothquant.quantized_model(model, stats, alpha, 8, a_bits))
        i, name = layer.split(".")
        w = getattr(model.layers[int(i)], name).weight.detach().numpy()
        s = smoothquant.smoothing_factors(stats[layer], w, alpha)
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.0), sharex=True)
        ax[0].plot(stats[layer], lw=0.8, color="tab:red", label="before")
        ax[0].plot(stats[layer] / s, lw=0.8, color="tab:blue", label="after  x / s")
        ax[0].set(title=f"layer {layer}: max |x| per input channel", xlabel="channel")
        ax[0].legend(fontsize=8)
        ax[1].plot(np.abs(w).max(axis=0), lw=0.8, color="tab:red", label="before")
        ax[1].plot(np.abs(w * s).max(axis=0), lw=0.8, color="tab:blue", label="after  W s")
        ax[1].set(title="max |W| per input channel", xlabel="channel")
        ax[1].legend(fontsize=8)
        fig.tight_layout()
        x_ratio = float(stats[layer].max() / np.median(stats[layer]))
        xs = stats[layer] / s
        return fig, {"plain": plain[a_bits], "smoothed": smoothed, "a_bits": a_bits,
                     "before": x_ratio, "after": float(xs.max() / np.median(xs))}

    caption = ("W8A{a_bits} embedding cosine to fp32: plain <b>{plain:.4f}</b>, smoothed "
               "<b>{smoothed:.4f}</b> &nbsp; this input's max/median channel range: "
               "{before:.1f} -> {after:.1f}")
    return Explorer(controls, draw, caption)
