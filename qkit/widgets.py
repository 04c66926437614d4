"""Widget explorers: controls around the pure functions of `qkit.compare` and `qkit.plots`.

Every explorer keeps its latest numbers on ``.result`` and its figure on
``.figure`` so tests (and curious students) can read them without a browser.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from qkit import kernels
from qkit.compare import GRANULARITIES, quantize_report
from qkit.plots import weights_and_error
from qkit.qparams import qparams_from_range


class Explorer(W.VBox):
    """Controls on top, a redrawn figure below; ``draw(**values) -> (figure, numbers)``."""

    def __init__(self, controls: dict, draw, caption: str = ""):
        self.controls, self.draw = controls, draw
        self.out = W.Output()
        self.label = W.HTML()
        self.result, self.figure = None, None
        for c in controls.values():
            c.observe(self._update, names="value")
        super().__init__([W.HBox(list(controls.values())), self.label, self.out])
        self.caption = caption
        self._update()

    def _update(self, change=None):
        values = {k: c.value for k, c in self.controls.items()}
        self.figure, self.result = self.draw(**values)
        # closed for pyplot (the Figure object stays usable): otherwise the inline backend would
        # show it a second time, below the widget, when the cell finishes
        plt.close(self.figure)
        self.label.value = self.caption.format(**self.result) if self.caption else ""
        with self.out:
            self.out.clear_output(wait=True)
            display(self.figure)


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
    from qkit.mapping import map_range
    from qkit.plots import range_mapping

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
    from qkit.mapping import channel_report
    from qkit.plots import channel_ranges

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
    from qkit.observers import OBSERVERS, ACIQObserver, EntropyObserver, MSEObserver

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
    from qkit.plots import observer_clips

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
    from qkit.noise import error_stats, sqnr_vs_bits
    from qkit.plots import error_histogram, sqnr_curve

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
    from qkit.noise import image_at_bits

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
        from qkit.metrics import sqnr_db

        return fig, {"sqnr_db": sqnr_db(img.astype(np.float32), shown.astype(np.float32))}

    return Explorer(controls, draw, "SQNR <b>{sqnr_db:.1f} dB</b>")


def requant_explorer() -> Explorer:
    """A real multiplier m becomes M0 * 2^(shift-31): watch fixed point against exact rounding."""
    from fractions import Fraction

    from qkit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

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
    from qkit import speed

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
