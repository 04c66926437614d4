"""The accuracy / size / latency table of real models, measured in one run.

    python -m qkit eval            # table
    python -m qkit eval --json     # one object per line: model, scheme, metric, value,
                                   # fp32_value, size_bytes, latency_ms, engine

For each model: fp32, qkit's integer engine under each scheme, and PyTorch's own
post-training quantization (FX graph mode, fbgemm) on the same calibration
images. Latency is the median of interleaved timings on the same batch.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass

from qkit.bench import measure
from qkit.engine import SCHEMES, IntegerModel

CALIBRATION, BATCH = 256, 256


@dataclass
class Row:
    model: str
    scheme: str
    metric: str
    value: float
    fp32_value: float
    size_bytes: int
    latency_ms: float
    engine: str


def mnist_cnn_rows(rounds: int = 7) -> list[Row]:
    import torch

    from qkit import data
    from qkit.models import mnist_cnn

    model = mnist_cnn.load()
    split = data.mnist5k()
    calib = mnist_cnn.to_input(split["x_train"][:CALIBRATION])
    x_test, y_test = mnist_cnn.to_input(split["x_test"]), split["y_test"]
    batch = x_test[:BATCH]
    fp32_bytes = sum(p.numel() * 4 for p in model.parameters())

    def acc(predict) -> float:
        return float((predict(x_test).argmax(1) == y_test).mean())

    with torch.no_grad():
        fp32_acc = acc(lambda x: model(x).numpy())
        timed = {"torch fp32": lambda: model(batch)}
        rows = [Row("mnist-cnn", "fp32", "top1", fp32_acc, fp32_acc, fp32_bytes, 0, "torch fp32")]
        engines = {}
        for name, scheme in SCHEMES.items():
            im = IntegerModel.from_float(model, calib, scheme)
            engines[name] = im
            timed[f"qkit {name}"] = lambda im=im: im(batch)
            rows.append(Row("mnist-cnn", name, "top1", acc(im), fp32_acc, im.size_bytes(), 0,
                            "qkit int"))
        tq = _torch_ptq(model, calib)
        if tq is not None:
            timed["torch int8 ptq"] = lambda: tq(batch)
            rows.append(Row("mnist-cnn", "torch-ptq-w8a8-per-channel", "top1",
                            acc(lambda x: tq(x).numpy()), fp32_acc, _torch_bytes(tq), 0,
                            "torch fbgemm"))
        latency = measure(timed, rounds)
    keys = ["torch fp32"] + [f"qkit {n}" for n in SCHEMES] + (["torch int8 ptq"] if tq else [])
    for row, key in zip(rows, keys, strict=True):
        row.latency_ms = round(latency[key] * 1e3, 3)
    return rows


def _torch_ptq(model, calib):
    """PyTorch's own PTQ (FX graph mode, fbgemm, per-channel weights); None if unavailable."""
    try:
        import copy

        import torch
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = "fbgemm"
        prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("fbgemm"),
                              (calib[:1],))
        with torch.no_grad():
            prepared(calib)
        return convert_fx(prepared)


def _torch_bytes(qmodel) -> int:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(qmodel.state_dict(), buf)
    return buf.getbuffer().nbytes


def format_rows(rows: list[Row]) -> str:
    head = (f"{'model':<11}{'scheme':<28}{'top-1':>8}{'fp32':>8}{'bytes':>10}{'of fp32':>9}"
            f"{'ms/batch':>10}  engine")
    lines = [head, "-" * len(head)]
    fp32 = {r.model: r.size_bytes for r in rows if r.scheme == "fp32"}
    for r in rows:
        lines.append(f"{r.model:<11}{r.scheme:<28}{r.value:>8.4f}{r.fp32_value:>8.4f}"
                     f"{r.size_bytes:>10,}{r.size_bytes / fp32[r.model]:>8.1%}"
                     f"{r.latency_ms:>10.2f}  {r.engine}")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m qkit eval", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    rows = mnist_cnn_rows(args.rounds)
    if args.json:
        for r in rows:
            print(json.dumps(asdict(r)))
    else:
        print(format_rows(rows))
        print(f"\nlatency: batch of {BATCH} test images, median of {args.rounds} interleaved "
              "rounds, float in and float out for every engine")
    return 0
