"""Cached notebook results: present, checksummed, refused when corrupted, and equal to a
live re-measurement."""

import json
import shutil

import pytest

from qkit import data
from qkit.engine import IntegerModel
from qkit.studies import results


def test_every_result_is_present_and_verified():
    for name in results.PRODUCERS:
        assert isinstance(results.load(name), dict), name


def test_corrupted_or_unknown_result_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(results, "SUMS", tmp_path / "SHA256SUMS")
    shutil.copy(results.DATA_DIR / "results" / "qat.json", tmp_path / "qat.json")
    with pytest.raises(data.DataError, match="no checksum.*precompute qat"):
        results.load("qat")
    results.record("qat.json")
    assert results.load("qat")["rows"]
    text = json.loads((tmp_path / "qat.json").read_text())
    text["fp32"] = 1.0
    (tmp_path / "qat.json").write_text(json.dumps(text))
    with pytest.raises(data.DataError, match="corrupted.*python -m qkit precompute qat"):
        results.load("qat")
    (tmp_path / "qat.json").unlink()
    with pytest.raises(data.DataError, match="missing"):
        results.load("qat")
    with pytest.raises(KeyError, match="unknown result"):
        results.load("nothing")


@pytest.mark.slow
def test_stored_mnist_rows_match_the_live_engine(mnist):
    from qkit.engine import SCHEMES

    rows = [r for r in results.load("models")["rows"] if r["model"] == "mnist-cnn"
            and r["engine"] == "qkit int"]
    calib = mnist["x"][:256].numpy()
    for r in rows:
        im = IntegerModel.from_float(mnist["model"], calib, SCHEMES[r["scheme"]])
        assert float((im(mnist["x_test"].numpy()).argmax(1) == mnist["y_test"]).mean()) == \
            r["value"], r["scheme"]
        assert im.size_bytes() == r["size_bytes"]
