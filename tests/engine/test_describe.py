"""Scheme names and traced graphs in words: what notebooks print instead of raw dumps."""

import pytest

from qkit.engine import SCHEMES, describe, summary, trace
from qkit.engine.scheme import scheme_parts


def test_every_named_scheme_is_described():
    for name, scheme in SCHEMES.items():
        words = describe(name)
        assert f"{scheme.weight_bits}-bit weights" in words
        assert ("bias correction" in words) == scheme.bias_correction
        assert ("CLE" in words) == scheme.equalize
        assert ("adaptive rounding" in words) == (scheme.rounding == "adaptive")


@pytest.mark.parametrize("name, parts", [
    ("torch-dynamic-w8a8", {"engine": "PyTorch", "activations": "8-bit dynamic"}),
    ("w4a16-g64", {"weights": "4-bit in groups of 64", "activations": "float"}),
    ("torch-ptq-w8a8-per-channel", {"engine": "PyTorch", "weights": "8-bit per channel"}),
    ("w8a8-per-tensor-cle-la-ada-bc", {"methods": ["CLE", "loss-aware ranges",
                                                    "adaptive rounding", "bias correction"]}),
])
def test_scheme_parts(name, parts):
    got = scheme_parts(name)
    assert {k: got[k] for k in parts} == parts


@pytest.mark.parametrize("bad, error", [("w8a8-per-channel-xyz", ValueError),
                                        ("int8", ValueError), ("wxa8-per-channel", ValueError),
                                        (8, TypeError)])
def test_bad_scheme_names_are_refused(bad, error):
    with pytest.raises(error, match="name"):
        scheme_parts(bad)


def test_summary_names_folded_batchnorm(models):
    text = summary(trace(models[0])[0])
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["#", "op"] and "BN folded" in text
    assert all(line == line.rstrip() for line in lines)


def test_scheme_table_reads_the_stored_results():
    from qkit.studies import results
    from qkit.studies.eval import scheme_table

    t = results.load("models")
    text = scheme_table(t, "mobilenet-v2", ("top1_agreement", "logit_sqnr_db"),
                        ("w8a8-per-tensor", "w8a8-per-channel"))
    assert text.splitlines()[1].split()[:4] == ["qkit", "8-bit", "per", "tensor"]
    assert " dB" in text and "%" in text
    with pytest.raises(ValueError, match="not in this table"):
        scheme_table(t, "resnet")
    with pytest.raises(ValueError, match="not in the table"):
        scheme_table(t, "mobilenet-v2", schemes=("w2a2-per-channel",))
