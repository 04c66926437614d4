"""Claims of notebook 11 (low-bit floats and block scales): code tables against ml_dtypes,
where each grid puts its values, the explorers' readings, the 4-bit table on real tensors,
rotations, and the stored per-model table."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.lab.claims import claim, measured

ELEMENTS = ("fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1")


@claim("11", "No laptop CPU computes them natively, but every one of their values can be "
             "computed exactly: qkit.formats encodes and decodes them bit for bit like ml_dtypes "
             "(tested on every code point and a million random values per format).")
def _like_ml_dtypes():
    import ml_dtypes

    from qkit.formats import floats

    rng = np.random.default_rng(11)
    x = (rng.standard_normal(10**6) * np.exp2(rng.integers(-12, 12, 10**6))).astype(np.float32)
    bad = {}
    for name in ELEMENTS:
        dt = getattr(ml_dtypes, floats.get_format(name).ml_dtypes_name)
        ours = floats.round_to_format(x, name)
        theirs = x.astype(dt).astype(np.float32)
        same_codes = floats.get_format(name).bits < 8 or np.array_equal(
            floats.code_table(name), np.arange(256, dtype=np.uint8).view(dt).astype(np.float32),
            equal_nan=True)
        bad[name] = int((~((ours == theirs) | (np.isnan(ours) & np.isnan(theirs)))).sum()) + (
            0 if same_codes else 1)
    return measured(sum(bad.values()) == 0, "mismatches on 10^6 random values (and the FP8 "
                    "code tables): " + ", ".join(f"{k} {v}" for k, v in bad.items()))


@claim("11", "Accelerators moved from int8 to low-bit floats with block scales: FP8 (E4M3, "
             "E5M2), the OCP Microscaling formats (MXFP8, MXFP6, MXFP4, MXINT8: 32 elements share "
             "one power-of-two scale) and NVIDIA's NVFP4 (16 FP4 elements, an FP8 scale each, one "
             "float32 per tensor).")
def _block_rules():
    from qkit.formats import blocks

    mx = [f for n, f in blocks.BLOCK_FORMATS.items() if n.startswith("mx")]
    nv = blocks.get_block_format("nvfp4")
    t = blocks.quantize(np.linspace(-1, 1, 64, dtype=np.float32), "nvfp4")
    return measured(all(f.block == 32 and f.scale == "e8m0" for f in mx) and nv.block == 16
                    and nv.element == "fp4_e2m1" and nv.scale == "e4m3" and t.scales.size == 4
                    and isinstance(t.tensor_scale, float),
                    f"MX blocks {[f.block for f in mx]} with E8M0 scales; NVFP4 block "
                    f"{nv.block}, {nv.scale} scales, one tensor scale")


@claim("11", "E4M3 (bias 7) has no infinities: only the all-ones code (S.1111.111) is NaN, which "
             "buys it the largest finite value 448.")
def _e4m3_specials():
    from qkit.formats import floats

    t = floats.code_table("fp8_e4m3")
    nan = np.flatnonzero(np.isnan(t)).tolist()
    return measured(nan == [0x7F, 0xFF] and not np.isinf(t).any() and np.nanmax(t) == 448
                    and floats.get_format("fp8_e4m3").bias == 7,
                    f"NaN codes {[hex(c) for c in nan]}, max {np.nanmax(t):g}")


@claim("11", "E5M2 (bias 15) keeps IEEE's infinities and NaNs.")
def _e5m2_specials():
    from qkit.formats import floats

    t = floats.code_table("fp8_e5m2")
    return measured(np.isinf(t).sum() == 2 and np.isnan(t).sum() == 6
                    and floats.get_format("fp8_e5m2").bias == 15,
                    f"{int(np.isinf(t).sum())} infinities, {int(np.isnan(t).sum())} NaN codes")


@claim("11", "The FP6 and FP4 formats of the MX specification have neither: every code is a "
             "number.")
def _fp6_fp4_finite():
    from qkit.formats import floats

    return measured(all(np.isfinite(floats.code_table(n)).all()
                        for n in ("fp6_e2m3", "fp6_e3m2", "fp4_e2m1")), "every code finite")


def _bits(**changes):
    from qkit.lab.widgets import float_bits_explorer

    ex = float_bits_explorer()
    for k, v in changes.items():
        ex.controls[k].value = v
    return ex.result


@claim("11", "From 1.0 (code 0x38), flip bit 3 (the lowest exponent bit): which power of two do "
             "you land on?")
def _flip_bit3():
    start, flipped = _bits()["value"], _bits(b3=False)["value"]
    return measured(start == 1.0 and flipped == 0.5, f"0x38 = {start:g}; bit 3 cleared: "
                    f"{flipped:g} (2^-1: the exponent field drops by one)")


@claim("11", "Set every bit of E4M3: NaN. Switch the format to E5M2 with the same bits, then "
             "clear bit 0 and bit 1.")
def _all_bits():
    ones = {f"b{b}": True for b in range(8)}
    e4, e5 = _bits(**ones)["value"], _bits(**ones, fmt="fp8_e5m2")["value"]
    inf = _bits(**{**ones, "b0": False, "b1": False}, fmt="fp8_e5m2")["value"]
    return measured(np.isnan(e4) and np.isnan(e5) and inf == -np.inf,
                    f"E4M3 0xFF {e4}, E5M2 0xFF {e5}, E5M2 0xFC {inf}")


@claim("11", "Pick fp4_e2m1 and walk through its eight magnitudes: 0, 0.5, 1, 1.5, 2, 3, 4, 6.")
def _fp4_values():
    from qkit.formats import floats

    v = floats.code_table("fp4_e2m1")[:8].tolist()
    seen = {_bits(fmt="fp4_e2m1", **{f"b{b}": bool(c >> b & 1) for b in range(8)})["value"]
            for c in range(8)}
    return measured(v == [0, 0.5, 1, 1.5, 2, 3, 4, 6] and seen == set(v), f"codes 0-7: {v}")


@claim("11", "In its normal range a float format has the same number of values in every power "
             "of two, E4M3 8 and E5M2 4, and its subnormals thin out below: E4M3 spans 18 powers "
             "of two, E5M2 32.")
def _octaves():
    from qkit.topics.lowbit import values_per_octave

    e4, e5 = values_per_octave("fp8_e4m3"), values_per_octave("fp8_e5m2")
    normal4 = [e4[k] for k in range(-6, 8)]  # the top power of two loses its NaN code
    normal5 = [e5[k] for k in range(-14, 16)]
    return measured(set(normal4) == {8} and set(normal5) == {4} and len(e4) == 18
                    and len(e5) == 32 and e4[-9] < e4[-8] < e4[-7] < 8,
                    f"E4M3 per power of two {list(e4.values())}; E5M2 {len(e5)} powers")


@claim("11", "int8's 127 positive values are spread evenly instead: 64 in its top power of two, "
             "1 in its lowest.")
def _int8_octaves():
    from qkit.topics.lowbit import values_per_octave

    v = values_per_octave("int8")
    return measured(sum(v.values()) == 127 and v[6] == 64 and v[0] == 1, f"int8: {v}")


@claim("11", "Scaled to the same largest value, E4M3 still represents values 1,800 times smaller "
             "than int8's smallest step; E5M2 trades precision for range, which is why it is the "
             "format FP8 training uses for gradients.")
def _small_values():
    from qkit.topics.lowbit import relative_grid

    ratio = relative_grid("int8").min() / relative_grid("fp8_e4m3").min()
    wide = relative_grid("fp8_e5m2").min() < relative_grid("fp8_e4m3").min()
    return measured(1750 < ratio < 1850 and wide,
                    f"int8 step / E4M3's smallest value, both scaled to max 1: {ratio:.0f}x")


@claim("11", "A float format spends the same number of values on every power of two of its "
             "normal range; int8 puts half of its values in its top power of two.")
def _takeaway_grids():
    a, b = _octaves(), _int8_octaves()
    return measured(a.holds and b.holds, a.detail + "; " + b.detail)


@cache
def _row():
    from qkit.models import minilm

    return minilm.load().layers[1].ffn_in.weight.detach().numpy()[0, :32]


def _block(fmt="mxfp4", **xs):
    from qkit.lab.widgets import block_explorer

    ex = block_explorer(_row())
    ex.controls["fmt"].value = fmt
    for k, v in xs.items():
        ex.controls[k].value = ex.controls[k].max if v == "max" else v
    return ex.result


@claim("11", "Drag x[0] far beyond the others: the exponent follows it, and the SQNR of the "
             "whole block falls.", slow=True)
def _drag():
    a, b = _block(), _block(x0="max")
    return measured(b["amax"] > 4 * a["amax"] and b["sqnr"] < a["sqnr"] - 3
                    and a["how"] != b["how"],
                    f"{a['how']}, {a['sqnr']:.1f} dB -> {b['how']}, {b['sqnr']:.1f} dB")


@claim("11", "Compare mxfp4 with mxint8 and mxfp8_e4m3 on the same block.", slow=True)
def _compare_blocks():
    s = {f: _block(f)["sqnr"] for f in ("mxfp4", "mxint8", "mxfp8_e4m3")}
    return measured(s["mxint8"] > s["mxfp4"] + 10 and s["mxfp8_e4m3"] > s["mxfp4"] + 6,
                    ", ".join(f"{k} {v:.1f} dB" for k, v in s.items()))


@claim("11", "Switch to nvfp4: two blocks of 16, each with its own E4M3 scale (not a power of "
             "two).", slow=True)
def _nvfp4_blocks():
    from qkit.topics.lowbit import block_view

    v = block_view(_row(), "nvfp4")
    pow2 = [float(np.log2(s)).is_integer() for s in v["scales"]]
    return measured(len(v["scales"]) == 2 and v["block"] == 16 and not any(pow2),
                    f"scales {v['scales'].tolist()}")


@cache
def _table():
    from qkit.topics import lowbit

    return {r["tensor"]: r for r in lowbit.error_table(lowbit.real_tensors())}


def _weights():
    return {k: v for k, v in _table().items() if "activations" not in k}


def _acts():
    return next(v for k, v in _table().items() if "activations" in k)


@claim("11", "A fair comparison counts the scales: int4 and NF4 with a float16 scale per 64 "
             "elements and MXFP4 (an E8M0 byte per 32) all cost 4.25 bits per element; int4 and "
             "NF4 per 32 and NVFP4 (an E4M3 byte per 16) cost 4.5.")
def _budgets():
    from qkit.formats import blocks
    from qkit.topics.lowbit import bits_per_element

    w = np.random.default_rng(0).standard_normal((64, 4096)).astype(np.float32)
    mx, nv = blocks.quantize(w, "mxfp4"), blocks.quantize(w, "nvfp4")
    b = {m: bits_per_element(m) for m in ("int4 g64", "NF4 g64", "MXFP4", "int4 g32", "NF4 g32",
                                          "NVFP4")}
    return measured(set(list(b.values())[:3]) == {4.25} and set(list(b.values())[3:]) == {4.5}
                    and mx.bits_per_element == 4.25 and abs(nv.bits_per_element - 4.5) < 1e-3,
                    f"{b}; stored: MXFP4 {mx.bits_per_element:.4f}, NVFP4 "
                    f"{nv.bits_per_element:.4f} bits per element on a 64 x 4096 weight")


@claim("11", "On every weight tensor NF4 is the most accurate at both budgets: weights are close "
             "to normally distributed, and NF4's levels are the quantiles of a normal "
             "distribution.", slow=True)
def _nf4_wins():
    ok = all(r["NF4 g64"] > max(r["int4 g64"], r["MXFP4"])
             and r["NF4 g32"] > max(r["int4 g32"], r["NVFP4"]) for r in _weights().values())
    return measured(ok, "; ".join(f"{k.split(' (')[0]}: NF4 {r['NF4 g64']:.1f}/{r['NF4 g32']:.1f}"
                                  f" dB" for k, r in _weights().items()))


@claim("11", "MXFP4 trails int4 with float16 scales on three of the four weight tensors: its "
             "power-of-two scale leaves up to a third of the element range unused, or clips the "
             "block's largest value by up to a quarter.", slow=True)
def _mxfp4_trails():
    behind = [k for k, r in _weights().items() if r["MXFP4"] < r["int4 g64"]]
    # a block max just below a power of two: X is set by floor(log2), so x / 2^X < 2 * 4 = 8,
    # and E2M1 saturates at 6; just above: x / 2^X ~ 4, the top code 6 is unused
    from qkit.formats import blocks

    def top(amax):
        t = blocks.quantize(np.array([amax] + [0.0] * 31, np.float32), "mxfp4")
        return float(np.abs(t.dequantize()).max()), float(6 * t.scale_values().max())

    used = top(4.01)[0] / top(4.01)[1]  # amax / 2^X just above 4: 4 of the 6 used
    clipped = 1 - top(7.99)[0] / 7.99  # just below 8: saturates at 6
    return measured(len(behind) == 3 and len(_weights()) == 4 and 0.64 < used < 0.7
                    and 0.23 < clipped < 0.26,
                    f"MXFP4 below int4 g64 on {behind}; a block max of 4.01 uses {used:.0%} of "
                    f"the element range, one of 7.99 is clipped by {clipped:.0%}")


@claim("11", "On the activations, whose channels differ widely, the finer blocks and the FP8 "
             "scales of NVFP4 give the best SQNR of all six.", slow=True)
def _nvfp4_acts():
    from qkit.topics.lowbit import METHODS

    a = _acts()
    best = max(METHODS, key=lambda m: a[m])
    return measured(best == "NVFP4", ", ".join(f"{m} {a[m]:.1f}" for m in METHODS) + " dB")


@claim("11", "At equal bits per element NF4 is the most accurate 4-bit format on these weights "
             "and NVFP4 on these activations; MXFP4 pays for its power-of-two scale.", slow=True)
def _takeaway_formats():
    parts = (_nf4_wins(), _nvfp4_acts(), _mxfp4_trails())
    return measured(all(p.holds for p in parts), " | ".join(p.detail for p in parts))


from qkit.lab.claims import nb11_rotation  # noqa: E402, F401  (the second half)
