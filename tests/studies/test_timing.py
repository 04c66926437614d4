"""Timing takes every library's threads in hand, keeps the faster thread count and refuses
impossible figures."""

import time

import numba
import pytest

from qkit.studies import speed, timing


def test_using_threads_sets_and_restores_every_library():
    import torch
    from threadpoolctl import threadpool_info

    before_numba, before_torch = numba.get_num_threads(), torch.get_num_threads()
    with timing.using_threads(1):
        assert numba.get_num_threads() == 1 and torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert numba.get_num_threads() == before_numba and torch.get_num_threads() == before_torch


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_using_threads_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        with timing.using_threads(bad):
            pass


def test_best_of_threads_keeps_the_faster_count():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only")

    def worse_with_more():
        time.sleep(0.001 * numba.get_num_threads())

    def better_with_more():
        time.sleep(0.002 / numba.get_num_threads())

    got = timing.best_of_threads({"a": worse_with_more, "b": better_with_more}, 2, 2, 0.005)
    assert got["a"][1] == 1 and got["b"][1] == 2
    assert got["a"][0] < got["b"][0] * 2


def test_implausible_figures_are_named_and_refused():
    bad = timing.implausible({"ok": 50.0, "fast": 5000.0, "zero": 0.0, "nan": float("nan")},
                             peak_gops=100.0, threads=2)
    assert set(bad) == {"fast", "zero", "nan"} and "ceiling" in bad["fast"]
    with pytest.raises(RuntimeError, match="implausible timing for 'fast'"):
        timing.check_plausible({"fast": 5000.0}, 100.0, 2)
    timing.check_plausible({"ok": 50.0}, 100.0, 2)


def test_slow_versions_are_timed_on_a_few_rows_and_say_so():
    assert speed.rows_timed(2, 1024, 2048, 2048) == 2
    assert speed.rows_timed(5, 1024, 2048, 2048) == 1024
    names = list(speed.versions(64, 512, 512))
    assert any(n.startswith("2.") and n.endswith("[38 of 64 rows]") for n in names), names
    assert speed._rows("2. x [38 of 64 rows]", 64) == 38 and speed._rows("5. y", 64) == 64
