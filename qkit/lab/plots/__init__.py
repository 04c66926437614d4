"""Every figure the kit draws: `signals` (grids, noise, error; notebooks 00-03) and `models`
(speed, layers, grids, QAT, mixed precision, energy, SmoothQuant; notebooks 04-10) and `formats`
(bits, blocks, rotations; notebook 11)."""

from qkit.lab.plots import formats
from qkit.lab.plots.models import (
    allocation,
    channel_smoothing,
    energy_bars,
    grid_levels,
    layer_sqnr_bars,
    layer_sqnr_lines,
    qat_curves,
    sensitivity_bars,
    speed_bars,
    ste_staircase,
)
from qkit.lab.plots.signals import (
    activation_table,
    channel_ranges,
    error_histogram,
    fixed_point_difference,
    image_and_error,
    observer_clips,
    range_mapping,
    sqnr_curve,
    weights_and_error,
)

__all__ = ["activation_table", "allocation", "formats", "channel_ranges",
           "channel_smoothing", "energy_bars",
           "error_histogram", "fixed_point_difference", "grid_levels", "image_and_error",
           "layer_sqnr_bars", "layer_sqnr_lines", "observer_clips", "qat_curves",
           "range_mapping", "sensitivity_bars", "speed_bars", "sqnr_curve", "ste_staircase",
           "weights_and_error"]
