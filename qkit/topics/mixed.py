"""Mixed precision: measure how much each layer minds fewer bits, then spend bits where they
matter under a size budget.

1. `sensitivity`: quantize *one* layer's weights to b bits (per channel, symmetric), keep
   everything else float, and measure the output SQNR against fp32 (and the accuracy).
2. `allocate`: start from the widest choice and, while the model is over budget, lower the
   layer whose extra output noise per byte saved is smallest. Output noise powers of layers
   are treated as additive (uncorrelated rounding errors) so the predicted SQNR of a
   whole allocation is ``10 log10(P / sum_L noise_L)``: a greedy heuristic, no ILP.
3. `pareto`: allocations for a sweep of budgets, each *measured* on the integer engine
   (accuracy, bytes, latency); the non-dominated ones form the front.
"""

from __future__ import annotations

import time

import numpy as np

from qkit import kernels
from qkit.core.metrics import quantized_bytes, sqnr_db
from qkit.core.qparams import qparams_from_tensor
from qkit.engine import IntegerModel, Scheme, run_float
from qkit.engine.graph import trace

CHOICES = (2, 3, 4, 8)


def fake_quantize_weight(w: np.ndarray, bits: int) -> np.ndarray:
    qp = qparams_from_tensor(w, bits=bits, signed=True, symmetric=True, narrow_range=True,
                             axis=0)
    return kernels.fake_quantize(w, qp)


def weight_layers(ops) -> list:
    return [op for op in ops if op.kind in ("conv", "linear")]


def sensitivity(model, x, labels=None, choices=CHOICES, progress: bool = False) -> dict:
    """Per layer and bit width: output SQNR (dB) vs fp32 with only that layer quantized, and
    the accuracy when ``labels`` are given. ``x`` is a float NCHW batch."""
    from tqdm.auto import tqdm

    ops, _ = trace(model)
    ref = run_float(ops, x).numpy()
    layers = weight_layers(ops)
    out = {"layers": [op.name for op in layers], "choices": list(choices),
           "weights": [int(op.params["weight"].size) for op in layers],
           "channels": [int(op.params["weight"].shape[0]) for op in layers],
           "signal_power": float(np.mean(ref.astype(np.float64) ** 2)),
           "sqnr_db": {}, "accuracy": {}}
    if labels is not None:
        out["fp32_accuracy"] = float((ref.argmax(1) == labels).mean())
    for op in tqdm(layers, desc="sensitivity", disable=not progress):
        original = op.params["weight"]
        out["sqnr_db"][op.name], out["accuracy"][op.name] = [], []
        for bits in choices:
            op.params["weight"] = fake_quantize_weight(original, bits)
            y = run_float(ops, x).numpy()
            op.params["weight"] = original
            out["sqnr_db"][op.name].append(sqnr_db(ref, y))
            if labels is not None:
                out["accuracy"][op.name].append(float((y.argmax(1) == labels).mean()))
    return out


def layer_bytes(weights: int, channels: int, bits: int) -> int:
    return quantized_bytes(weights, bits, channels)


def predicted_sqnr(sens: dict, bits: dict) -> float:
    """Whole-model output SQNR predicted from the one-layer measurements (additive noise)."""
    noise = 0.0
    for name in sens["layers"]:
        db = sens["sqnr_db"][name][sens["choices"].index(bits[name])]
        noise += sens["signal_power"] / 10 ** (min(db, 200.0) / 10)
    return float(10 * np.log10(sens["signal_power"] / noise)) if noise > 0 else float("inf")


def model_bytes(sens: dict, bits: dict) -> int:
    return sum(layer_bytes(w, c, bits[n]) for n, w, c in
               zip(sens["layers"], sens["weights"], sens["channels"], strict=True))


def allocate(sens: dict, budget_bytes: float) -> dict:
    """Greedy bit allocation: ``{layer: bits}`` with model bytes <= budget when reachable
    (else the smallest allocation), lowering first where noise per byte saved is least."""
    choices = sorted(sens["choices"])
    bits = {n: choices[-1] for n in sens["layers"]}

    def noise(name, b):
        db = sens["sqnr_db"][name][sens["choices"].index(b)]
        return sens["signal_power"] / 10 ** (min(db, 200.0) / 10)

    while model_bytes(sens, bits) > budget_bytes:
        best, best_cost = None, None
        for i, name in enumerate(sens["layers"]):
            k = choices.index(bits[name])
            if k == 0:
                continue
            lower = choices[k - 1]
            saved = (layer_bytes(sens["weights"][i], sens["channels"][i], bits[name])
                     - layer_bytes(sens["weights"][i], sens["channels"][i], lower))
            cost = (noise(name, lower) - noise(name, bits[name])) / max(saved, 1)
            if best_cost is None or cost < best_cost:
                best, best_cost = (name, lower), cost
        if best is None:
            break
        bits[best[0]] = best[1]
    return bits


def uniform_bits(sens: dict, b: int) -> dict:
    return {n: b for n in sens["layers"]}


def pareto_front(points: list[dict], x: str = "bytes", y: str = "accuracy") -> list[dict]:
    """The points no other point beats on both fewer ``x`` and higher ``y``, sorted by ``x``."""
    front, best = [], -np.inf
    for p in sorted(points, key=lambda p: (p[x], -p[y])):
        if p[y] > best:
            front.append(p)
            best = p[y]
    return front


def evaluate_allocation(model, calib, x_test, y_test, bits: dict, rounds: int = 3) -> dict:
    """Accuracy, weight bytes and median latency of the integer model for one allocation."""
    scheme = Scheme(8, per_channel=True, layer_bits=tuple(sorted(bits.items())))
    im = IntegerModel.from_float(model, calib, scheme)
    acc = float((im(x_test).argmax(1) == y_test).mean())
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        im(x_test[:256])
        times.append(time.perf_counter() - t0)
    return {"bits": dict(bits), "accuracy": acc, "bytes": im.size_bytes(),
            "latency_ms": 1e3 * float(np.median(times))}


def mnist_study(budgets_fraction=(0.07, 0.08, 0.09, 0.1, 0.11, 0.125, 0.15, 0.2, 0.25),
                rounds: int = 3) -> dict:
    """Sensitivity of the MNIST CNN and measured allocations for a sweep of size budgets
    (as fractions of the fp32 weight bytes), plus the uniform 2/3/4/8-bit models."""
    from qkit import data
    from qkit.models import mnist_cnn

    model, split = mnist_cnn.load(), data.mnist5k()
    calib = mnist_cnn.to_input(split["x_train"][:256]).numpy()
    x_test, y_test = mnist_cnn.to_input(split["x_test"]).numpy(), split["y_test"]
    sens = sensitivity(model, x_test, y_test)
    fp32_bytes = 4 * sum(sens["weights"])
    points = []
    for b in sens["choices"]:
        p = evaluate_allocation(model, calib, x_test, y_test, uniform_bits(sens, b), rounds)
        points.append(dict(p, kind=f"uniform {b}-bit",
                           predicted_sqnr_db=predicted_sqnr(sens, p["bits"])))
    for f in budgets_fraction:
        bits = allocate(sens, f * fp32_bytes)
        p = evaluate_allocation(model, calib, x_test, y_test, bits, rounds)
        points.append(dict(p, kind=f"mixed <= {f:.1%}", budget_fraction=f,
                           predicted_sqnr_db=predicted_sqnr(sens, bits)))
    return {"sensitivity": sens, "points": points, "fp32_bytes": fp32_bytes}
