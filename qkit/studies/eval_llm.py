"""SmolLM2 rows of ``python -m qkit eval``: perplexity and KL to the reference, bytes of the
block linears, and milliseconds per decoded token, one row per (scheme, metric).

``python -m qkit eval --models smollm2`` measures them here (about 15 minutes on 2 cores);
``python -m qkit precompute llm_eval`` stores them in ``data/results/llm_eval.json``, which
``python -m qkit eval --llm`` prints. Perplexity follows `qkit.topics.language.Protocol`
(ctx 512, 16 windows, second halves scored). Engines:

* ``torch fp32``: the reference, and every fake-quantized model (RTN, GPTQ, AWQ and the GGUF
  formats applied by qkit: dequantized weights in float32, so they decode at fp32's speed);
* ``qkit int4 x int8``: the file's Q4_1 bytes (and qkit's Q4_0 re-quantization) on qkit's
  block kernels, activations rounded to Q8_0 blocks as llama.cpp does; its perplexity is
  that of the integer model, not of the dequantized weights.

Latency is the median over ``rounds`` of 32 greedy decode steps after a short prompt, at the
threads torch is set to; ``size_bytes`` counts codes and scales of the 210 block linears
(float32 for the reference).
"""

from __future__ import annotations

import numpy as np
import torch

from qkit.studies.eval import Row, Steps

SCHEMES = (("rtn", 4, 128), ("gptq", 4, 128), ("awq", 4, 128), ("rtn", 3, 128),
           ("gptq", 3, 128), ("awq", 3, 128))
FAKE_GGUF = ("q8_0", "q6_k", "q5_1", "q4_k", "q4_0")
DECODE_TOKENS = 32


def variants(reference, windows: int = 8, progress: bool = False) -> dict:
    """scheme -> (model, engine, bytes of the block linears)."""
    from qkit.engine.rtn import WeightScheme
    from qkit.formats import ggml, kquants
    from qkit.models import smollm2_int, smollm2_quant
    from qkit.studies.llm import LINEAR_WEIGHTS, gguf_model

    n = LINEAR_WEIGHTS
    out = {"fp32": (reference, "torch fp32", 4 * n)}
    for method, bits, group in SCHEMES:
        scheme = WeightScheme(bits, group)
        m, w = smollm2_quant.quantize(reference, method, scheme, windows=windows,
                                      progress=progress)
        out[f"{method} {scheme.describe()}"] = (m, "torch fp32", smollm2_quant.weight_bytes(w))
    for fmt in FAKE_GGUF:
        bpw = (ggml if fmt in ggml.FORMATS else kquants).bits_per_weight(fmt)
        out[f"gguf {fmt} (fake-quant)"] = (gguf_model(reference, fmt), "torch fp32",
                                           int(n * bpw / 8))
    for name, m in (("gguf q4_1 (the file's bytes)", smollm2_int.from_file(reference)),
                    ("gguf q4_0 (qkit's bytes)", smollm2_int.requantized(reference, "q4_0"))):
        linears = sum(x.weight_bytes() for x in m.modules()
                      if isinstance(x, smollm2_int.BlockLinear))
        out[name] = (m, "qkit int4 x int8", linears)
    return out


def decode_ms(model, rounds: int) -> float:
    """Median milliseconds per greedy decode step (`qkit.studies.bench_llm.decode_seconds`)."""
    from qkit.studies.bench_llm import decode_seconds

    decode_seconds(model, 2)  # warm
    return float(np.median([decode_seconds(model, DECODE_TOKENS) for _ in range(rounds)])
                 / DECODE_TOKENS * 1e3)


def smollm2_rows(rounds: int = 3, progress: bool = False, windows: int = 8,
                 batch: int = 4) -> list[Row]:
    """Every scheme of `variants`, scored ``batch`` at a time next to the reference."""
    from qkit.models import smollm2
    from qkit.topics import language

    torch.manual_seed(0)
    reference = smollm2.load()
    found = variants(reference, windows, progress)
    protocol = language.Protocol()
    names = [k for k in found if k != "fp32"]
    bar = Steps("smollm2", -(-len(names) // batch) + 1, progress)
    scores = {}
    for start in range(0, len(names), batch):
        part = {"fp32": reference, **{k: found[k][0] for k in names[start:start + batch]}}
        scores.update(language.evaluate(part, protocol, reference="fp32"))
        bar.step(f"perplexity of {', '.join(part)}")
    latency = {k: decode_ms(m, rounds) for k, (m, _, _) in found.items()}
    bar.step(f"latency, {len(found)} models x {rounds} rounds")
    bar.close()
    ref = scores["fp32"]
    rows = []
    for k, (_, engine, size) in found.items():
        for metric in ("perplexity", "kl"):
            rows.append(Row("smollm2-135m", k, metric, round(scores[k][metric], 4),
                            round(ref[metric], 4), int(size), round(latency[k], 2), engine))
    return rows


def precompute(progress: bool = True) -> dict:
    from dataclasses import asdict

    from qkit.studies.eval import cpu_name
    from qkit.topics.language import Protocol

    torch.set_num_threads(2)
    rows = smollm2_rows(progress=progress)
    return {"rows": [asdict(r) for r in rows], "protocol": Protocol().describe(),
            "calibration": "GPTQ / AWQ: 8 x 512 tokens of the Wikipedia calibration split",
            "latency": f"ms per token: median of 3 x {DECODE_TOKENS} greedy decode steps, "
                       "2 threads", "cpu": cpu_name()}
