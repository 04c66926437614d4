"""The language-model results in the README are the stored, checksummed measurements
(``python -m qkit precompute llm`` / ``llm_salient``), and the directions it states hold."""

import re
from pathlib import Path

import pytest

from qkit.studies import results

README = Path(__file__).resolve().parents[2] / "README.md"
NAMES = {"reference (the file)": "reference", "GGUF Q8_0 (qkit's bytes)": "gguf q8_0"}


def section() -> str:
    text = README.read_text()
    return text[text.index("## A language model in 4 bits"):text.index("## Benchmark")]


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def json_name(label: str) -> str:
    if label in NAMES:
        return NAMES[label]
    method, bits, group = label.split()[:3] if not label.startswith("GGUF") else (None,) * 3
    if method is None:
        return "gguf " + label.split()[1].lower()
    return f"{method.lower()} {bits} {group} asym"


def test_readme_perplexity_table_is_the_stored_result():
    stored = {r["name"]: r for r in results.load("llm")["rows"]}
    rows = table_rows(section(), "model")
    assert len(rows) == 12
    for label, _, ppl, kl in rows:
        r = stored[json_name(label)]
        assert ppl == f"{r['perplexity']:.2f}" and kl == f"{r['kl']:.4f}", label


def test_stated_directions_hold():
    stored = {r["name"]: r for r in results.load("llm")["rows"]}
    for scheme in ("int4 g128 asym", "int3 g128 asym"):
        rtn = stored[f"rtn {scheme}"]["perplexity"]
        assert stored[f"gptq {scheme}"]["perplexity"] < rtn
        assert stored[f"awq {scheme}"]["perplexity"] < rtn
    assert stored["gguf q5_1"]["perplexity"] > stored["gguf q4_k"]["perplexity"]
    agreement = results.load("llm")["q4_1_file_agreement"]
    assert agreement["identical"] == agreement["bytes"] == 66_355_200
    assert stored["gguf q4_1"]["kl"] == 0.0


def test_salient_channel_table_is_the_stored_result():
    stored = {r["name"]: r for r in results.load("llm_salient")["rows"]}
    rows = table_rows(section(), "kept in float")
    names = ["rtn", "rtn, salient 1% float", "rtn, random 1% float"]
    for (_, ppl, kl), name in zip(rows, names, strict=True):
        assert ppl == f"{stored[name]['perplexity']:.2f}" and kl == f"{stored[name]['kl']:.4f}"
    assert stored[names[1]]["perplexity"] < 0.6 * stored[names[2]]["perplexity"]


def test_decode_ratios_in_the_text_follow_its_table():
    rows = table_rows(section(), "engine")
    one = {r[0]: float(r[2]) for r in rows if r[1] == "1"}
    text = section()
    fp32, dyn = (float(x) for x in re.search(
        r"qkit's 4-bit decode is ([\d.]+)x PyTorch fp32 and ([\d.]+)x", text).groups())
    assert fp32 == pytest.approx(one["qkit Q4_1 x Q8_0"] / one["PyTorch fp32"], abs=0.05)
    assert dyn == pytest.approx(one["qkit Q4_1 x Q8_0"] / one["PyTorch dynamic int8"], abs=0.05)


def test_method_table_counts_the_bytes_of_each_format():
    from qkit.studies import llm

    table = llm.method_table(results.load("llm")).splitlines()
    row = {line.split()[0] + " " + line.split()[1]: line.split() for line in table[2:]}
    agreement = results.load("llm")["q4_1_file_agreement"]["bytes"]
    assert float(row["gguf q4_1"][2]) == round(agreement / 1e6, 1)  # the file's own bytes
    assert row["gguf q4_1"][3] == "5.00" and row["gguf q4_k"][3] == "4.50"
    assert row["rtn int4"][2] == row["gptq int4"][2] == row["awq int4"][2]


def test_stored_rtn_sweep_is_every_setting_with_its_stored_bits():
    from qkit.engine.rtn import WeightScheme
    from qkit.studies import llm

    sweep = results.load("llm_rtn")
    rows = [r for r in sweep["rows"] if r["name"] != "reference"]
    assert len(rows) == len(llm.SWEEP_BITS) * len(llm.SWEEP_GROUPS) * 2
    widths = {576: 2 * 576 * 576 + 2 * 192 * 576 + 2 * 1536 * 576, 1536: 576 * 1536}
    for r in rows:
        s = WeightScheme(r["bits"], r["group_size"], r["symmetric"])
        assert r["name"] == s.describe()
        want = sum(n * s.bits_per_weight(k) for k, n in widths.items()) / sum(widths.values())
        assert r["bits_per_weight"] == pytest.approx(want, rel=1e-6)
        assert r["protocol"] == sweep["protocol"] and r["kl"] > 0
    ref = next(r for r in sweep["rows"] if r["name"] == "reference")
    assert ref["perplexity"] == pytest.approx(
        next(r for r in results.load("llm")["rows"] if r["name"] == "reference")["perplexity"],
        rel=1e-6)  # the same protocol, the same reference, measured again


