"""Scheme comparisons on a real weight matrix."""

import numpy as np
import pytest

from qkit.topics.compare import compare_schemes, quantize_report


def test_compare_schemes_rows(rng):
    w = rng.standard_normal((16, 128)).astype(np.float32)
    rows = compare_schemes(w, [(8, "per-tensor"), (4, "per-channel"), (4, "per-group (64)")])
    assert [r["bits"] for r in rows] == [8, 4, 4]
    assert rows[0]["sqnr_db"] > rows[1]["sqnr_db"]
    assert rows[1]["bytes"] < rows[0]["bytes"]
    with pytest.raises(ValueError, match="granularity must be one of"):
        quantize_report(w, 8, "per-row")
