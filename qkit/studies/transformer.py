"""MiniLM with and without SmoothQuant at W8A8 / W8A6 / W4A8: the cached result
``transformer`` behind notebook 10 (``python -m qkit precompute transformer``).
"""

from __future__ import annotations

import torch
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm

from qkit import data
from qkit.models import minilm
from qkit.topics.smoothquant import capture, outlier_summary, quantized_model


def precompute(progress: bool = True, max_len: int = 64) -> dict:
    """BBC News accuracy (embeddings + logistic regression) and cosine to fp32 for plain and
    smoothed W8A8 / W8A6 / W4A8 (fake quantization), plus the outlier statistics."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model, bbc = minilm.load(), data.bbc_news()
    stats = capture(model, bbc["x_train"][:64], max_len)
    variants = [("fp32", None, None, None)]
    for w, a in ((8, 8), (8, 6), (4, 8)):
        variants += [(f"W{w}A{a}", None, w, a), (f"W{w}A{a} + SmoothQuant 0.5", 0.5, w, a)]
    fp32_test, rows = None, []
    for name, alpha, w, a in tqdm(variants, desc="MiniLM variants", disable=not progress):
        m = model if w is None else quantized_model(model, stats if alpha is not None else None,
                                                    alpha or 0.5, w, a)
        train = minilm.embed(m, bbc["x_train"], max_len)
        test = minilm.embed(m, bbc["x_test"], max_len)
        fp32_test = test if fp32_test is None else fp32_test
        clf = LogisticRegression(max_iter=3000).fit(train, bbc["y_train"])
        rows.append({"scheme": name, "alpha": alpha, "w_bits": w, "a_bits": a,
                     "bbc_accuracy": float((clf.predict(test) == bbc["y_test"]).mean()),
                     "cosine": float((test * fp32_test).sum(axis=1).mean())})
    return {"rows": rows, "max_len": max_len, "calibration_articles": 64,
            "outlier_ratio": outlier_summary(stats)}
