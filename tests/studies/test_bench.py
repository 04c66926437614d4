"""The benchmark harness validates, times and reports (small shapes; no speed is asserted)."""

import json
import subprocess
import sys

import pytest

from qkit.studies.bench import _check, measure


@pytest.mark.slow
def test_bench_json_lines():
    out = subprocess.run([sys.executable, "-m", "qkit", "bench", "--quick", "--json",
                          "--threads", "1"], capture_output=True, text=True, timeout=600,
                         check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    gemm = [r for r in rows if r["op"] == "gemm"]
    impls = {r["impl"] for r in gemm}
    assert {"qkit int8", "qkit int8 plain", "numpy fp32"} <= impls
    for r in gemm:
        assert {"op", "shape", "impl", "threads", "gops"} <= r.keys()
        assert r["gops"] > 0 and r["threads"] == 1
    peak = [r for r in rows if r["op"] == "peak"]
    assert len(peak) == 1 and peak[0]["gops"] > 1


def test_measure_interleaves_and_returns_medians():
    calls = []
    med = measure({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3,
                  min_time=0.0)
    assert set(med) == {"a", "b"} and all(v >= 0 for v in med.values())
    timed = calls[4:]  # after two warm-up calls each; then per round: untimed, timed
    assert timed[:4] == ["a", "a", "b", "b"]


def test_wrong_results_are_refused():
    import numpy as np

    exact = np.arange(6).reshape(2, 3)
    _check("qkit int8", exact.copy(), exact)
    with pytest.raises(AssertionError, match="refusing to time"):
        _check("qkit int8", exact + 1, exact)
    with pytest.raises(AssertionError, match="refusing to time"):
        _check("numpy fp32", exact * 1.5, exact)


def test_bench_formats_rows_and_table(monkeypatch):
    from qkit.studies import bench_formats

    monkeypatch.setattr(bench_formats, "N_VALUES", 10_000)
    monkeypatch.setattr(bench_formats, "FWHT_SHAPE", (64, 256))
    rows = bench_formats.run(rounds=1)
    ops = {r["op"] for r in rows}
    assert ops == {f"encode {f}" for f in bench_formats.FORMATS} | {"fwht"}
    assert all(r["ms"] > 0 and r["speedup_vs_reference"] > 0 for r in rows)
    assert all(r["speedup_vs_reference"] == 1.0 for r in rows if r["impl"] == "numpy reference")
    assert "vs reference" in bench_formats.format_table(rows)
