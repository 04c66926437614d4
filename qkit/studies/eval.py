"""The accuracy / size / latency table of real models, measured in one run.

For each model: fp32, qkit's integer engine under each scheme, and PyTorch's own
post-training quantization (FX graph mode, fbgemm) on the same calibration
images. Latency is the median of interleaved timings on the same batch. The command line
(``python -m qkit eval``: the stored table at once, or a recomputation) is
`qkit.studies.eval_cli`.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qkit.engine import SCHEMES, IntegerModel
from qkit.studies.timing import measure

CALIBRATION, BATCH = 256, 256
# what the table depends on: the kernels, the engine, the models and this module; a change to
# any of these files changes `fingerprint`
MEASURED_BY = ("core", "kernels", "engine", "models", "studies/eval.py", "studies/timing.py")


def fingerprint() -> str:
    """sha256 (first 16 hex digits) of every source file the table depends on."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for part in MEASURED_BY:
        path = root / part
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


class Steps:
    """A progress bar for one model's rows: ``step(name)`` names what is being computed."""

    def __init__(self, model: str, total: int, progress: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=model, disable=not progress, leave=True)

    def step(self, what: str) -> None:
        self.bar.set_postfix_str(what, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


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


def mnist_cnn_rows(rounds: int = 7, progress: bool = False) -> list[Row]:
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

    bar = Steps("mnist-cnn", 1 + len(SCHEMES) + len(WEIGHT_ONLY) + 2, progress)
    with torch.no_grad():
        fp32_acc = acc(lambda x: model(x).numpy())
        bar.step("fp32")
        timed = {"torch fp32": lambda: model(batch)}
        rows = [Row("mnist-cnn", "fp32", "top1", fp32_acc, fp32_acc, fp32_bytes, 0, "torch fp32")]
        for name, scheme in SCHEMES.items():
            im = IntegerModel.from_float(model, calib, scheme)
            timed[f"qkit {name}"] = lambda im=im: im(batch)
            rows.append(Row("mnist-cnn", name, "top1", acc(im), fp32_acc, im.size_bytes(), 0,
                            "qkit int"))
            bar.step(name)
        extra = []
        for name, m, engine in _dynamic_and_weight_only(model, calib):
            timed[f"qkit {name}"] = lambda m=m: m(batch)
            rows.append(Row("mnist-cnn", name, "top1", acc(m), fp32_acc, m.size_bytes(), 0,
                            engine))
            extra.append(name)
            bar.step(name)
        tq = _torch_ptq(model, calib)
        if tq is not None:
            timed["torch int8 ptq"] = lambda: tq(batch)
            rows.append(Row("mnist-cnn", "torch-ptq-w8a8-per-channel", "top1",
                            acc(lambda x: tq(x).numpy()), fp32_acc, _torch_bytes(tq), 0,
                            "torch fbgemm"))
        bar.step("torch ptq")
        latency = measure(timed, rounds)
        bar.step(f"latency, {len(timed)} engines x {rounds} rounds")
        bar.close()
    keys = (["torch fp32"] + [f"qkit {n}" for n in SCHEMES] + [f"qkit {n}" for n in extra]
            + (["torch int8 ptq"] if tq else []))
    for row, key in zip(rows, keys, strict=True):
        row.latency_ms = round(latency[key] * 1e3, 3)
    return rows


def mobilenet_v2_rows(rounds: int = 5, batch: int = 16, progress: bool = False) -> list[Row]:
    """Agreement with fp32 on the photo set (no labelled ImageNet offline): top-1 agreement,
    plus top-5 overlap and logit SQNR rows; calibration on every other image."""
    import torch

    from qkit.models import mobilenet_v2 as mv2

    model = mv2.load()
    x = mv2.preprocess(mv2.photo_set())
    calib, timing = x[1::2], x[:batch]
    bar = Steps("mobilenet-v2", 1 + len(SCHEMES) + len(WEIGHT_ONLY) + 2, progress)
    with torch.no_grad():
        ref = model(x).numpy()
    bar.step("fp32")
    fp32_bytes = sum(p.numel() * 4 for p in model.parameters())
    rows, timed = [], {"torch fp32": lambda: model(timing)}
    candidates = [("fp32", ref, fp32_bytes, "torch fp32", "torch fp32")]
    for name, scheme in SCHEMES.items():
        im = IntegerModel.from_float(model, calib, scheme)
        timed[f"qkit {name}"] = lambda im=im: im(timing)
        candidates.append((name, im(x), im.size_bytes(), "qkit int", f"qkit {name}"))
        bar.step(name)
    for name, m, engine in _dynamic_and_weight_only(model, calib):
        timed[f"qkit {name}"] = lambda m=m: m(timing)
        candidates.append((name, m(x), m.size_bytes(), engine, f"qkit {name}"))
        bar.step(name)
    tq = _torch_ptq(model, calib)
    if tq is not None:
        with torch.no_grad():
            candidates.append(("torch-ptq-w8a8-per-channel", tq(x).numpy(), _torch_bytes(tq),
                               "torch fbgemm", "torch int8 ptq"))
        timed["torch int8 ptq"] = lambda: tq(timing)
    bar.step("torch ptq")
    with torch.no_grad():
        latency = measure(timed, rounds)
    bar.step(f"latency, {len(timed)} engines x {rounds} rounds")
    bar.close()
    fp32 = mv2.agreement(ref, ref)
    fp32["top1_agreement_held_out"] = 1.0
    for scheme, logits, size, engine, key in candidates:
        agree = mv2.agreement(ref, logits)
        # the images calibration did not see (calibration took every other one)
        agree["top1_agreement_held_out"] = mv2.agreement(ref[0::2], logits[0::2])[
            "top1_agreement"]
        for metric in ("top1_agreement", "top1_agreement_held_out", "top1_agreement_confident",
                       "top5_overlap", "logit_sqnr_db"):
            rows.append(Row("mobilenet-v2", scheme, metric, agree[metric], fp32[metric], size,
                            round(latency[key] * 1e3, 3), engine))
    return rows


def minilm_rows(rounds: int = 5, max_len: int = 64, progress: bool = False) -> list[Row]:
    """BBC News topic accuracy (embeddings + logistic regression) and embedding cosine to fp32."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from qkit import data
    from qkit.models import minilm

    model = minilm.load()
    bbc = data.bbc_news()
    variants = {"fp32": (model, "torch fp32"),
                "dynamic-w8a8": (minilm.quantize_linears(model, "dynamic"), "qkit dynamic"),
                "w8a16-g64": (minilm.quantize_linears(model, "weight-only", 8), "qkit weight-only"),
                "w4a16-g64": (minilm.quantize_linears(model, "weight-only", 4),
                              "qkit weight-only")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.ao.quantization import quantize_dynamic

            variants["torch-dynamic-w8a8"] = (quantize_dynamic(model, {torch.nn.Linear},
                                                               dtype=torch.qint8), "torch fbgemm")
    except ImportError:
        pass
    bar = Steps("minilm", 1 + len(variants), progress)
    timing = bbc["x_test"][:16]
    timed = {name: (lambda m=m: minilm.embed(m, timing, max_len)) for name, (m, _) in
             variants.items()}
    latency = measure(timed, rounds)
    bar.step(f"latency, {len(timed)} engines x {rounds} rounds")
    fp32_test = minilm.embed(model, bbc["x_test"], max_len)
    rows, fp32_acc = [], None
    for name, (m, engine) in variants.items():
        train = minilm.embed(m, bbc["x_train"], max_len)
        test = fp32_test if name == "fp32" else minilm.embed(m, bbc["x_test"], max_len)
        clf = LogisticRegression(max_iter=3000).fit(train, bbc["y_train"])
        acc = float((clf.predict(test) == bbc["y_test"]).mean())
        fp32_acc = acc if fp32_acc is None else fp32_acc
        cosine = float((test * fp32_test).sum(axis=1).mean())
        size = minilm.linear_bytes(m) if name != "torch-dynamic-w8a8" else _linear_bytes_torch(m)
        ms = round(latency[name] * 1e3, 3)
        rows.append(Row("minilm-l6", name, "bbc_accuracy", acc, fp32_acc, size, ms, engine))
        rows.append(Row("minilm-l6", name, "embedding_cosine", cosine, 1.0, size, ms, engine))
        bar.step(f"{name} ({len(bbc['x_train']) + len(bbc['x_test'])} articles embedded)")
    bar.close()
    return rows


WEIGHT_ONLY = ("dynamic-w8a8", "w8a16-per-channel", "w4a16-per-channel",
               "w8a16-per-channel-ada", "w4a16-per-channel-ada")


def _dynamic_and_weight_only(model, calib):
    """qkit's dynamic (activations quantized per call) and weight-only (W8A16, W4A16) CNNs,
    the weight-only ones also with adaptive rounding (calibrated on ``calib``)."""
    from qkit.engine.dynamic import DynamicModel, WeightOnlyModel

    # one at a time (a generator): the adaptive-rounding ones take a while to calibrate
    yield "dynamic-w8a8", DynamicModel(model), "qkit dynamic"
    yield "w8a16-per-channel", WeightOnlyModel(model, 8), "qkit weight-only"
    yield "w4a16-per-channel", WeightOnlyModel(model, 4), "qkit weight-only"
    yield "w8a16-per-channel-ada", WeightOnlyModel(model, 8, calib), "qkit weight-only"
    yield "w4a16-per-channel-ada", WeightOnlyModel(model, 4, calib), "qkit weight-only"


def _linear_bytes_torch(qmodel) -> int:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    total = 0
    for mod in qmodel.modules():
        if isinstance(mod, DynamicLinear):
            w, b = mod._weight_bias()
            total += w.numel() + 4 * (b.numel() if b is not None else 0) + 4 * w.shape[0]
    return total


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


MODELS = {"mnist-cnn": mnist_cnn_rows, "mobilenet-v2": mobilenet_v2_rows, "minilm": minilm_rows}


def format_rows(rows: list[Row]) -> str:
    sw = max([28] + [len(r.scheme) + 1 for r in rows])  # scheme column width
    head = (f"{'model':<13}{'scheme':<{sw}}{'metric':<26}{'value':>8}{'fp32':>8}{'bytes':>11}"
            f"{'of fp32':>9}{'ms/batch':>10}  engine")
    lines = [head, "-" * len(head)]
    fp32 = {r.model: r.size_bytes for r in rows if r.scheme == "fp32"}
    for r in rows:
        value = f"{r.value:>8.2f}" if r.metric.endswith("_db") else f"{r.value:>8.4f}"
        ref = "inf" if not np.isfinite(r.fp32_value) else (
            f"{r.fp32_value:.2f}" if r.metric.endswith("_db") else f"{r.fp32_value:.4f}")
        lines.append(f"{r.model:<13}{r.scheme:<{sw}}{r.metric:<26}{value}{ref:>8}"
                     f"{r.size_bytes:>11,}{r.size_bytes / fp32[r.model]:>8.1%}"
                     f"{r.latency_ms:>10.2f}  {r.engine}")
    return "\n".join(lines)


_HEADS = {"top1_agreement": "agrees", "top1_agreement_confident": "confident",
          "top1_agreement_held_out": "held out", "logit_sqnr_db": "logit SQNR",
          "accuracy": "accuracy"}


def scheme_table(table: dict, model: str, metrics=("top1_agreement",), schemes=None) -> str:
    """Rows of a stored results table (``results.load("models")``) for one model, one line per
    scheme, its name spelled out (`qkit.engine.scheme.describe`): what a student reads instead
    of the raw rows. ``schemes`` picks and orders them (default: all, as stored)."""
    from qkit.engine.scheme import scheme_parts

    by = {(r["scheme"], r["metric"]): r["value"] for r in table["rows"] if r["model"] == model}
    if not by:
        raise ValueError(f"model {model!r} is not in this table; it has "
                         f"{sorted({r['model'] for r in table['rows']})}")
    order = list(dict.fromkeys(s for s, _ in by)) if schemes is None else list(schemes)
    missing = [(s, m) for s in order for m in metrics if (s, m) not in by]
    if missing:
        raise ValueError(f"not in the table for {model}: {missing[:3]}")
    rows = []
    for s in order:
        p = scheme_parts(s)
        rows.append([p["engine"], p["weights"], p["activations"], ", ".join(p["methods"]) or "-"]
                    + [f"{by[s, m]:.1f} dB" if m.endswith("_db") else f"{by[s, m]:.1%}"
                       for m in metrics])
    heads = ["engine", "weights", "activations", "methods"] + [_HEADS.get(m, m) for m in metrics]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 4 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r).rstrip() for r in [heads, *rows])


def mnist_tour(rounds: int = 5) -> dict:
    """The MNIST CNN in fp32 and as W8A8 integers: accuracy, bytes, energy estimate, latency."""
    import torch

    from qkit import data
    from qkit.models import mnist_cnn
    from qkit.topics import energy

    model = mnist_cnn.load()
    split = data.mnist5k()
    calib = mnist_cnn.to_input(split["x_train"][:CALIBRATION])
    x, y = mnist_cnn.to_input(split["x_test"]), split["y_test"]
    im = IntegerModel.from_float(model, calib, SCHEMES["w8a8-per-channel"])
    with torch.no_grad():
        fp32_acc = float((model(x).numpy().argmax(1) == y).mean())
        batch = x[:BATCH]
        latency = measure({"fp32": lambda: model(batch), "int8": lambda: im(batch)}, rounds)
    macs, acts = energy.model_counts(im.ops, im.shapes)
    fp32_bytes = sum(p.numel() * 4 for p in model.parameters())
    return {"fp32_accuracy": fp32_acc, "int8_accuracy": float((im(x).argmax(1) == y).mean()),
            "fp32_bytes": fp32_bytes, "int8_bytes": im.size_bytes(), "macs": macs,
            "fp32_energy": energy.estimate(macs, fp32_bytes, 4 * acts, "fp32"),
            "int8_energy": energy.estimate(macs, im.size_bytes(), acts, "int8"),
            "fp32_ms": latency["fp32"] * 1e3, "int8_ms": latency["int8"] * 1e3}


def precompute(progress: bool = True) -> dict:
    """Every model's rows (`python -m qkit eval`), for notebook 09; a few minutes."""
    rows = []
    for name in MODELS:
        rows += [asdict(r) for r in MODELS[name](progress=progress)]
    return {"rows": rows, "cpu": cpu_name(), "fingerprint": fingerprint(),
            "batch": {"mnist-cnn": BATCH, "mobilenet-v2": 16, "minilm": 16}}


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu
