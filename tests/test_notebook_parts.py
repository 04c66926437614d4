"""Data loading with checksums, metrics, the comparison table and the widget, headless."""

import shutil

import numpy as np
import pytest

from qkit import data
from qkit.core.metrics import sqnr_db, theoretical_sqnr_db
from qkit.topics.compare import GRANULARITIES, compare_schemes, quantize_report


def test_real_weight_loads_and_is_checked():
    w = data.real_weight()
    assert w.shape == (1000, 1280) and w.dtype == np.float32
    assert 0.01 < w.std() < 0.2  # real trained weights, not zeros or noise of unit scale


def test_corrupted_or_missing_file_names_the_file_and_the_fix(tmp_path):
    src = data.package_file(data.MOBILENET_V2)
    bad = tmp_path / src.name
    shutil.copy(src, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(data.DataError, match=r"corrupted: sha256 .* To restore it: pip install"):
        data.verified_file(bad, data.MOBILENET_V2["sha256"], "pip install x")
    with pytest.raises(data.DataError, match="missing"):
        data.verified_file(tmp_path / "nope.pth", "0" * 64, "pip install x")
    spec = dict(data.MOBILENET_V2, package="qkit_no_such_package")
    with pytest.raises(data.DataError, match="is not installed"):
        data.package_file(spec)


def test_sqnr_of_a_full_scale_sine_follows_6_02_b():
    """A sine spanning 2^b levels exactly: SQNR = 6.02 b + 1.76 dB, less the grid's 2^b/(2^b-1)."""
    from qkit import fake_quantize, qparams_from_range

    t = np.linspace(0, 200 * np.pi, 100_000, endpoint=False)
    x = (1 + np.sin(t)).astype(np.float32)  # [0, 2]: uint8 min-max puts levels 0..2^b-1 on it
    for bits in (4, 8):
        qp = qparams_from_range(0.0, 2.0, bits=bits, signed=False)
        measured = sqnr_db(x - 1, fake_quantize(x, qp) - 1)
        step_penalty = 20 * np.log10(2**bits / (2**bits - 1))  # step is 2/(2^b - 1), not 2/2^b
        assert measured == pytest.approx(theoretical_sqnr_db(bits) - step_penalty, abs=0.5)


def test_compare_schemes_rows(rng):
    w = rng.standard_normal((16, 128)).astype(np.float32)
    rows = compare_schemes(w, [(8, "per-tensor"), (4, "per-channel"), (4, "per-group (64)")])
    assert [r["bits"] for r in rows] == [8, 4, 4]
    assert rows[0]["sqnr_db"] > rows[1]["sqnr_db"]
    assert rows[1]["bytes"] < rows[0]["bytes"]
    with pytest.raises(ValueError, match="granularity must be one of"):
        quantize_report(w, 8, "per-row")


def test_bits_explorer_every_control_at_each_end(rng):
    from qkit.lab.widgets import bits_explorer

    w = rng.standard_normal((32, 128)).astype(np.float32) * 0.05
    ex = bits_explorer(w)
    bits, gran, sym = ex.controls["bits"], ex.controls["granularity"], ex.controls["symmetric"]
    seen = {}
    for b in (bits.min, (bits.min + bits.max) // 2, bits.max):
        for g in GRANULARITIES:
            for s in (True, False):
                bits.value, gran.value, sym.value = b, g, s
                assert np.isfinite(ex.result["sqnr_db"]) and ex.figure is not None
                seen[(b, g, s)] = ex.result["sqnr_db"]
    assert seen[(8, "per-tensor", True)] > seen[(5, "per-tensor", True)] + 12
    assert seen[(2, "per-channel", True)] > seen[(2, "per-tensor", True)] - 1e-9
    assert "SQNR" in ex.label.value
