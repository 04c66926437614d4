"""Claims of notebook 01 (range mapping): the ECG explorer, channel ranges, observers."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.lab.claims import claim, measured


@cache
def _ecg():
    from qkit import data

    return data.signals()["ecg"]


def _map(**kw):
    from qkit.topics.mapping import map_range

    return map_range(_ecg(), **({"bits": 4} | kw))


@cache
def _channels(name, bits):
    from qkit import data
    from qkit.topics.mapping import channel_report

    r = channel_report(data.mobilenet_v2_state_dict()[name], bits)
    return r["per-channel"]["sqnr_db"] - r["per-tensor"]["sqnr_db"], r["ranges"]


_DW, _FC = "features.1.conv.0.0.weight", "classifier.1.weight"


@cache
def _observers(bits):
    from qkit.models import mobilenet_v2
    from qkit.topics.mapping import observer_ranges

    r = observer_ranges(mobilenet_v2.real_activations("features.3.conv.2"), bits)
    return {k: v["mse"] for k, v in r.items()}


@claim("01", "Symmetric grids fix $z$ at the middle of the grid and use $s = \\max(|\\alpha|, "
             "|\\beta|) / ((q_{max}-q_{min})/2)$; narrow range drops the most negative code so "
             "that $[-127, 127]$ is symmetric (TFLite's int8 weights).")
def _symmetric():
    from qkit.core.qparams import qparams_from_range

    s = qparams_from_range(-0.5, 4.5, 8, signed=True, symmetric=True)
    u = qparams_from_range(-0.5, 4.5, 8, signed=False, symmetric=True)
    n = qparams_from_range(-0.5, 4.5, 8, signed=True, symmetric=True, narrow_range=True)
    ok = (int(s.zero_point) == 0 and int(u.zero_point) == 128
          and np.isclose(float(s.scale), 4.5 / 127.5) and (n.qmin, n.qmax) == (-127, 127))
    return measured(ok, f"z {int(s.zero_point)} / {int(u.zero_point)}, s {float(s.scale):.5f}, "
                        f"narrow [{n.qmin}, {n.qmax}]")


@claim("01", "Drop the bits from 8 to 3: the SQNR falls about 6 dB per bit, and from 6 bits down "
             "every level is drawn. At 2 bits it falls 10 dB more: four levels no longer follow "
             "the waveform.")
def _bits():
    s = {b: _map(bits=b)["sqnr_db"] for b in range(2, 9)}
    steps = [s[b] - s[b - 1] for b in range(4, 9)]
    ok = all(5.0 < d < 7.0 for d in steps) and 9 < s[3] - s[2] < 11.5 and 2**6 <= 64
    return measured(ok, "per bit " + ", ".join(f"{d:.1f}" for d in steps)
                    + f" dB; 3 -> 2 bits {s[3] - s[2]:.1f} dB")


@claim("01", "Tick signed and symmetric: the ECG is lopsided (mostly negative baseline, tall "
             "positive peaks), so a symmetric grid spends about 28% of its codes on $[-250, "
             "-112]$, where there is no data: the SQNR falls about 3 dB.")
def _lopsided():
    x = _ecg()
    wasted = (x.max() + x.min()) / (2 * x.max())
    fall = _map()["sqnr_db"] - _map(signed=True, symmetric=True)["sqnr_db"]
    ok = (np.median(x) < 0 < x.max() and (x.min(), x.max()) == (-112, 250)
          and 0.27 < wasted < 0.29 and 2.5 < fall < 3.5)
    return measured(ok, f"range [{x.min()}, {x.max()}], median {np.median(x)}; {wasted:.1%} of "
                        f"codes unused, SQNR -{fall:.2f} dB")


@claim("01", "Lower keep % at 4 bits: clipping the rare tall peaks shrinks the step; rounding MSE "
             "falls, clipping MSE rises. Where is the best trade?")
def _keep():
    keeps = [100.0, 99.5, 99.0, 98.0, 95.0, 90.0]
    r = [_map(clip_percent=k) for k in keeps]
    rnd, clp, sq = ([x[k] for x in r] for k in ("rounding_mse", "clipping_mse", "sqnr_db"))
    best = keeps[int(np.argmax(sq))]
    ok = (np.all(np.diff(rnd) < 0) and np.all(np.diff(clp) > 0) and r[0]["clipped_fraction"] == 0
          and 90 < best < 100)
    return measured(ok, f"best keep {best}% ({max(sq):.1f} dB vs {sq[0]:.1f} at 100%)")


@claim("01", "switch layers; drop the bits. The classifier's rows have similar ranges, so "
             "per-channel helps it less (about 5 dB, against 9 dB for the first depthwise layer).")
def _classifier():
    fc, dw = _channels(_FC, 8)[0], _channels(_DW, 8)[0]
    return measured(4.5 < fc < 5.5 and 8.5 < dw < 9.5, f"classifier +{fc:.1f} dB, depthwise "
                                                        f"+{dw:.1f} dB")


@claim("01", "at 8 bits min-max's MSE is under twice the best observer's; at 4 bits it is more "
             "than three times: the rounding error of a wide grid dominates, and clipping wins "
             "clearly.")
def _observer_bits():
    r8, r4 = (_observers(b)["min-max"] / min(_observers(b).values()) for b in (8, 4))
    best4 = min(_observers(4), key=_observers(4).get)
    return measured(r8 < 2 and r4 > 3 and best4 != "min-max",
                    f"min-max / best MSE: {r8:.2f} at 8 bits, {r4:.2f} at 4 (best: {best4})")


@claim("01", "Scale and zero point follow from the range; including 0 keeps zero exact.")
def _zero():
    from qkit.core.qparams import qparams_from_range
    from qkit.kernels import dequantize, quantize

    rng = np.random.default_rng(0)
    exact = 0
    for lo, hi in rng.uniform(-10, 10, size=(500, 2)):
        for bits in (2, 4, 8):
            qp = qparams_from_range(min(lo, hi), max(lo, hi), bits)
            exact += float(dequantize(quantize(np.zeros(1, np.float32), qp), qp)[0]) == 0.0
    return measured(exact == 1500, f"0 -> 0 exactly on {exact} of 1500 random ranges")


@claim("01", "Bits buy resolution (about 6 dB each); a symmetric grid wastes codes on lopsided "
             "data.")
def _bits_and_symmetry():
    per_bit = (_map(bits=8)["sqnr_db"] - _map(bits=4)["sqnr_db"]) / 4
    falls = all(_map(bits=b)["sqnr_db"] > _map(bits=b, signed=True, symmetric=True)["sqnr_db"]
                for b in range(2, 9))
    return measured(5.5 < per_bit < 6.5 and falls, f"{per_bit:.2f} dB per bit (ECG, 8 -> 4); "
                                                    f"symmetric lower at every width: {falls}")


@claim("01", "Per-channel scales matter most where channel ranges differ (depthwise convs: +9 dB "
             "at 8 bits, against +5 dB for the classifier).")
def _depthwise():
    spread = {}
    for name in (_DW, _FC):
        amax = np.abs(_channels(name, 8)[1]).max(axis=1)
        spread[name] = float(amax.max() / amax.min())
    gains = {b: (_channels(_DW, b)[0], _channels(_FC, b)[0]) for b in (4, 8)}
    dw, fc = gains[8]
    ok = (spread[_DW] > 3 * spread[_FC] and all(d > f for d, f in gains.values())
          and 8.5 < dw < 9.5 and 4.5 < fc < 5.5)
    return measured(ok, f"channel max|w| spread: depthwise {spread[_DW]:.0f}x, classifier "
                        f"{spread[_FC]:.1f}x; gain dw/fc " + ", ".join(
                            f"{b} bits {d:.1f}/{f:.1f} dB" for b, (d, f) in gains.items()))


@claim("01", "Clipping outliers trades a little clipping error for a finer grid; it pays most at "
             "low bit widths.")
def _clipping_pays():
    from qkit.topics.mapping import observer_ranges

    x = _ecg()
    gain = {}
    for b in (3, 4, 6, 8):
        mse = {k: v["mse"] for k, v in observer_ranges(x, b).items()}
        gain[b] = 10 * np.log10(mse["min-max"] / min(mse.values()))
    return measured(min(gain[3], gain[4]) > max(gain[6], gain[8]) + 1,
                    "best clip over min-max: " + ", ".join(f"{b} bits {g:.2f} dB"
                                                            for b, g in gain.items()))
