"""Perplexity and KL divergence of a language model, with the protocol stated.

**Protocol** (llama.cpp's ``llama-perplexity``): the evaluation articles of
`qkit.data.wikipedia` are joined with blank lines and tokenized once; the tokens are cut into
consecutive, non-overlapping windows of ``context`` tokens; each window is run from an empty
cache and only its second half is scored (the predictions of tokens ``context/2 + 1`` to
``context - 1``, 255 per window of 512), so every scored token sees at least 256 tokens
before it. Perplexity is ``exp(mean negative log-likelihood)`` of the scored tokens.

**KL divergence** is ``mean over scored tokens of sum_v p_ref(v) (log p_ref(v) - log p(v))``,
the reference being the float model. It is llama.cpp's measure for quantized models, and it
matters here because the reference itself is a 4-bit file: a perplexity a hair *lower* than
the reference's does not mean a better model, a KL above 0 always means a different one.

>>> Protocol().describe()
'ctx 512, 16 windows, second halves scored (4,080 tokens), Wikipedia evaluation split'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from qkit.models import smollm2


@dataclass(frozen=True)
class Protocol:
    context: int = 512
    windows: int = 16
    split: str = "evaluation"

    def __post_init__(self):
        if not isinstance(self.context, int) or not 4 <= self.context <= 8192:
            raise ValueError(f"context must be an int in 4..8192, got {self.context!r}")
        if not isinstance(self.windows, int) or self.windows < 1:
            raise ValueError(f"windows must be an int >= 1, got {self.windows!r}")
        if self.split not in ("evaluation", "calibration"):
            raise ValueError(f"split must be 'evaluation' or 'calibration', got {self.split!r}")

    @property
    def first(self) -> int:  # position of the first scored prediction in a window
        return self.context // 2

    @property
    def scored(self) -> int:
        return self.windows * (self.context - 1 - self.first)

    def describe(self) -> str:
        return (f"ctx {self.context}, {self.windows} windows, second halves scored "
                f"({self.scored:,} tokens), Wikipedia {self.split} split")


def windows(protocol: Protocol) -> np.ndarray:
    """(windows, context) token ids, the first ``windows * context`` tokens of the split."""
    ids = smollm2.text_tokens(protocol.split)
    need = protocol.windows * protocol.context
    if need > ids.size:
        raise ValueError(f"windows x context = {need:,} tokens, but the {protocol.split} split "
                         f"has {ids.size:,}")
    return ids[:need].reshape(protocol.windows, protocol.context)


@torch.inference_mode()
def evaluate(models: dict, protocol: Protocol = Protocol(), reference: str | None = None,
             progress: bool = False) -> dict[str, dict]:
    """Perplexity of each model (name -> callable ids (1,T) -> logits (1,T,V)) and, with
    ``reference`` naming one of them, each model's KL divergence to it."""
    if not models:
        raise ValueError("models is empty: give at least one name -> model")
    if reference is not None and reference not in models:
        raise ValueError(f"reference {reference!r} is not one of models ({sorted(models)})")
    from tqdm.auto import tqdm

    nll = {name: 0.0 for name in models}
    kl = {name: 0.0 for name in models}
    first = protocol.first
    for row in tqdm(windows(protocol), disable=not progress, desc="perplexity windows"):
        ids = torch.from_numpy(row)[None]
        target = ids[0, first + 1:]
        logp = {}
        for name, model in models.items():
            lp = torch.log_softmax(model(ids)[0, first:-1].double(), dim=-1)  # (scored, V)
            nll[name] -= float(lp.gather(1, target[:, None]).sum())
            logp[name] = lp
        if reference is not None:
            ref = logp[reference]
            for name, lp in logp.items():
                kl[name] += float((ref.exp() * (ref - lp)).sum())
    n = protocol.scored
    out = {}
    for name in models:
        out[name] = {"perplexity": math.exp(nll[name] / n), "nll": nll[name] / n, "tokens": n,
                     "protocol": protocol.describe()}
        if reference is not None:
            out[name]["kl"] = kl[name] / n
    return out


