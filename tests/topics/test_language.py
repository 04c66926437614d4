"""The notebook-12 helpers of `qkit.topics.language`: one block of the file read by hand,
next-token probabilities, one window's perplexity, and two continuations side by side."""

import math

import numpy as np
import pytest
import torch

from qkit.formats import ggml
from qkit.models import smollm2 as S
from qkit.topics import language as L

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return S.load()


def test_file_block_is_the_file_read_by_hand():
    raw = S.raw_tensors()
    rng = np.random.default_rng(12)
    for tensor in ("blk.0.attn_k.weight", "blk.17.ffn_down.weight", "token_embd.weight"):
        fmt, data = raw[tensor]
        size = ggml.FORMATS[fmt][2]
        for _ in range(5):
            row = int(rng.integers(data.shape[0]))
            block = int(rng.integers(data.shape[1] // size))
            v = L.file_block(tensor, row, block)
            b = data[row, block * size:(block + 1) * size]
            assert np.array_equal(v["bytes"], b) and v["fmt"] == fmt
            d = np.frombuffer(b[:2].tobytes(), np.float16)[0]
            assert v["d"] == float(d)
            if fmt == "q4_1":  # d, m, then byte j = code j (low) | code j + 16 (high)
                m = np.frombuffer(b[2:4].tobytes(), np.float16)[0]
                codes = np.concatenate([b[4:] & 15, b[4:] >> 4]).astype(np.float32)
                want = np.float32(d) * codes + np.float32(m)
            else:
                want = np.float32(d) * b[2:].view(np.int8).astype(np.float32)
            assert np.array_equal(v["values"], want)
            # the same weights as the dequantized row the model holds
            full = ggml.dequantize(data[row], fmt)
            assert np.array_equal(v["values"], full[block * 32:(block + 1) * 32])


def test_file_block_refuses_bad_arguments():
    with pytest.raises(ValueError, match="tensor must name"):
        L.file_block("blk.99.attn_q.weight")
    with pytest.raises(ValueError, match="not a block format"):
        L.file_block("output_norm.weight")
    for bad in (dict(row=192), dict(row=-1), dict(block=18), dict(row=1.5), dict(block=True)):
        with pytest.raises(ValueError, match="row|block"):
            L.file_block("blk.0.attn_k.weight", **bad)


def test_next_tokens_and_window_perplexity(model):
    top = L.next_tokens(model, "The capital of France is", 3)
    assert top[0][0] == " Paris" and top[0][1] > top[1][1] > top[2][1] > 0
    p = L.Protocol(context=64, windows=2)
    r = L.evaluate({"m": model}, p)
    w = [L.window_perplexity(model, p, i) for i in range(2)]
    # the protocol's perplexity is the geometric mean of its windows' (equal scored counts)
    assert math.isclose(r["m"]["perplexity"], math.sqrt(w[0] * w[1]), rel_tol=1e-9)
    with pytest.raises(ValueError, match="window"):
        L.window_perplexity(model, p, 2)
    with pytest.raises(ValueError, match="top"):
        L.next_tokens(model, "x", 0)
    with pytest.raises(ValueError, match="prompt is empty"):
        L.next_tokens(model, "")


def test_compare_continuations_scores_the_model_text_with_the_reference(model):
    same = L.compare_continuations(model, model, "Once upon a time", 8)
    assert same["reference"] == same["model"] and same["same_prefix"] == same["tokens"] == 8
    assert same["agrees"].all()  # greedy: every token is the reference's argmax
    noisy = S.load()
    with torch.no_grad():
        for block in noisy.blocks:
            block.ffn_up.weight.mul_(1 + 0.5 * torch.randn_like(block.ffn_up.weight))
    r = L.compare_continuations(model, noisy, "Once upon a time", 8, temperature=1.0, seed=1)
    ids = S.tokenizer().encode("Once upon a time").ids
    out = S.generate_ids(noisy, ids, 8, 1.0, 1)
    assert r["model"] == S.tokenizer().decode(out) and len(r["p_reference"]) == len(out)
    with torch.no_grad():  # teacher-forced probabilities, one token at a time by hand
        for i, t in enumerate(out):
            p = torch.softmax(model(torch.tensor([ids + out[:i]]))[0, -1].double(), -1)
            assert math.isclose(float(p[t]), r["p_reference"][i], rel_tol=1e-4)  # float32
            assert bool(r["agrees"][i]) == (int(p.argmax()) == t)
    long = L.compare_continuations(model, model, "word " * 400, 1)
    assert long["prompt_tokens"] == L.PROMPT_TOKENS
    with pytest.raises(ValueError, match="prompt is empty"):
        L.compare_continuations(model, model, "", 4)
    with pytest.raises(TypeError, match="prompt"):
        L.compare_continuations(model, model, 5, 4)
