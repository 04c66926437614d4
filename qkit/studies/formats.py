"""The kit's three models in low-bit float and block formats (`qkit.engine.formats`),
fake-quantized: accuracy (or agreement with fp32) and stored bytes including every scale.

Rows have the shape of `qkit.studies.eval.Row`; the engine column says "qkit fake-quant" and
the latency column is the emulation's (float arithmetic plus rounding, slower than fp32: no
CPU runs these formats natively). ``python -m qkit precompute formats`` stores them
(``data/results/formats.json``); ``python -m qkit eval`` prints them after the integer table.
"""

from __future__ import annotations

from dataclasses import asdict

from qkit.engine.formats import FORMAT_SCHEMES, FormatModel
from qkit.studies.eval import Row, Steps
from qkit.studies.timing import measure

ENGINE = "qkit fake-quant"


def mnist_cnn_rows(rounds: int = 3, progress: bool = False) -> list[Row]:
    import torch

    from qkit import data
    from qkit.models import mnist_cnn

    model = mnist_cnn.load()
    split = data.mnist5k()
    x, y = mnist_cnn.to_input(split["x_test"]), split["y_test"]

    with torch.no_grad():
        fp32 = float((model(x).numpy().argmax(1) == y).mean())
    bar = Steps("mnist-cnn formats", len(FORMAT_SCHEMES), progress)
    rows = []
    for name, scheme in FORMAT_SCHEMES.items():
        m = FormatModel(model, scheme)
        acc = float((m(x).argmax(1) == y).mean())
        ms = measure({"m": lambda m=m: m(x[:256])}, rounds)["m"] * 1e3
        rows.append(Row("mnist-cnn", name, "top1", acc, fp32, m.size_bytes(), round(ms, 3),
                        ENGINE))
        bar.step(name)
    bar.close()
    return rows


def mobilenet_v2_rows(rounds: int = 1, progress: bool = False) -> list[Row]:
    """Top-1 agreement with fp32 on the photo set (no labelled ImageNet offline)."""
    import torch

    from qkit.models import mobilenet_v2 as mv2

    model = mv2.load()
    x = mv2.preprocess(mv2.photo_set())
    with torch.no_grad():
        ref = model(x).numpy()
    bar = Steps("mobilenet-v2 formats", len(FORMAT_SCHEMES), progress)
    rows = []
    for name, scheme in FORMAT_SCHEMES.items():
        m = FormatModel(model, scheme)
        agree = mv2.agreement(ref, m(x))
        ms = measure({"m": lambda m=m: m(x[:16])}, rounds)["m"] * 1e3
        for metric in ("top1_agreement", "logit_sqnr_db"):
            rows.append(Row("mobilenet-v2", name, metric, agree[metric],
                            mv2.agreement(ref, ref)[metric], m.size_bytes(), round(ms, 3),
                            ENGINE))
        bar.step(name)
    bar.close()
    return rows


def minilm_rows(rounds: int = 1, max_len: int = 64, progress: bool = False) -> list[Row]:
    """BBC News topic accuracy and embedding cosine to fp32 on the 667 test articles. The topic
    classifier (logistic regression) is fitted once, on the fp32 embeddings of the training
    articles, and then reads each format's embeddings: the encoder is swapped under a fixed
    head, as in a deployment (and a tenth of the cost of re-embedding the training set in
    every emulated format)."""
    from sklearn.linear_model import LogisticRegression

    from qkit import data
    from qkit.models import minilm
    from qkit.topics.rotation import rotated_minilm

    model, bbc = minilm.load(), data.bbc_news()
    clf = LogisticRegression(max_iter=3000).fit(minilm.embed(model, bbc["x_train"], max_len),
                                                bbc["y_train"])
    ref = minilm.embed(model, bbc["x_test"], max_len)
    fp32 = float((clf.predict(ref) == bbc["y_test"]).mean())
    bar = Steps("minilm formats", len(FORMAT_SCHEMES), progress)
    rows = []
    for name, s in FORMAT_SCHEMES.items():
        m = rotated_minilm(model, weights=s.weights, activations=s.activations, rotate=s.rotate)
        test = minilm.embed(m, bbc["x_test"], max_len)
        acc = float((clf.predict(test) == bbc["y_test"]).mean())
        cosine = float((test * ref).sum(axis=1).mean())
        ms = measure({"m": lambda m=m: minilm.embed(m, bbc["x_test"][:16], max_len)},
                     rounds)["m"] * 1e3
        size = minilm.linear_bytes(m)
        rows.append(Row("minilm-l6", name, "bbc_accuracy_fixed_head", acc, fp32, size,
                        round(ms, 3), ENGINE))
        rows.append(Row("minilm-l6", name, "embedding_cosine", cosine, 1.0, size, round(ms, 3),
                        ENGINE))
        bar.step(name)
    bar.close()
    return rows


MODELS = {"mnist-cnn": mnist_cnn_rows, "mobilenet-v2": mobilenet_v2_rows, "minilm": minilm_rows}


def precompute(progress: bool = True) -> dict:
    """Every model's format rows, for notebook 11 and ``python -m qkit eval``."""
    from qkit.studies.eval import fingerprint

    rows = []
    for fn in MODELS.values():
        rows += [asdict(r) for r in fn(progress=progress)]
    return {"rows": rows, "fingerprint": fingerprint(),
            "fp32_bytes": {"mnist-cnn": "all parameters", "mobilenet-v2": "all parameters",
                           "minilm-l6": "encoder Linear weights and biases"}}
