"""Mixed precision: sensitivity, greedy allocation under a budget, the Pareto front."""

import numpy as np

from qkit.topics import mixed


def _toy_sensitivity():
    return {"layers": ["a", "b", "c"], "choices": [2, 4, 8], "weights": [1000, 100, 5000],
            "channels": [10, 10, 10], "signal_power": 1.0,
            "sqnr_db": {"a": [5.0, 20.0, 45.0], "b": [2.0, 15.0, 40.0], "c": [20.0, 30.0, 50.0]}}


def test_allocation_meets_the_budget_and_spends_bits_where_they_matter():
    sens = _toy_sensitivity()
    full = mixed.model_bytes(sens, mixed.uniform_bits(sens, 8))
    previous = None
    for frac in (1.0, 0.7, 0.5, 0.35, 0.3):
        bits = mixed.allocate(sens, frac * full)
        assert mixed.model_bytes(sens, bits) <= frac * full
        pred = mixed.predicted_sqnr(sens, bits)
        assert previous is None or pred <= previous + 1e-9  # less budget, never better
        previous = pred
    assert mixed.allocate(sens, 0.5 * full)["c"] < 8  # the big, robust layer goes first
    smallest = mixed.allocate(sens, 0)  # unreachable: everything at the lowest choice
    assert set(smallest.values()) == {2}


def test_predicted_sqnr_adds_noise_powers():
    sens = _toy_sensitivity()
    bits = {"a": 4, "b": 4, "c": 8}
    want = 10 * np.log10(1 / (10**-2 + 10**-1.5 + 10**-5))
    assert abs(mixed.predicted_sqnr(sens, bits) - want) < 1e-9


def test_pareto_front():
    pts = [{"bytes": 10, "accuracy": 0.5}, {"bytes": 20, "accuracy": 0.4},
           {"bytes": 30, "accuracy": 0.9}, {"bytes": 30, "accuracy": 0.8},
           {"bytes": 40, "accuracy": 0.9}]
    assert mixed.pareto_front(pts) == [pts[0], pts[2]]


def test_mnist_sensitivity_is_ordered(mnist):
    sens = mixed.sensitivity(mnist["model"], mnist["x_test"][:200].numpy(),
                             mnist["y_test"][:200], choices=(2, 4, 8))
    for name in sens["layers"]:
        db = sens["sqnr_db"][name]
        assert db[0] < db[1] < db[2], name
    # the classifier alone at 2 bits costs the most accuracy (measured in notebook 08)
    assert min(sens["layers"], key=lambda n: sens["accuracy"][n][0]) == "classifier_1"
