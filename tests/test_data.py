"""Real data offline: files checked by sha256, fixed splits, bundled signals."""

import shutil

import numpy as np
import pytest

from qkit import data


def test_real_weight_loads_and_is_checked():
    w = data.real_weight()
    assert w.shape == (1000, 1280) and w.dtype == np.float32
    assert 0.01 < w.std() < 0.2


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


def test_mnist_split_is_fixed_and_balanced():
    split = data.mnist5k()
    assert split["x_train"].shape == (4000, 28, 28) and split["x_test"].shape == (1000, 28, 28)
    assert np.bincount(split["y_test"]).tolist() == [100] * 10
    assert split["x_train"].dtype == np.uint8 and split["x_train"].max() == 255
    # the first test image of class 0 is always the same one
    assert int(split["x_test"][0].astype(np.int64).sum()) == int(
        data.mnist5k()["x_test"][0].astype(np.int64).sum())


def test_bbc_split_is_fixed():
    bbc = data.bbc_news()
    assert bbc["topics"] == ["business", "entertainment", "politics", "sports", "tech"]
    assert len(bbc["x_train"]) == 1558 and len(bbc["x_test"]) == 667
    assert np.bincount(bbc["y_test"]).tolist() == [153, 116, 125, 153, 120]


def test_real_signals_and_digits():
    s = data.signals()
    assert s["ecg"].shape == (1024,) and s["nino"].shape == (264,)
    assert np.isfinite(s["ecg"]).all() and s["ecg"].std() > 1
    images, labels = data.digits()
    assert images.shape == (1797, 8, 8) and images.max() == 16 and set(labels) == set(range(10))
