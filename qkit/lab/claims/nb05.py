"""Claims of notebook 05 (calibration and PTQ): the MNIST explorer, MobileNetV2's stored table,
folding, adaptive rounding and loss-aware ranges."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.lab.claims import claim, measured
from qkit.lab.claims.shared import mnist


@cache
def _ptq(bits, *, per_channel=True, observer="minmax", bias_correction=False):
    from qkit.engine import Scheme
    from qkit.topics.compare import ptq_report

    model, calib, x, y = mnist()
    return ptq_report(model, calib, x, y, Scheme(bits, per_channel=per_channel, observer=observer,
                                                 bias_correction=bias_correction))


def _layers(r):
    return [v for _, v in r["layers"]]


@cache
def _table():
    from qkit.studies import results

    t = results.load("models")
    return {(r["scheme"], r["metric"]): r["value"] for r in t["rows"]
            if r["model"] == "mobilenet-v2"}


def _agree(scheme, metric="top1_agreement"):
    return _table()[scheme, metric]


@cache
def _mobilenet():
    from qkit.models import mobilenet_v2 as mv2

    return mv2.load(), mv2.preprocess(mv2.photo_set()).numpy()


@claim("05", "watch quantization error grow layer by layer through the network, at 8 bits down to "
             "2;", slow=True)
def _grow():
    s8, s2 = _layers(_ptq(8)), _layers(_ptq(2))
    return measured(s8[-1] < s8[0] and s2[-1] < s2[0] and max(s2) < min(s8),
                    f"8 bits {s8[0]:.1f} -> {s8[-1]:.1f} dB, 2 bits {s2[0]:.1f} -> {s2[-1]:.1f} dB")


@claim("05", "see MobileNetV2 lose a third of its predictions with per-tensor weights, and win "
             "most of them back with per-channel weights, cross-layer equalization (CLE) and bias "
             "correction (Nagel et al. 2019);")
def _mobilenet_story():
    lost = 1 - _agree("w8a8-per-tensor")
    best = max(_agree(s) for s in ("w8a8-per-channel", "w8a8-per-tensor-cle-bc",
                                   "w8a8-per-channel-pct-bc"))
    won = (best - _agree("w8a8-per-tensor")) / lost
    return measured(0.25 < lost < 0.4 and won > 0.5,
                    f"per-tensor loses {lost:.0%}; the best of these wins back {won:.0%} of it")


@claim("05", "python -m qkit train mnist-cnn retrains these weights from the seed (about a minute "
             "on 2 cores): bit for bit when run twice on one machine, and within a point of the "
             "shipped file's test accuracy on any CPU (PyTorch's float kernels round differently "
             "on different instruction sets). 256 training images calibrate; 1,000 held-out "
             "images test.", slow=True)
def _retrain():
    import time

    import torch

    from qkit.models import mnist_cnn

    def state(**kw):
        return mnist_cnn.train(progress=False, **kw).state_dict()

    short = [state(epochs=1, limit=512) for _ in range(2)]
    twice = all(torch.equal(short[0][k], short[1][k]) for k in short[0])
    t0 = time.perf_counter()
    fresh = mnist_cnn.train(progress=False)
    dt = time.perf_counter() - t0
    shipped = mnist_cnn.load()
    same = all(torch.equal(fresh.state_dict()[k], v) for k, v in shipped.state_dict().items())
    _, calib, x, y = mnist()

    def acc(model):
        with torch.no_grad():
            return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())

    gap = abs(acc(fresh) - acc(shipped))
    return measured(twice and gap < 0.01 and len(calib) == 256 and len(x) == 1000 and dt < 180,
                    f"retrained in {dt:.0f} s; two short runs identical: {twice}; identical to "
                    f"data/mnist_cnn.npz here: {same}; test accuracy gap {gap:.1%}")


@claim("05", "Weight bits 8 → 2 with per-channel weights: at 4 bits every layer keeps more than "
             "15 dB, at 2 bits none keeps 6 dB. Which layer breaks first on the way down?",
       slow=True)
def _bits():
    s4, s2 = _layers(_ptq(4)), _layers(_ptq(2))
    return measured(min(s4) > 15 and max(s2) < 6,
                    f"4 bits: {min(s4):.1f} dB at worst; 2 bits: {max(s2):.1f} dB at best")


@claim("05", "Untick per-channel at 4 bits: the first conv has only 9 weights per channel but "
             "very different channel ranges, and its SQNR drops by more than 4 dB.", slow=True)
def _per_tensor():
    from qkit.engine import trace

    w = trace(mnist()[0])[0][1].params["weight"]  # folded
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    drop = _layers(_ptq(4))[0] - _layers(_ptq(4, per_channel=False))[0]
    return measured(w[0].size == 9 and amax.max() / amax.min() > 3 and drop > 4,
                    f"{w[0].size} weights per channel, spread {amax.max() / amax.min():.1f}x, "
                    f"first layer -{drop:.1f} dB")


@claim("05", "At 4 bits, tick bias correction: it removes the mean shift that rounding the "
             "weights causes, and the output SQNR rises by more than 2 dB. At 3 bits it backfires "
             "(accuracy falls from about 94% to 66%): the correction is computed from the float "
             "model's input means, and 3-bit layers before it have moved those means further than "
             "4-bit ones.", slow=True)
def _bias_correction():
    from qkit.engine import IntegerModel, Scheme
    from qkit.engine.floatrun import run_float

    rise = _ptq(4, bias_correction=True)["last_db"] - _ptq(4)["last_db"]
    a3, a3bc = _ptq(3)["accuracy"], _ptq(3, bias_correction=True)["accuracy"]
    model, calib, _, _ = mnist()
    moved = {}
    for bits in (3, 4):  # how far the integer model's layer inputs moved from the float means
        im = IntegerModel.from_float(model, calib, Scheme(bits))
        ref, got = run_float(im.ops, calib, keep=True), im.run(im.quantize_input(calib), keep=True)
        shifts = []
        for op in im.ops:
            if op.kind in ("conv", "linear") and op.inputs[0] != "x":
                s, z = im.act[op.inputs[0]]
                f = ref[op.inputs[0]].numpy()
                f = f.reshape(len(f), -1) if f.ndim == 2 else f.mean(axis=(2, 3))
                q = (got[op.inputs[0]].astype(np.float32) - z) * s
                q = q.reshape(len(q), -1) if q.ndim == 2 else q.mean(axis=(1, 2))
                shifts.append(np.abs(q.mean(0) - f.mean(0)).mean() / (np.abs(f.mean(0)).mean()))
        moved[bits] = float(np.mean(shifts))
    ok = rise > 2 and 0.92 < a3 < 0.96 and 0.6 < a3bc < 0.72 and moved[3] > moved[4]
    return measured(ok, f"4 bits: SQNR +{rise:.1f} dB; 3 bits: accuracy {a3:.1%} -> {a3bc:.1%}; "
                        f"input means moved {moved[3]:.1%} at 3 bits, {moved[4]:.1%} at 4")


@claim("05", "Change the observer at 8 bits: the accuracy hardly moves (within 0.5 points), but "
             "the output SQNR does: the KL (entropy) observer clips hardest and loses more than "
             "10 dB against min-max. Clipping pays for long-tailed activations, and these ReLU "
             "outputs are not.", slow=True)
def _observers():
    r = {o: _ptq(8, observer=o) for o in ("minmax", "percentile", "mse", "entropy")}
    acc = [v["accuracy"] for v in r.values()]
    loss = r["minmax"]["last_db"] - r["entropy"]["last_db"]
    best = max(r, key=lambda o: r[o]["last_db"])
    return measured(max(acc) - min(acc) <= 0.005 and loss > 10 and best == "minmax",
                    "accuracy " + ", ".join(f"{o} {v['accuracy']:.1%}" for o, v in r.items())
                    + f"; KL -{loss:.1f} dB; best SQNR: {best}")


@claim("05", "Depthwise convolutions have one 3×3 filter per channel, and after BN folding their "
             "channel ranges differ by orders of magnitude.")
def _depthwise():
    from qkit.engine import trace

    spreads = []
    for op in trace(_mobilenet()[0])[0]:
        if op.kind == "conv" and op.params["groups"] > 1:
            w = op.params["weight"]
            amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
            spreads.append((w.shape[1:], float(amax.max() / max(amax.min(), 1e-12))))
    ok = all(s == (1, 3, 3) for s, _ in spreads) and max(v for _, v in spreads) > 100
    return measured(ok, f"{len(spreads)} depthwise layers, 1x3x3 each: {ok}; largest channel "
                        f"range spread {max(v for _, v in spreads):.0f}x")


@claim("05", "A large share comes from the first depthwise layer (quantized alone, it adds about "
             "40% of the whole model's output noise): after BN folding, some of its channels see "
             "almost constant 3×3 windows, so their output is the sum of the nine weights times "
             "that constant, and nine nearest-rounding errors can add up.", slow=True)
def _first_depthwise():
    import torch

    from qkit.engine.dynamic import WeightOnlyModel
    from qkit.engine.floatrun import run_float

    model, x = _mobilenet()
    wo = WeightOnlyModel(model, 8)
    ref = run_float(wo.ops, x).numpy()

    def noise(keep):
        saved = {}
        for op in wo.ops:
            if op.name in wo.layers and op.name not in keep:
                saved[op.name] = wo.layers[op.name]["weight"]
                wo.layers[op.name]["weight"] = torch.from_numpy(op.params["weight"])
        try:
            return float(np.mean((np.asarray(wo(x)) - ref) ** 2))
        finally:
            for k, v in saved.items():
                wo.layers[k]["weight"] = v

    share = noise({"features_1_conv_0_0"}) / noise(set(wo.layers))
    return measured(0.3 < share < 0.5, f"{share:.0%} of the output noise power, from 1 of "
                                       f"{len(wo.layers)} layers")


@claim("05", "For a 3×3 depthwise channel qkit.engine.adaround simply tries all $2^9 = 512$ "
             "choices; elsewhere it flips one weight at a time while the loss drops.")
def _exhaustive():
    from qkit.engine import adaround

    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 1, 3, 3)).astype(np.float32)
    a = rng.normal(size=(6, 9, 9))
    h = np.einsum("okl,omk->olm", a, a)  # a positive definite H per channel
    scale = np.full(6, 0.1)
    codes = adaround.round_weights(w, scale, h, -127, 127).reshape(6, 9)
    ws = w.reshape(6, 9) / 0.1
    best = []
    for c in range(6):  # brute force, independently
        lo = np.floor(ws[c])
        costs = [(d @ h[c] @ d, tuple(lo + bits))
                 for bits in np.array(np.meshgrid(*[[0, 1]] * 9)).T.reshape(-1, 9)
                 for d in [lo + bits - ws[c]]]
        best.append(min(costs)[1])
    return measured(np.array_equal(codes, np.array(best)) and 2**9 == 512,
                    f"equal to a brute-force search over 512 choices on 6 random channels: "
                    f"{np.array_equal(codes, np.array(best))}")


@claim("05", "With 8-bit activations as well the gain is smaller: there the activation grids, not "
             "the weights, are what limits this model on these (often ambiguous) photos.")
def _gain_smaller():
    a16 = _agree("w8a16-per-channel-ada") - _agree("w8a16-per-channel")
    a8 = _agree("w8a8-per-channel-pct-ada-bc") - _agree("w8a8-per-channel-pct-bc")
    return measured(a16 > a8 > 0, f"adaptive rounding gains {a16:+.1%} with float activations, "
                                  f"{a8:+.1%} with 8-bit ones")


@claim("05", "But the best clip for an activation is the one whose noise hurts the model's output "
             "least, and that depends on every layer after it.", slow=True)
def _output_clip():
    from qkit.engine import ranges, trace
    from qkit.engine.floatrun import run_float

    model, x = _mobilenet()
    ops, _ = trace(model)
    calib = x[1::2][:8]
    first = [o.name for o in ops if o.kind in ("conv", "add")][:5]
    chosen = ranges.search(ops, calib, names=first)
    floats = run_float(ops, calib, keep=True)
    inside = sum(hi < 0.95 * float(floats[n].max()) for n, (_, hi) in chosen.items())
    return measured(inside >= 3, f"{inside} of {len(chosen)} searched clips inside min-max")


@claim("05", "On the whole model (8-bit per channel with loss-aware ranges, adaptive rounding and "
             "bias correction, the last row of the table above; the search is the slow part of "
             "python -m qkit precompute models) the logit SQNR rises over percentile ranges, and "
             "the agreement on the 48 images the search did not see is 100%: the clips are not "
             "fitted to the calibration photos.")
def _loss_aware():
    la, pct = "w8a8-per-channel-la-ada-bc", "w8a8-per-channel-pct-ada-bc"
    rise = _agree(la, "logit_sqnr_db") - _agree(pct, "logit_sqnr_db")
    held = _agree(la, "top1_agreement_held_out")
    return measured(rise > 0 and held == 1.0, f"logit SQNR +{rise:.1f} dB; held out {held:.0%}")


@claim("05", "BN folding is free and exact (up to float rounding); do it before choosing weight "
             "scales.")
def _folding():
    import torch

    from qkit.engine import run_float, trace

    model, _, x, _ = mnist()
    with torch.no_grad():
        ref = model(torch.from_numpy(x[:256])).numpy()
    diff = float(np.abs(ref - run_float(trace(model)[0], x[:256]).numpy()).max())
    return measured(diff < 1e-4 * np.abs(ref).max(), f"largest logit difference {diff:.1e} "
                                                     f"(logits up to {np.abs(ref).max():.0f})")


@claim("05", "Per-channel weight scales are the single most important choice for CNNs with "
             "depthwise layers.")
def _single_choice():
    base = _agree("w8a8-per-tensor")
    gains = {"per-channel": _agree("w8a8-per-channel") - base,
             "bias correction": _agree("w8a8-per-tensor-bc") - base,
             "CLE + bias correction": _agree("w8a8-per-tensor-cle-bc") - base}
    best = max(gains, key=gains.get)
    return measured(best == "per-channel", ", ".join(f"{k} {v:+.1%}" for k, v in gains.items()))


@claim("05", "CLE rescales channels between layers so that per-tensor scales fit them better "
             "(MobileNetV2's median depthwise channel spread falls from 33x to 20x: it helps, but "
             "per-channel scales help more); bias correction removes the systematic shift "
             "rounding leaves behind (at 4 bits; at 3 it backfires, see the explorer).", slow=True)
def _cle_bc():
    from qkit.engine import equalize, trace

    ops, _ = trace(_mobilenet()[0])

    def spread(ops_):
        out = []
        for op in ops_:
            if op.kind == "conv" and op.params["groups"] > 1:
                amax = np.abs(op.params["weight"].reshape(op.params["weight"].shape[0], -1)).max(1)
                out.append(amax.max() / max(amax.min(), 1e-12))
        return float(np.median(out))

    before = spread(ops)
    pairs = equalize.equalize(ops)  # in place
    after = spread(ops)
    rise = _ptq(4, bias_correction=True)["last_db"] - _ptq(4)["last_db"]
    channel = _agree("w8a8-per-channel") > _agree("w8a8-per-tensor-cle-bc")
    ok = 30 < before < 36 and 18 < after < 22 and rise > 0 and pairs > 0 and channel
    return measured(ok,
                    f"median depthwise channel spread {before:.0f}x -> {after:.0f}x after CLE "
                    f"({pairs} pairs); "
                    f"bias correction at W4: +{rise:.1f} dB output SQNR (MNIST CNN)")


@claim("05", "Rounding each weight to its nearest level is not optimal: choosing up or down for "
             "the layer's output (adaptive rounding) fixes MobileNetV2's 8-bit weights.")
def _adaptive():
    near, ada = _agree("w8a16-per-channel"), _agree("w8a16-per-channel-ada")
    held = _agree("w8a16-per-channel-ada", "top1_agreement_held_out")
    return measured(ada >= 0.98 and held >= 0.98 and ada > near + 0.03,
                    f"W8A16 agreement {near:.1%} nearest, {ada:.1%} adaptive ({held:.0%} held out)")


@claim("05", "Observers matter when activations have long tails; for ReLU CNNs with BN, min-max "
             "is often fine at 8 bits.", slow=True)
def _observers_matter():
    from qkit.models import mobilenet_v2
    from qkit.topics.mapping import observer_ranges

    tails = observer_ranges(mobilenet_v2.real_activations("features.3.conv.2"), 8)
    ratio = tails["min-max"]["mse"] / min(v["mse"] for v in tails.values())
    acc = {o: _ptq(8, observer=o)["accuracy"] for o in ("minmax", "percentile", "mse", "entropy")}
    return measured(ratio > 1.5 and acc["minmax"] >= max(acc.values()) - 0.002,
                    f"long-tailed MobileNetV2 activations: min-max MSE {ratio:.1f}x the best; "
                    f"MNIST CNN at 8 bits: min-max {acc['minmax']:.1%}, best "
                    f"{max(acc.values()):.1%}")


@claim("05", "With $r_1$ the channel's weight range in the first layer and $r_2$ in the second, "
             "$s_c = \\sqrt{r_1/r_2}$ makes both ranges $\\sqrt{r_1 r_2}$, and one scale per "
             "tensor fits the channels better.", slow=True)
def _cle_rule():
    rng = np.random.default_rng(0)
    r1, r2 = rng.uniform(0.01, 10, 100), rng.uniform(0.01, 10, 100)
    s = np.sqrt(r1 / r2)
    same = np.allclose(r1 / s, np.sqrt(r1 * r2)) and np.allclose(r2 * s, np.sqrt(r1 * r2))
    m = _cle_bc()
    return measured(same and m.holds, f"r1/s = r2 s = sqrt(r1 r2) on 100 random pairs: {same}; "
                                      f"{m.detail}")
