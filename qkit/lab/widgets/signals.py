"""Explorers of notebooks 00-03: bits and granularity, range mapping, observers, noise,
a photo at few bits, fixed-point requantization."""

from __future__ import annotations

import ipywidgets as W

from qkit.lab import plots
from qkit.lab.explorer import Explorer, figure, slider
from qkit.topics import arithmetic, mapping, noise
from qkit.topics.compare import GRANULARITIES, quantize_report


def bits_explorer(w) -> Explorer:
    """Bits, granularity and symmetry of a weight matrix's int grid: size and error, live."""
    controls = {
        "bits": slider(2, 8, 8, "bits"),
        "granularity": W.ToggleButtons(options=list(GRANULARITIES), value="per-tensor"),
        "symmetric": W.Checkbox(value=True, description="symmetric"),
    }

    def draw(bits, granularity, symmetric):
        report = quantize_report(w, bits, granularity, symmetric)
        fig, axes = figure(1, 2)
        numbers = plots.weights_and_error(report, w, axes)
        numbers.update(bytes=report["bytes"], fp32_bytes=report["fp32_bytes"])
        return fig, numbers

    caption = ("<b>{bytes:,}</b> bytes (fp32: {fp32_bytes:,}) &nbsp; SQNR <b>{sqnr_db:.1f} dB</b>"
               " &nbsp; max |error| {max_abs_error:.4f}")
    return Explorer(controls, draw, caption)


def range_explorer(x) -> Explorer:
    """Bits, signedness, symmetry, narrow range and clipping for the data ``x``, live."""
    controls = {
        "bits": slider(2, 8, 4, "bits"),
        "signed": W.Checkbox(value=False, description="signed"),
        "symmetric": W.Checkbox(value=False, description="symmetric"),
        "narrow_range": W.Checkbox(value=False, description="narrow range"),
        "clip_percent": W.FloatSlider(value=100.0, min=90.0, max=100.0, step=0.1,
                                      description="keep %", continuous_update=False),
    }

    def draw(bits, signed, symmetric, narrow_range, clip_percent):
        report = mapping.map_range(x, bits, signed=signed, symmetric=symmetric,
                                   narrow_range=narrow_range, clip_percent=clip_percent)
        fig, ax = figure()
        numbers = plots.range_mapping(report, x, ax)
        numbers.update(rounding_mse=report["rounding_mse"], clipping_mse=report["clipping_mse"],
                       qmin=report["qmin"], qmax=report["qmax"])
        return fig, numbers

    # the codes and zero point are in the caption: with an asymmetric grid, ticking "signed"
    # only relabels the codes (the same levels, the same error), and the caption shows that
    caption = ("codes [{qmin}, {qmax}], zero point {zero_point} &nbsp; SQNR <b>{sqnr_db:.1f} dB"
               "</b> &nbsp; rounding MSE {rounding_mse:.3g} &nbsp; clipping MSE {clipping_mse:.3g}"
               " &nbsp; clipped {clipped_fraction:.2%}")
    return Explorer(controls, draw, caption)


def granularity_explorer(weights: dict) -> Explorer:
    """Pick a real weight tensor and a bit width: per-tensor vs per-channel, channel by channel."""
    controls = {
        "layer": W.Dropdown(options=list(weights), description="layer"),
        "bits": slider(2, 8, 8, "bits"),
    }

    def draw(layer, bits):
        fig, ax = figure(1, 2, (11, 3.2))
        return fig, plots.channel_ranges(mapping.channel_report(weights[layer], bits), ax)

    return Explorer(controls, draw, "SQNR per-tensor <b>{per_tensor:.1f} dB</b>, per-channel "
                                    "<b>{per_channel:.1f} dB</b>")


def observer_explorer(x) -> Explorer:
    """Real activations with the clip points of min-max, percentile, MSE, KL and ACIQ."""
    controls = {"bits": slider(2, 8, 8, "bits")}

    def draw(bits):
        ranges = mapping.observer_ranges(x, bits)
        fig, ax = figure()
        plots.observer_clips(x, {k: v["range"] for k, v in ranges.items()}, ax)
        best = min(ranges, key=lambda k: ranges[k]["mse"])
        table = " &nbsp; ".join(f"{k}: {v['mse']:.3g}" for k, v in ranges.items())
        return fig, {"ranges": ranges, "best": best, "table": table}

    return Explorer(controls, draw, "MSE at this bit width: {table} &nbsp; best: <b>{best}</b>")


def noise_explorer(signals: dict) -> Explorer:
    """Pick a real signal, a bit width and a rounding mode: the error against its theory."""
    curves = {name: noise.sqnr_vs_bits(x) for name, x in signals.items()}
    controls = {
        "signal": W.Dropdown(options=list(signals), description="signal"),
        "bits": slider(2, 10, 4, "bits"),
        "rounding": W.Dropdown(options=["half_even", "floor", "stochastic"],
                               description="rounding"),
    }

    def draw(signal, bits, rounding):
        stats = noise.error_stats(signals[signal], bits, rounding)
        fig, ax = figure(1, 2, (11, 3.2))
        numbers = plots.error_histogram(stats, ax[0])
        numbers.update(plots.sqnr_curve(*curves[signal], current=bits, ax=ax[1], label=signal))
        numbers["theory_db"] = stats["theory_db"]
        fig.tight_layout()
        return fig, numbers

    caption = ("SQNR <b>{sqnr_db:.1f} dB</b> (theory {theory_db:.1f}) &nbsp; error variance / "
               "(Δ²/12) = {variance_ratio:.2f} &nbsp; mean error {mean:.3g} &nbsp; slope "
               "{slope_db_per_bit:.2f} dB/bit")
    return Explorer(controls, draw, caption)


def image_explorer(img) -> Explorer:
    """A real photo at 1..8 bits per pixel, next to its error."""
    controls = {"bits": slider(1, 8, 3, "bits")}

    def draw(bits):
        report = noise.image_report(img, bits)
        fig, ax = figure(1, 2, (7, 3.2), dpi=72)
        plots.image_and_error(img, report["shown"], bits, ax)
        return fig, {"sqnr_db": report["sqnr_db"]}

    return Explorer(controls, draw, "SQNR <b>{sqnr_db:.1f} dB</b>")


def requant_explorer() -> Explorer:
    """A real multiplier m becomes M0 * 2^(shift-31): watch fixed point against exact rounding."""
    controls = {
        "log10_m": W.FloatSlider(value=-2.5, min=-6.0, max=0.5, step=0.05,
                                 description="log10 m", continuous_update=False),
        "acc": W.IntSlider(value=12345, min=-200_000, max=200_000, step=1,
                           description="int32 acc", continuous_update=False),
    }

    def draw(log10_m, acc):
        sweep = arithmetic.requant_sweep(10.0**log10_m, acc)
        fig, ax = figure(size=(10, 3.0))
        plots.fixed_point_difference(sweep, ax)
        return fig, {k: sweep[k] for k in ("m0", "shift", "fixed", "exact", "max_diff")}

    caption = ("M0 = <b>{m0}</b>, shift = <b>{shift}</b> &nbsp; acc x m = {exact:.3f} -> fixed "
               "point <b>{fixed}</b> &nbsp; largest difference in the sweep: {max_diff}")
    return Explorer(controls, draw, caption)
