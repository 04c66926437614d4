"""Claims of notebook 12 (a language model in 4 bits): the file's blocks, the protocol, the
stored RTN sweep and method tables, the activation channels, and what the quantized models
write."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.lab.claims import claim, measured
from qkit.lab.claims.shared import smollm2 as reference

PROMPT = "The capital of France is"


def _rows(name: str) -> dict:
    from qkit.studies import results

    return {r["name"]: r for r in results.load(name)["rows"]}


@cache
def _means():
    from qkit.models import smollm2_quant

    return smollm2_quant.activation_means(reference(), windows=1)  # as the notebook does


def _ratio(m) -> float:
    top = np.argsort(-m)[:max(1, int(round(0.01 * m.size)))]
    return float(m[top].mean() / np.median(m))


@cache
def _continuation(variant: str, temperature: float = 0.0, seed: int = 0) -> dict:
    from qkit.lab.widgets.language import make_variant
    from qkit.topics.language import compare_continuations

    return compare_continuations(reference(), make_variant(reference(), variant), PROMPT, 20,
                                 temperature, seed)


@claim("12", "SmolLM2-135M-Instruct is a real decoder (30 layers, 576 wide, 9 query heads "
             "sharing 3 key/value heads, a 49,152-token vocabulary) shipped as a GGUF file, the "
             "format llama.cpp runs.")
def _architecture():
    from qkit.models import smollm2 as S

    r = S.reader()
    want = {"llama.block_count": 30, "llama.embedding_length": 576,
            "llama.attention.head_count": 9, "llama.attention.head_count_kv": 3}
    got = {k: int(r.fields[k].parts[r.fields[k].data[0]][0]) for k in want}
    vocab = S.raw_tensors()["token_embd.weight"][1].shape[0]
    return measured(got == want and vocab == 49152 == S.VOCAB, f"{got}, vocabulary {vocab}")


@claim("12", "Quantizing it again to Q4_1 gives the file back byte for byte, "
             "so the lessons use settings where the error is real: groups of 128, 3 bits, "
             "other grids.")
def _file_back():
    from qkit.studies import results

    a = results.load("llm")["q4_1_file_agreement"]
    return measured(a["identical"] == a["bytes"] > 6e7,
                    f"{a['identical']:,} of {a['bytes']:,} bytes identical (stored)")


@claim("12", "After \"The capital of France is\" the reference puts about three quarters of its "
             "probability on \" Paris\".", slow=True)
def _paris():
    from qkit.topics.language import next_tokens

    top = next_tokens(reference(), PROMPT, 2)
    return measured(top[0][0] == " Paris" and 0.7 <= top[0][1] <= 0.8,
                    f"top two {[(t, round(p, 3)) for t, p in top]}")


@claim("12", "A Q4_1 block is 20 bytes: a float16 scale $d$, a float16 minimum $m$ and 32 four-bit "
             "codes $q$, two per byte, each weight $w = d\\,q + m$.")
def _q4_1_layout():
    from qkit.formats import ggml
    from qkit.topics.language import file_block

    v = file_block("blk.5.ffn_up.weight", 7, 3)
    d, m = np.float32(v["d"]), np.float32(v["m"])
    same = np.array_equal(v["values"], d * v["codes"].astype(np.float32) + m)
    return measured(v["bytes"].size == 20 == ggml.FORMATS["q4_1"][2] and same
                    and v["codes"].max() <= 15,
                    f"{v['bytes'].size} bytes; d*q + m equals gguf's dequantized values: {same}")


@claim("12", "The embedding (which doubles as the output layer) is Q8_0: 34 bytes, a float16 $d$ "
             "and 32 int8 codes, $w = d\\,q$.")
def _q8_0_layout():
    from qkit.models import smollm2 as S
    from qkit.topics.language import file_block

    v = file_block("token_embd.weight", 1000, 2)
    same = np.array_equal(v["values"], np.float32(v["d"]) * v["codes"].astype(np.float32))
    tied = "output.weight" not in S.raw_tensors()
    return measured(v["fmt"] == "q8_0" and v["bytes"].size == 34 and same and tied,
                    f"{v['fmt']}, {v['bytes'].size} bytes, d*q exact: {same}, no output.weight "
                    f"tensor in the file: {tied}")


@claim("12", "Codes 0-15 of a Q4_1 block are the low nibbles of bytes 4-19 and codes 16-31 their "
             "high nibbles, so the two halves of the block share bytes.")
def _nibbles():
    from qkit.topics.language import file_block

    v = file_block("blk.0.attn_q.weight", 3, 4)
    b = v["bytes"].astype(int)
    ok = all(v["codes"][j] == (b[4 + j] & 15) and v["codes"][16 + j] == b[4 + j] >> 4
             for j in range(16))
    return measured(ok and v["where"][0] == "byte 4 low" and v["where"][16] == "byte 4 high",
                    f"codes from the nibbles by hand match: {ok}")


@claim("12", "Step through the 18 blocks of a row: $d$ changes along the row, because every "
             "32 weights get a grid of their own.")
def _d_changes():
    from qkit.topics.language import file_block

    ds = [file_block("blk.2.attn_q.weight", 0, b)["d"] for b in range(18)]
    return measured(len(set(ds)) >= 17, f"{len(set(ds))} distinct d in 18 blocks, "
                                        f"{min(ds):.4g} to {max(ds):.4g}")


@claim("12", "Look for the block's smallest and largest weights: in every one of the file's "
             "3,317,760 Q4_1 blocks the smallest sits on code 0 (the value $m$) and the largest on "
             "code 15.", slow=True)
def _code_ends():
    from qkit.formats import ggml
    from qkit.models import smollm2 as S

    n = ok = 0
    for fmt, raw in S.raw_tensors().values():
        if fmt == "q4_1":
            q = ggml.decode(raw, fmt)["q"]
            n += q.shape[0]
            ok += int(((q.min(1) == 0) & (q.max(1) == 15)).sum())
    return measured(n == ok == 3_317_760, f"{ok:,} of {n:,} blocks span codes 0..15")


@claim("12", "Switch to token_embd: the block grows to 34 bytes, the codes are signed int8 and "
             "the grid has 255 levels.")
def _embd_block():
    from qkit.topics.language import file_block

    v = file_block("token_embd.weight", 0, 0)
    return measured(v["bytes"].size == 34 and v["codes"].min() >= -127
                    and v["codes"].dtype.kind == "i",
                    f"{v['bytes'].size} bytes, codes {v['codes'].min()}..{v['codes'].max()} "
                    "(int8 clipped to +-127: 255 levels)")


@claim("12", "The text is the evaluation split of the Wikipedia articles shipped in gensim, cut "
             "into 16 windows of 512 tokens; each window runs from an empty cache and only its "
             "second half is scored, so every scored token sees at least 256 tokens before it "
             "(4,080 tokens in all, the protocol of llama.cpp's llama-perplexity).")
def _protocol():
    from qkit.topics.language import Protocol

    p = Protocol()
    return measured(p.windows == 16 and p.context == 512 and p.first == 256
                    and p.scored == 4080 and p.split == "evaluation", p.describe())


@claim("12", "One window is a noisy sample of the text: the first window alone scores about half "
             "the perplexity of all sixteen.", slow=True)
def _one_window():
    from qkit.topics.language import window_perplexity

    w = window_perplexity(reference())
    full = _rows("llm")["reference"]["perplexity"]
    return measured(0.4 < w / full < 0.6, f"window 0: {w:.2f}, all 16 (stored): {full:.2f}")


@claim("12", "AWQ starts from an observation: in every linear layer a few input channels carry "
             "activations far larger than the rest, and the weights that multiply them matter "
             "most.", slow=True)
def _observation():
    r = [_ratio(m) for m in _means().values()]
    _, rtn, sal, rnd = _salient()
    return measured(min(r) > 2.5 and sal < rnd,
                    f"top 1% of channels at >= {min(r):.1f}x the median in every layer; their "
                    f"weights kept in float: {sal:.1f} vs {rnd:.1f} for as many at random")


@claim("12", "AWQ's motivating experiment: int3 g128 RTN, but the weights of 1% of each layer's "
             "input channels kept in float, either the most active channels or as many at "
             "random (python -m qkit precompute llm_salient):")
def _salient_setup():
    from qkit.studies import results

    s = results.load("llm_salient")
    return measured(s["scheme"] == "int3 g128 asym" and s["fraction"] == 0.01
                    and "mean |x|" in s["activation_statistics"],
                    f"{s['scheme']}, fraction {s['fraction']}, {s['activation_statistics']}")


@claim("12", "Layer 0, attn_output: its top 6 channels average over 30x the median channel.",
       slow=True)
def _layer0_out():
    r = _ratio(_means()["blk.0.attn_output"])
    return measured(r > 30, f"{r:.1f}x")


@claim("12", "Step through the layers at ffn_down: every layer has outliers, from under 3x the "
             "median to over 40x in the last layer.", slow=True)
def _ffn_down():
    r = [_ratio(_means()[f"blk.{i}.ffn_down"]) for i in range(30)]
    return measured(min(r) < 3 and min(r) > 2 and r[-1] > 40 and r[-1] == max(r),
                    f"{min(r):.1f}x to {max(r):.1f}x (layer 29: {r[-1]:.1f}x)")


@claim("12", "Across all 210 linear layers, the top 1% of input channels average between 2.6 "
             "and 43 times the median channel.", slow=True)
def _all_layers():
    r = [_ratio(m) for m in _means().values()]
    return measured(len(r) == 210 and 2.55 <= min(r) < 2.65 and 42.5 <= max(r) < 43.5,
                    f"{len(r)} layers, {min(r):.2f}x to {max(r):.2f}x")


@claim("12", "Both calibrate on 32 windows of 512 tokens of the calibration split (stored: "
             "python -m qkit precompute llm).")
def _calibration():
    from qkit.studies import results

    c = results.load("llm")["calibration"]
    return measured(c.startswith("32 x 512 tokens") and "calibration split" in c, c)


@claim("12", "At int4 g128 both GPTQ and AWQ beat RTN, in perplexity (27.95 for RTN, 26.55 for "
             "GPTQ, 25.23 for AWQ) and in KL.")
def _int4_methods():
    r = _rows("llm")
    p = {m: r[f"{m} int4 g128 asym"] for m in ("rtn", "gptq", "awq")}
    shown = [round(p[m]["perplexity"], 2) for m in ("rtn", "gptq", "awq")]
    return measured(shown == [27.95, 26.55, 25.23]
                    and p["gptq"]["kl"] < p["rtn"]["kl"] and p["awq"]["kl"] < p["rtn"]["kl"],
                    f"perplexity {shown}, KL " + ", ".join(f"{m} {v['kl']:.3f}"
                                                          for m, v in p.items()))


@claim("12", "At int3 g128 RTN's perplexity nearly quadruples; GPTQ and AWQ bring it down by a "
             "third (81.3 to 53.4 and 54.6).")
def _int3_methods():
    r = _rows("llm")
    ref = r["reference"]["perplexity"]
    p = {m: r[f"{m} int3 g128 asym"]["perplexity"] for m in ("rtn", "gptq", "awq")}
    cut = [1 - p[m] / p["rtn"] for m in ("gptq", "awq")]
    return measured(3.5 < p["rtn"] / ref < 4 and all(0.3 < c < 0.37 for c in cut)
                    and [round(p[m], 1) for m in p] == [81.3, 53.4, 54.6],
                    f"RTN {p['rtn'] / ref:.2f}x the reference; cut by {cut[0]:.0%} and "
                    f"{cut[1]:.0%}")


@claim("12", "The block formats of llama.cpp, applied by qkit to the reference: Q4_K (4.5 bits "
             "per weight, a 6-bit scale and minimum per 32 weights inside super-blocks of 256) "
             "keeps within 0.4 of the reference's perplexity, where Q4_0 at the same 4.5 bits "
             "loses more than 4.")
def _gguf_formats():
    from qkit.formats import ggml, kquants

    r = _rows("llm")
    ref = r["reference"]["perplexity"]
    k, z = r["gguf q4_k"]["perplexity"] - ref, r["gguf q4_0"]["perplexity"] - ref
    bpw = kquants.bits_per_weight("q4_k")
    return measured(0 < k < 0.4 and z > 4 and bpw == 4.5 == ggml.bits_per_weight("q4_0"),
                    f"Q4_K +{k:.2f}, Q4_0 +{z:.2f}; {bpw} bits per weight")


@claim("12", "Q4_1 reproduces the file and so scores exactly the reference's numbers.")
def _q4_1_same():
    r = _rows("llm")
    return measured(r["gguf q4_1"]["perplexity"] == r["reference"]["perplexity"]
                    and r["gguf q4_1"]["kl"] == 0.0,
                    f"{r['gguf q4_1']['perplexity']} vs {r['reference']['perplexity']}, KL "
                    f"{r['gguf q4_1']['kl']}")


def _salient():
    r = _rows("llm_salient")
    return (r["reference"]["perplexity"], r["rtn"]["perplexity"],
            r["rtn, salient 1% float"]["perplexity"], r["rtn, random 1% float"]["perplexity"])


@claim("12", "Keeping the salient 1% in float nearly halves RTN's int3 perplexity; keeping a "
             "random 1% barely changes it.")
def _salient_text():
    _, rtn, sal, rnd = _salient()
    return measured(0.5 < sal / rtn < 0.6 and 0.95 < rnd / rtn < 1.0,
                    f"RTN {rtn:.2f}; salient kept {sal:.2f}; random kept {rnd:.2f}")


@claim("12", "rtn int8 per channel sym writes the reference's continuation token for token.",
       slow=True)
def _int8_same():
    c = _continuation("rtn int8 per channel sym")
    return measured(c["tokens"] == 20 and c["same_prefix"] == 20 and c["model"] == c["reference"],
                    f"{c['same_prefix']} of {c['tokens']} tokens as the reference's")


@claim("12", "rtn int2 g64 asym writes nothing the reference would have written: no token of "
             "its continuation is the reference's choice.", slow=True)
def _int2_gibberish():
    c = _continuation("rtn int2 g64 asym")
    return measured(c["tokens"] > 0 and int(c["agrees"].sum()) == 0,
                    f"{int(c['agrees'].sum())} of {c['tokens']} tokens the reference's argmax")


@claim("12", "rtn int4 g128 asym starts like the reference and drifts later; type a prompt of "
             "your own.", slow=True)
def _drift():
    c = _continuation("rtn int4 g128 asym")
    return measured(0 < c["same_prefix"] < c["tokens"],
                    f"first {c['same_prefix']} of {c['tokens']} tokens as the reference's")


@claim("12", "The file's q4_1 on int4 x int8 kernels runs the file's own bytes on qkit's "
             "integer block kernels, the activations rounded to 8 bits per block of 32 as "
             "llama.cpp does: it writes the reference's text.", slow=True)
def _file_on_kernels():
    c = _continuation("the file's q4_1 on int4 x int8 kernels")
    return measured(c["tokens"] == 20 and c["model"] == c["reference"],
                    f"{c['same_prefix']} of {c['tokens']} tokens as the reference's")


@claim("12", "Raise the temperature and move the seed: both models draw the same random numbers, "
             "so rtn int8 per channel sym, whose distributions match the reference's, samples the "
             "reference's text too.", slow=True)
def _sampling():
    same = [_continuation("rtn int8 per channel sym", 0.8, s) for s in range(3)]
    ok = all(c["model"] == c["reference"] for c in same)
    return measured(ok, "T=0.8, seeds 0-2: " + ", ".join(
        f"{c['same_prefix']}/{c['tokens']}" for c in same) + " tokens identical")


@claim("12", "A 4-bit GGUF file is not 4 bits per weight: Q4_1 spends 5 bits, the extra bit on "
             "each block's float16 scale and minimum.")
def _five_bits():
    from qkit.formats import ggml

    return measured(ggml.bits_per_weight("q4_1") == 5.0,
                    f"{ggml.bits_per_weight('q4_1')} bits per weight")


@claim("12", "A perplexity means nothing without its protocol; next to it, the KL divergence to "
             "the reference shows how far a model's predictions moved.", slow=True)
def _protocol_takeaway():
    from qkit.topics.language import window_perplexity

    r = _rows("llm")
    full = r["reference"]["perplexity"]
    w = window_perplexity(reference())
    # same model, two protocols, two numbers; and KL is 0 only for the model that is the file
    kl_zero = sorted(k for k, v in r.items() if v["kl"] == 0)
    return measured(abs(w - full) > 5 and kl_zero == ["gguf q4_1", "reference"],
                    f"the reference scores {w:.2f} on one window, {full:.2f} on 16; KL 0 only "
                    f"for {kl_zero}")


@claim("12", "GPTQ (error feedback through the Hessian) and AWQ (scales for the salient "
             "channels) beat RTN at the same bits, most of all at 3 bits.")
def _methods_takeaway():
    r = _rows("llm")
    gain = {b: {m: 1 - r[f"{m} int{b} g128 asym"]["perplexity"]
                / r[f"rtn int{b} g128 asym"]["perplexity"] for m in ("gptq", "awq")}
            for b in (3, 4)}
    same_bytes = all(r[f"{m} int{b} g128 asym"]["bytes"] == r[f"rtn int{b} g128 asym"]["bytes"]
                     for m in ("gptq", "awq") for b in (3, 4))
    ok = same_bytes and all(gain[b][m] > 0 for b in gain for m in gain[b]) and all(
        gain[3][m] > gain[4][m] for m in ("gptq", "awq"))
    return measured(ok, "perplexity cut vs RTN: " + "; ".join(
        f"int{b}: " + ", ".join(f"{m} {g:.0%}" for m, g in gain[b].items()) for b in gain))


@claim("12", "1% of the input channels carries most of what rounding destroys: keeping them in "
             "float nearly halves the int3 perplexity, keeping a random 1% barely moves it.")
def _salient_takeaway():
    ref, rtn, sal, rnd = _salient()
    recovered = (rtn - sal) / (rtn - ref)
    return measured(recovered > 0.5 and 0.5 < sal / rtn < 0.6 and 0.95 < rnd / rtn < 1.0,
                    f"the salient 1% wins back {recovered:.0%} of RTN's perplexity loss; random "
                    f"{(rtn - rnd) / (rtn - ref):.0%}")


from qkit.lab.claims import nb12_rtn  # noqa: E402, F401  (the RTN sweep's claims)
