"""PTQ vs QAT on the MNIST CNN at 8/4/3/2-bit weights, both on the integer engine: the
cached result ``qat`` behind notebook 07 (``python -m qkit precompute qat``).
"""

from __future__ import annotations

import time

import torch

from qkit import data
from qkit.engine import IntegerModel, Scheme
from qkit.models import mnist_cnn
from qkit.topics.qat import train


def precompute(progress: bool = True, bits_list=(8, 4, 3, 2), epochs: int = 3) -> dict:
    """PTQ vs QAT on the MNIST CNN at each weight bit width (activations uint8), both run on
    qkit's integer engine; curves and learned steps for notebook 07."""
    torch.set_num_threads(2)
    split = data.mnist5k()
    model = mnist_cnn.load()
    x, y = mnist_cnn.to_input(split["x_train"]), torch.from_numpy(split["y_train"])
    xt, yt = mnist_cnn.to_input(split["x_test"]), split["y_test"]
    calib = x[:256].numpy()
    out = {"fp32": mnist_cnn.accuracy(model, split["x_test"], yt), "epochs": epochs, "rows": []}
    for bits in bits_list:
        t0 = time.perf_counter()
        ptq = IntegerModel.from_float(model, calib, Scheme(bits, per_channel=True))
        ptq_acc = float((ptq(xt.numpy()).argmax(1) == yt).mean())
        net, curves = train(model, x, y, bits, epochs, eval_set=(xt, yt), progress=progress)
        qat_int = net.to_integer(calib)
        steps = net.learned_steps()
        out["rows"].append({
            "bits": bits, "ptq_integer": ptq_acc, "qat_fake_quant": curves["test_accuracy"][-1],
            "qat_integer": float((qat_int(xt.numpy()).argmax(1) == yt).mean()),
            "curves": curves, "seconds": time.perf_counter() - t0,
            "weight_steps": {k: v.tolist() for k, v in steps["weights"].items()},
            "activation_steps": steps["activations"],
            "ptq_weight_steps": {k: L["w_scale"].tolist() for k, L in ptq.layers.items()
                                 if "w_scale" in L}})
    return out


def format_rows(result: dict) -> str:
    """The stored study as the table notebook 07 prints: accuracy per weight bit width."""
    lines = [f"fp32: {result['fp32']:.1%}   (1,000 test images)",
             f"{'weights':>8} {'PTQ':>8} {'QAT':>8} {'QAT fake-quant':>15} {'train s':>8}"]
    for r in result["rows"]:
        lines.append(f"{'W' + str(r['bits']) + 'A8':>8} {r['ptq_integer']:>8.1%} "
                     f"{r['qat_integer']:>8.1%} {r['qat_fake_quant']:>15.1%} "
                     f"{r['seconds']:>8.0f}")
    return "\n".join(lines)