def test_stored_kv_results_and_their_bytes():
    from qkit.models.smollm2 import KVCache
    from qkit.studies import llm

    kv = {r["name"]: r for r in results.load("llm_kv")["rows"]}
    schemes = llm.kv_schemes()
    assert set(kv) == {"float32 cache", *schemes}
    for name, s in schemes.items():
        assert kv[name]["bytes_per_token"] == s.bytes_per_token() and kv[name]["kl"] > 0
    assert kv["float32 cache"]["bytes_per_token"] == KVCache().bytes_per_token() == 46080


def test_readme_kv_table_is_the_stored_result_and_its_directions_hold():
    kv = {r["name"]: r for r in results.load("llm_kv")["rows"]}
    rows = table_rows(section(), "KV cache")
    assert len(rows) == len(kv)
    for name, nbytes, ppl, kl in rows:
        r = kv[name]
        assert nbytes == f"{r['bytes_per_token']:,.0f}"
        assert ppl == f"{r['perplexity']:.2f}" and kl == f"{r['kl']:.4f}"
    p = {k: v["perplexity"] for k, v in kv.items()}
    assert kv["K4 V2"]["bytes_per_token"] == kv["K2 V4"]["bytes_per_token"]
    assert p["K4 V2"] < p["K2 V4"]  # keys need the bits
    assert p["K4 V4, keys per token"] - p["K4 V4"] < 0.2  # cost little at 4 bits ...
    assert p["K2 V2, keys per token"] > 5 * p["K2 V2"]  # ... break the model at 2
    assert p["K2 V2, no float tokens"] > p["K2 V2"] > p["K2 V2, 128 float tokens"]
    text = section()
    assert (f"{p['K2 V2, no float tokens']:.2f}, {p['K2 V2']:.2f} and "
            f"{p['K2 V2, 128 float tokens']:.2f}") in text


def test_readme_rtn_g32_is_not_q4_1():
    sweep = {r["name"]: r for r in results.load("llm_rtn")["rows"]}
    assert f"RTN scores {sweep['int4 g32 asym']['perplexity']:.2f} where Q4_1" in section()


def test_stored_eval_rows_agree_with_the_other_stored_results():
    """``eval --llm``'s rows: every scheme twice (perplexity, KL), the fake-quantized ones
    equal to the same computation in llm.json, the file on integer kernels near the
    reference (its activations are rounded to Q8_0), bytes as counted elsewhere."""
    from qkit.studies import llm

    rows = results.load("llm_eval")["rows"]
    by = {(r["scheme"], r["metric"]): r for r in rows}
    assert len(by) == len(rows) and {m for _, m in by} == {"perplexity", "kl"}
    same = {r["name"]: r for r in results.load("llm")["rows"]}
    for scheme in ("rtn int4 g128 asym", "rtn int3 g128 asym"):  # no calibration: identical
        assert by[(scheme, "perplexity")]["value"] == round(same[scheme]["perplexity"], 4)
        assert by[(scheme, "perplexity")]["size_bytes"] == same[scheme]["bytes"]
    for fmt in ("q8_0", "q6_k", "q5_1", "q4_k", "q4_0"):
        assert by[(f"gguf {fmt} (fake-quant)", "kl")]["value"] == round(
            same[f"gguf {fmt}"]["kl"], 4)
    ref = by[("fp32", "perplexity")]
    assert ref["value"] == round(same["reference"]["perplexity"], 4) == ref["fp32_value"]
    assert ref["size_bytes"] == 4 * llm.LINEAR_WEIGHTS
    f = by[("gguf q4_1 (the file's bytes)", "kl")]
    assert 0 < f["value"] < 0.01 and f["engine"] == "qkit int4 x int8"
    assert f["size_bytes"] == results.load("llm")["q4_1_file_agreement"]["bytes"]
    for r in rows:  # measured latencies, per token
        assert r["latency_ms"] > 0 and r["model"] == "smollm2-135m"


def test_eval_llm_prints_the_stored_rows(capsys):
    from qkit.studies import eval_cli

    assert eval_cli.main(["--llm"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "ms per decoded token" in out and "gguf q4_k" in out
