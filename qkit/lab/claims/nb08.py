"""Claims of notebook 08 (mixed precision): the MNIST budget explorer and MobileNetV2's stored
sensitivities."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.lab.claims import claim, measured
from qkit.lab.claims.shared import mnist


@cache
def _study():
    from qkit.topics import mixed

    return mixed.mnist_study(rounds=1)


@cache
def _at_budget(percent):
    from qkit.topics import mixed

    st = _study()
    bits = mixed.allocate(st["sensitivity"], percent / 100 * st["fp32_bytes"])
    return mixed.evaluate_allocation(*mnist(), bits, rounds=1)


def _point(kind):
    return next(p for p in _study()["points"] if p["kind"] == kind)


@claim("08", "Budget 6.5%: every layer but the tiny first conv (144 weights) is at 2 bits, and "
             "accuracy collapses. Raise it slowly: which layer gets more bits next?", slow=True)
def _collapse():
    low = _at_budget(6.5)
    others = {k: v for k, v in low["bits"].items() if k != "features_0_0"}
    up = next(_at_budget(b) for b in np.arange(7.0, 12.0, 0.5)
              if any(v > 2 for v in {k: v for k, v in _at_budget(b)["bits"].items()
                                     if k != "features_0_0"}.values()))
    nxt = [k for k, v in up["bits"].items() if k != "features_0_0" and v > 2]
    weights = dict(zip(_study()["sensitivity"]["layers"], _study()["sensitivity"]["weights"],
                       strict=True))
    ok = (set(others.values()) == {2} and low["bits"]["features_0_0"] > 2
          and weights["features_0_0"] == 144 and low["accuracy"] < 0.25 and nxt)
    return measured(ok, f"6.5%: bits {low['bits']}, accuracy {low['accuracy']:.1%}; next: {nxt}")


@claim("08", "Find the smallest budget that keeps 98.5%: compare it with uniform 4-bit (12.9%).",
       slow=True)
def _smallest():
    st = _study()
    u4 = _point("uniform 4-bit")["bytes"] / st["fp32_bytes"]
    smallest = next(b for b in np.arange(6.5, 30.5, 0.5) if _at_budget(b)["accuracy"] >= 0.985)
    return measured(round(u4, 3) == 0.129 and smallest < 12.9,
                    f"uniform 4-bit {u4:.2%} of fp32; smallest budget keeping 98.5%: {smallest}%")


@claim("08", "Watch the latency: does it change with the bits? (The engine stores sub-8-bit "
             "weights in int8 lanes: bits save bytes here, not time; see notebook 09.)", slow=True)
def _latency():
    from qkit.engine import IntegerModel, Scheme
    from qkit.studies.timing import measure

    model, calib, x, _ = mnist()
    ims = {b: IntegerModel.from_float(model, calib, Scheme(b)) for b in (2, 8)}
    lanes = {b: {im.layers[n]["w_q"].dtype for n in im.layers} for b, im in ims.items()}
    # the best of three interleaved medians: noise only ever slows a run
    runs = [measure({b: (lambda im=im: im(x[:256])) for b, im in ims.items()}, 5)
            for _ in range(3)]
    t = {b: min(r[b] for r in runs) for b in ims}
    ratio = t[2] / t[8]
    return measured(lanes == {2: {np.dtype(np.int8)}, 8: {np.dtype(np.int8)}}
                    and 0.75 < ratio < 1.33 and ims[2].size_bytes() < ims[8].size_bytes() / 3,
                    f"weights stored as {lanes[2]} at 2 and 8 bits; 2-bit / 8-bit time "
                    f"{ratio:.2f}; bytes {ims[2].size_bytes():,} vs {ims[8].size_bytes():,}")


@claim("08", "Sensitivity is very uneven: the classifier and the second conv of the CNN, the "
             "projection and depthwise layers of MobileNetV2.")
def _uneven():
    from qkit.studies import results

    cnn = _study()["sensitivity"]["sqnr_db"]
    two = sorted(cnn, key=lambda k: cnn[k][0])
    mv = results.load("sensitivity")["sensitivity"]
    top = sorted(mv["sqnr_db"], key=lambda k: mv["sqnr_db"][k][0])[:12]
    kinds = sum(k.endswith("conv_2") or k.endswith("conv_1_0") or k.endswith("conv_1")
                or k == "features_1_conv_0_0" for k in top)
    spread = cnn[two[-1]][0] - cnn[two[0]][0]
    return measured(two[:2] == ["classifier_1", "features_1_0"] and kinds >= 9 and spread > 5,
                    f"CNN at 2 bits, most sensitive first: {two} (spread {spread:.1f} dB); "
                    f"{kinds} of MobileNetV2's 12 most sensitive are projection or depthwise")


@claim("08", "A greedy, measured allocation beats uniform 3-bit weights at the same size (97.6% "
             "against 94.4%) and matches uniform 4-bit with fewer bytes; the additive-noise "
             "prediction ranks allocations well even though it is not exact.", slow=True)
def _greedy():
    from scipy.stats import spearmanr

    pts = _study()["points"]
    u3, u4 = _point("uniform 3-bit"), _point("uniform 4-bit")
    same3 = max((p for p in pts if p["kind"].startswith("mixed") and p["bytes"] <= u3["bytes"]),
                key=lambda p: p["accuracy"])
    match4 = [p for p in pts if p["kind"].startswith("mixed") and p["bytes"] < u4["bytes"]
              and p["accuracy"] >= u4["accuracy"] - 0.002]
    rho = spearmanr([p["predicted_sqnr_db"] for p in pts], [p["accuracy"] for p in pts])[0]
    ok = (round(same3["accuracy"], 3) == 0.976 and round(u3["accuracy"], 3) == 0.944 and match4
          and rho > 0.8)
    return measured(ok, f"{same3['kind']}: {same3['accuracy']:.1%} at {same3['bytes']:,} B vs "
                        f"uniform 3-bit {u3['accuracy']:.1%} at {u3['bytes']:,} B; matches "
                        f"4-bit: {[p['kind'] for p in match4]}; Spearman rho {rho:.2f}")


@claim("08", "On a CPU engine that computes in int8 lanes, fewer weight bits buy size, not speed.",
       slow=True)
def _size_not_speed():
    return _latency()