def file_block(tensor: str, row: int = 0, block: int = 0) -> dict:
    """One 32-weight block of the shipped GGUF file, byte by byte: its format, its raw bytes,
    the float16 scale ``d`` (and minimum ``m``), the 32 codes and the weights they make
    (``d*q + m`` for Q4_1, ``d*q`` for Q8_0), and where each code sits in the bytes."""
    from qkit.formats import ggml

    raw = smollm2.raw_tensors()
    if tensor not in raw:
        names = ", ".join(sorted(raw)[:4])
        raise ValueError(f"tensor must name a tensor of the file ({names}, ...), got {tensor!r}")
    fmt, data = raw[tensor]
    if fmt not in ggml.FORMATS:
        raise ValueError(f"tensor {tensor!r} is stored as {fmt}, not a block format")
    size = ggml.FORMATS[fmt][2]
    rows, blocks = data.shape[0], data.shape[1] // size
    for name, value, count in (("row", row, rows), ("block", block, blocks)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value < count:
            raise ValueError(f"{name} must be an int in 0..{count - 1}, got {value!r}")
    b = np.ascontiguousarray(data[row, block * size:(block + 1) * size])
    f = ggml.decode(b, fmt)
    bits, affine, _ = ggml.FORMATS[fmt]
    values = ggml.dequantize(b, fmt)
    scale_bytes = 4 if affine else 2
    if bits == 4:  # byte j: code j in its low nibble, code j + 16 in its high nibble
        where = [f"byte {scale_bytes + j % 16} {'low' if j < 16 else 'high'}" for j in range(32)]
    else:
        where = [f"byte {scale_bytes + j}" for j in range(32)]
    return {"tensor": tensor, "fmt": fmt, "row": row, "block": block, "rows": rows,
            "blocks": blocks, "bytes": b, "d": float(f["d"][0]),
            "m": float(f["m"][0]) if affine else None, "codes": f["q"][0].astype(int),
            "values": values, "where": where, "bits_per_weight": ggml.bits_per_weight(fmt),
            "columns": (block * 32, block * 32 + 31)}


PROMPT_TOKENS = 256  # longer prompts keep their last PROMPT_TOKENS tokens


@torch.inference_mode()
def compare_continuations(reference, model, prompt: str, new_tokens: int = 24,
                          temperature: float = 0.0, seed: int = 0) -> dict:
    """``prompt`` continued by the reference and by ``model`` with the same seed, and the
    reference's verdict on the model's text: the probability it gives each token the model
    chose (teacher-forced) and whether it would have chosen the same one itself."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    tok = smollm2.tokenizer()
    ids = tok.encode(prompt).ids[-PROMPT_TOKENS:]
    if not ids:
        raise ValueError("prompt is empty: give it a few words")
    texts, chosen = {}, {}
    for name, m in (("reference", reference), ("model", model)):
        chosen[name] = smollm2.generate_ids(m, ids, new_tokens, temperature, seed)
        texts[name] = tok.decode(chosen[name])
    out = chosen["model"]
    probs, same = np.zeros(0), np.zeros(0, bool)
    if out:
        full = torch.tensor([ids + out])
        p = torch.softmax(reference(full)[0, len(ids) - 1:-1].double(), -1)
        probs = p[torch.arange(len(out)), torch.tensor(out)].numpy()
        same = (p.argmax(-1) == torch.tensor(out)).numpy()
    n = min(len(out), len(chosen["reference"]))
    common = next((i for i in range(n) if chosen["reference"][i] != out[i]), n)
    return {"prompt_tokens": len(ids), "reference": texts["reference"], "model": texts["model"],
            "pieces": [tok.decode([i]) for i in out], "p_reference": probs, "agrees": same,
            "same_prefix": common, "tokens": len(out),
            "mean_nll": float(-np.log(np.maximum(probs, 1e-300)).mean()) if out else 0.0}


def next_tokens(model, prompt: str, top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` most likely next tokens after ``prompt`` and their probabilities."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be an int >= 1, got {top!r}")
    tok = smollm2.tokenizer()
    ids = smollm2.check_prompt(tok.encode(prompt).ids)
    with torch.inference_mode():
        p = torch.softmax(model(ids)[0, -1].double(), -1)
    values, index = p.topk(top)
    return [(tok.decode([int(i)]), float(v)) for v, i in zip(values, index, strict=True)]


def window_perplexity(model, protocol: Protocol = Protocol(), window: int = 0) -> float:
    """Perplexity of one window of ``protocol`` (its second half scored): the protocol's
    measurement on 1/``windows`` of the text."""
    rows = windows(protocol)
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window < len(rows):
        raise ValueError(f"window must be an int in 0..{len(rows) - 1}, got {window!r}")
    one = Protocol(protocol.context, 1, protocol.split)
    ids = torch.from_numpy(rows[window])[None]
    first = one.first
    with torch.inference_mode():
        lp = torch.log_softmax(model(ids)[0, first:-1].double(), -1)
    nll = -float(lp.gather(1, ids[0, first + 1:, None]).sum()) / one.scored
    return math.exp(nll)
