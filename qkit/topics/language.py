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
