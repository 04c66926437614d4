"""Exercise checkers: call one with your answer, read the feedback.

Each checker returns a `Feedback` (truthy when the answer is right) and prints
it, so a notebook cell is one line: ``exercises.scale_and_zero_point(0.02, 75)``.
One module per notebook (``ex05_calibration``: notebook 05) holds its checkers and
their reference solutions; `SOLUTIONS` gathers them; ``python -m qkit exercises`` runs every
checker against them (instructors: that is the one command to check the set).
"""

from __future__ import annotations

from qkit.lab.exercises.ex00_welcome import SOLUTIONS as _ex00
from qkit.lab.exercises.ex00_welcome import db_per_bit, int8_bytes, mac_energy_ratio
from qkit.lab.exercises.ex01_range_mapping import SOLUTIONS as _ex01
from qkit.lab.exercises.ex01_range_mapping import (
    per_channel_scales,
    quantize_function,
    scale_and_zero_point,
)
from qkit.lab.exercises.ex02_noise import SOLUTIONS as _ex02
from qkit.lab.exercises.ex02_noise import best_clip, noise_power, sqnr_theory
from qkit.lab.exercises.ex03_integer_arithmetic import SOLUTIONS as _ex03
from qkit.lab.exercises.ex03_integer_arithmetic import (
    multiplier_by_hand,
    overflow_bound,
    zero_point_correction,
)
from qkit.lab.exercises.ex04_speed import SOLUTIONS as _ex04
from qkit.lab.exercises.ex04_speed import gemv_bytes_ratio, ops_count, roofline
from qkit.lab.exercises.ex05_calibration import SOLUTIONS as _ex05
from qkit.lab.exercises.ex05_calibration import cle_factor, fold_bn, percentile_clip
from qkit.lab.exercises.ex06_grids import SOLUTIONS as _ex06
from qkit.lab.exercises.ex06_grids import kmeans_step, lut_multiplies, nf4_bits_per_weight
from qkit.lab.exercises.ex07_qat import SOLUTIONS as _ex07
from qkit.lab.exercises.ex07_qat import lsq_grad_scale, lsq_init, ste_gradient
from qkit.lab.exercises.ex08_mixed_precision import SOLUTIONS as _ex08
from qkit.lab.exercises.ex08_mixed_precision import additive_sqnr, allocation_bytes, greedy_choice
from qkit.lab.exercises.ex09_cost import SOLUTIONS as _ex09
from qkit.lab.exercises.ex09_cost import dram_vs_mac, gemv_intensity, model_energy
from qkit.lab.exercises.ex10_transformer import SOLUTIONS as _ex10
from qkit.lab.exercises.ex10_transformer import group_bytes, levels_left, smoothing_factor
from qkit.lab.exercises.ex11_formats import SOLUTIONS as _ex11
from qkit.lab.exercises.ex11_formats import e4m3_by_hand, nvfp4_bytes, shared_exponent
from qkit.lab.exercises.ex12_language import SOLUTIONS as _ex12
from qkit.lab.exercises.ex12_language import perplexity_from_nll, q4_1_bits, q4_1_weight
from qkit.lab.exercises.feedback import Feedback, report

SOLUTIONS = {
    **_ex00, **_ex01, **_ex02, **_ex03, **_ex04, **_ex05, **_ex06, **_ex07, **_ex08, **_ex09,
    **_ex10, **_ex11, **_ex12
}

__all__ = [
    "SOLUTIONS", "Feedback", "check_all", "report", "int8_bytes", "db_per_bit", "mac_energy_ratio",
    "scale_and_zero_point", "quantize_function", "per_channel_scales", "sqnr_theory",
    "noise_power", "best_clip", "zero_point_correction", "overflow_bound", "multiplier_by_hand",
    "ops_count", "gemv_bytes_ratio", "roofline", "fold_bn", "percentile_clip", "cle_factor",
    "kmeans_step", "lut_multiplies", "nf4_bits_per_weight", "ste_gradient", "lsq_init",
    "lsq_grad_scale", "additive_sqnr", "allocation_bytes", "greedy_choice", "dram_vs_mac",
    "model_energy", "gemv_intensity", "smoothing_factor", "group_bytes", "levels_left",
    "e4m3_by_hand", "shared_exponent", "nvfp4_bytes", "q4_1_weight", "q4_1_bits",
    "perplexity_from_nll"
]


def check_all() -> int:
    """Run every checker on its reference solution; the number that failed."""
    failed = [name for name, run in SOLUTIONS.items() if not run()]
    print(f"{len(SOLUTIONS) - len(failed)} passed, {len(failed)} failed")
    return len(failed)
