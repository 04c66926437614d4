"""Explorers of notebook 11 (low-bit floats and block scales): edit a code bit by bit, edit a
block and watch its shared scale, rotate real activations with outliers."""

from __future__ import annotations

from functools import cache

import ipywidgets as W
import numpy as np

from qkit.lab.explorer import Explorer, figure
from qkit.lab.plots import formats as P

ELEMENT_MENU = ("fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1")
BLOCK_MENU = ("mxfp4", "mxfp6_e2m3", "mxfp8_e4m3", "mxint8", "nvfp4")


def float_bits_explorer(code: int = 0x38) -> Explorer:
    """One code of a float format, bit by bit: each checkbox flips one bit (bit 7 is the
    leftmost of an 8-bit code; a 6- or 4-bit format uses the low bits only)."""
    from qkit.formats import floats
    from qkit.topics.lowbit import positive_values

    controls = {"fmt": W.Dropdown(options=list(ELEMENT_MENU), value="fp8_e4m3",
                                  description="format")}
    for b in range(7, -1, -1):
        controls[f"b{b}"] = W.Checkbox(value=bool(code >> b & 1), description=f"bit {b}",
                                       indent=False, layout=W.Layout(width="70px"))

    def draw(fmt, **bits):
        f = floats.get_format(fmt)
        c = sum(1 << int(k[1:]) for k, on in bits.items() if on) & (2**f.bits - 1)
        fl = floats.fields(c, f)
        fig, (a0, a1) = figure(2, 1, (10, 3.6), height_ratios=[1, 1.3])
        P.bit_fields(fl, f, a0)
        pos = positive_values(f.name)
        v = abs(fl["value"])
        P.grid_line({f.name: pos}, mark=v if np.isfinite(v) and v > 0 else None, ax=a1,
                    xlabel=f"the {pos.size} positive values of {f.name} (log scale); dotted: "
                           "|this code|")
        fig.tight_layout()
        unused = "" if f.bits == 8 else f" (bits 7..{f.bits} are not part of a {f.bits}-bit code)"
        return fig, {"code": c, "hex": f"0x{c:02X}", "value": fl["value"], "bits": fl["bits"],
                     "formula": fl["formula"], "fmt": f.name, "unused": unused,
                     "max": f.max, "min_subnormal": f.min_subnormal}

    caption = ("{fmt} code {hex} = {bits} -> <b>{value:.6g}</b> &nbsp; ({formula}); largest "
               "finite {max:g}, smallest subnormal {min_subnormal:g}{unused}")
    return Explorer(controls, draw, caption)


def block_explorer(values) -> Explorer:
    """A block of 32 real values in a block format; the sliders set the first four. Watch the
    shared scale follow the block's largest |value|."""
    from qkit.topics.lowbit import block_view

    base = np.asarray(values, np.float32).reshape(-1)[:32].copy()
    if base.size != 32:
        raise ValueError(f"values must hold at least 32 numbers, got {base.size}")
    amax = float(np.abs(base).max()) or 1.0
    step = float(np.float32(amax / 20))
    controls = {"fmt": W.Dropdown(options=list(BLOCK_MENU), value="mxfp4", description="format")}
    for i in range(4):
        controls[f"x{i}"] = W.FloatSlider(value=round(float(base[i]) / step) * step,
                                          min=-6 * amax, max=6 * amax, step=step,
                                          description=f"x[{i}]", continuous_update=False,
                                          readout_format=".3f")

    def draw(fmt, **xs):
        x = base.copy()
        for k, v in xs.items():
            x[int(k[1:])] = v
        view = block_view(x, fmt)
        fig, ax = figure(1, 1, (10, 3.2))
        P.block_bars(view, ax)
        if view["exponents"] is not None:
            how = (f"shared exponent X = {view['exponents'][0]} (floor(log2 amax) - emax), "
                   f"scale 2^{view['exponents'][0]}")
        else:
            how = (f"E4M3 block scales {', '.join(f'{s:.4g}' for s in view['scales'])} "
                   f"(tensor scale {view['tensor_scale']:.3g} included)")
        ax.set_title(f"{view['fmt']}: {how}", fontsize=10)
        return fig, {"fmt": view["fmt"], "amax": view["amax"], "how": how,
                     "sqnr": view["sqnr_db"], "bits": view["bits_per_element"]}

    caption = ("{fmt}: block max |x| {amax:.4g}; {how}; SQNR <b>{sqnr:.1f} dB</b> at "
               "{bits:.2f} bits per element (scales included)")
    return Explorer(controls, draw, caption)


def rotation_explorer(activations: dict) -> Explorer:
    """Real activations (``{name: (tokens, channels)}``) before and after a random Hadamard
    rotation, and the error of one activation quantizer on each."""
    from qkit.topics import rotation

    @cache
    def study(name, seed):
        return rotation.outlier_study(activations[name], seed)

    controls = {
        "seed": W.IntSlider(value=1, min=0, max=9, description="rotation seed",
                            continuous_update=False),
        "name": W.Dropdown(options=list(activations), description="input of"),
        "quantizer": W.Dropdown(options=list(rotation.ACTIVATION_QUANTIZERS),
                                value="int8 per tensor", description="quantizer"),
    }

    def draw(seed, name, quantizer):
        s = study(name, seed)
        fig, axes = figure(1, 4, (16, 3.2))
        P.rotation_panels(s["x"], s["x_rotated"], axes[:2], hist_ax=axes[3])
        names = list(rotation.ACTIVATION_QUANTIZERS)
        y = np.arange(len(names))
        axes[2].barh(y - 0.2, [s["before"][n] for n in names], 0.4, label="as is")
        axes[2].barh(y + 0.2, [s["after"][n] for n in names], 0.4, label="rotated")
        axes[2].set_yticks(y, [("> " if n == quantizer else "") + n for n in names], fontsize=8)
        axes[2].set(xlabel="SQNR (dB)", title=f"{quantizer}: {s['before'][quantizer]:.1f} -> "
                                               f"{s['after'][quantizer]:.1f} dB")
        axes[2].legend(fontsize=8)
        fig.tight_layout()
        return fig, {"name": name, "quantizer": quantizer, "seed": seed,
                     "out_before": s["before"]["outliers"], "out_after": s["after"]["outliers"],
                     "before": s["before"][quantizer], "after": s["after"][quantizer]}

    caption = ("input of {name}: max/median channel range {out_before:.1f}x -> "
               "<b>{out_after:.1f}x</b> rotated (seed {seed}); {quantizer}: SQNR {before:.1f} dB"
               " -> <b>{after:.1f} dB</b>")
    return Explorer(controls, draw, caption)
