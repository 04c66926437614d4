"""Notebook 03's activation tables: the converter's own table, each entry the float function
rounded onto the output grid, and bad ranges or functions named."""

import matplotlib
import numpy as np
import pytest

from qkit.engine.elementwise import lut_table
from qkit.topics.arithmetic import activation_table

matplotlib.use("Agg")


@pytest.mark.parametrize("fn", ["silu", "hardswish", "gelu", "sigmoid", "tanh", "mish"])
def test_table_is_the_converters_and_rounds_the_float_function(fn):
    t = activation_table(fn, in_range=(-4.0, 6.0))
    np.testing.assert_array_equal(t["table"], lut_table({"fn": fn}, t["in_grid"], t["out_grid"]))
    s, z = t["out_grid"]
    expect = np.clip(np.rint((t["y_float"] / np.float32(s)).astype(np.float32)) + z, 0, 255)
    np.testing.assert_array_equal(t["table"], expect)
    assert t["max_error_steps"] <= 0.5
    assert 1 < t["distinct"] <= 256


def test_a_narrow_output_grid_saturates_and_says_so():
    wide, narrow = activation_table("silu"), activation_table("silu", out_range=(-0.5, 1.0))
    assert narrow["saturated"] > wide["saturated"]
    assert narrow["table"].max() == 255


def test_leaky_relu_slope_reaches_the_table():
    a = activation_table("leaky_relu", slope=0.01)
    b = activation_table("leaky_relu", slope=0.2)
    assert not np.array_equal(a["table"], b["table"])


@pytest.mark.parametrize("kw, match", [
    ({"in_range": (1.0, 2.0)}, "in_range"), ({"in_range": (-1.0, float("nan"))}, "in_range"),
    ({"out_range": (0.5, 1.0)}, "out_range"), ({"out_range": (0.0, float("inf"))}, "out_range"),
])
def test_bad_ranges_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        activation_table("silu", **kw)


def test_unknown_function_is_named():
    with pytest.raises(ValueError, match="softmax"):
        activation_table("softmax")


def test_plot_draws_both_panels():
    from qkit.lab import plots

    out = plots.activation_table(activation_table("hardswish"))
    assert out["max_error_steps"] <= 0.5
    import matplotlib.pyplot as plt

    assert len(plt.gcf().axes) == 2
    plt.close("all")
