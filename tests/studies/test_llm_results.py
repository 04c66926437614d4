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
