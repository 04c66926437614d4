"""Token generation speed of SmolLM2-135M: qkit's 4-bit kernels against PyTorch, in one run.

``python -m qkit bench --llm``: for each engine and thread count, decode tokens/s (``new``
greedy tokens after a short prompt, each a forward of one token through the KV cache; the
median of ``rounds`` runs, engines interleaved) and prompt tokens/s (one forward of ``prompt``
tokens from an empty cache). Engines:

* ``torch fp32``: the reference model (the dequantized GGUF weights) in PyTorch;
* ``torch dynamic int8``: `torch.ao.quantization.quantize_dynamic` of its Linear layers;
* ``qkit q4_1 x q8_0``: the file's own Q4_1 bytes on `qkit.kernels.block_dot_packed`;
* ``llama.cpp``: the same GGUF file through ``llama-cpp-python``, only if it is installed.

Decode at batch 1 reads every weight once per token, so it is bounded by memory bandwidth:
``bound = read bandwidth / bytes read per token``; the table prints each engine's fraction.
The read bandwidth is measured here (NumPy sums over 512 MB, best of 5). All engines but
llama.cpp keep the tied output layer in float32 (113 MB per token of the bytes counted).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from qkit.studies.timing import using_threads

PROMPT = "The history of the city begins"


def read_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second that one thread reads (a NumPy sum of a large float32 array)."""
    a = np.ones(megabytes * (1 << 20) // 4, np.float32)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t)
    return a.nbytes / best


def engines(reference) -> dict:
    """name -> (model, bytes of weights read per token)."""
    from torch import nn

    from qkit.models import smollm2_int

    n_linear = sum(m.weight.numel() for m in reference.modules() if isinstance(m, nn.Linear))
    out_bytes = reference.token_embd.weight.numel() * 4
    dynamic = torch.ao.quantization.quantize_dynamic(reference, {nn.Linear}, dtype=torch.qint8)
    qkit_q4 = smollm2_int.from_file(reference)
    return {"torch fp32": (reference, n_linear * 4 + out_bytes),
            "torch dynamic int8": (dynamic, n_linear + out_bytes),
            "qkit q4_1 x q8_0": (qkit_q4, smollm2_int.weight_bytes(qkit_q4))}


@torch.inference_mode()
def decode_seconds(model, new: int) -> float:
    """Seconds for ``new`` greedy decode steps after the prompt (the prompt not counted)."""
    from qkit.models import smollm2

    ids = torch.tensor([smollm2.tokenizer().encode(PROMPT).ids])
    cache = smollm2.KVCache()
    nxt = model(ids, cache)[0, -1].argmax()
    start = time.perf_counter()
    for _ in range(new):
        nxt = model(nxt.reshape(1, 1), cache)[0, -1].argmax()
    return time.perf_counter() - start


@torch.inference_mode()
def prompt_seconds(model, tokens: int) -> float:
    from qkit.models import smollm2

    ids = torch.from_numpy(smollm2.text_tokens("evaluation")[:tokens])[None]
    start = time.perf_counter()
    model(ids, smollm2.KVCache())
    return time.perf_counter() - start


def run(threads=(1, 2), new: int = 128, prompt: int = 512, rounds: int = 3,
        progress=None) -> list[dict]:
    from qkit.models import smollm2

    reference = smollm2.load()
    found = engines(reference)
    bandwidth = read_bandwidth()
    rows = []
    for t in threads:
        with using_threads(t):
            times = {name: {"decode": [], "prompt": []} for name in found}
            for model, _ in found.values():  # warm: compile, caches, first-touch
                decode_seconds(model, 2)
            for _ in range(rounds):
                for name, (model, _) in found.items():
                    times[name]["decode"].append(decode_seconds(model, new))
                    times[name]["prompt"].append(prompt_seconds(model, prompt))
                if progress:
                    progress(f"llm round, {t} thread(s)")
            for name, (_, nbytes) in found.items():
                decode = new / float(np.median(times[name]["decode"]))
                bound = bandwidth / nbytes
                rows.append({"op": "llm decode", "engine": name, "threads": t,
                             "decode_tok_s": round(decode, 1),
                             "prompt_tok_s": round(prompt / float(np.median(times[name]["prompt"])),
                                                   1),
                             "weight_mb_per_token": round(nbytes / 1e6, 1),
                             "bound_tok_s": round(bound, 1),
                             "pct_of_bound": round(100 * decode / bound, 1),
                             "read_gb_s": round(bandwidth / 1e9, 1)})
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'engine':<22}{'threads':>8}{'decode tok/s':>14}{'prompt tok/s':>14}"
            f"{'MB/token':>10}{'% of bound':>12}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['engine']:<22}{r['threads']:>8}{r['decode_tok_s']:>14.1f}"
                     f"{r['prompt_tok_s']:>14.1f}{r['weight_mb_per_token']:>10.1f}"
                     f"{r['pct_of_bound']:>12.1f}")
    if rows:
        lines.append(f"read bandwidth {rows[0]['read_gb_s']} GB/s (one thread, measured); bound "
                     "= bandwidth / MB per token")
    return "\n".join(lines)
