"""Fixed-point requantization against exact rational arithmetic (the QNNPACK tester's checklist)."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qkit.core.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    srdhm,
)

pytestmark = pytest.mark.nojit


def round_half_up(f: Fraction) -> int:
    """Nearest integer, ties toward +infinity: what gemmlowp's SRDHM formula computes."""
    return (f + Fraction(1, 2)).__floor__()


def round_half_away(f: Fraction) -> int:
    n = abs(f.numerator) * 2 + f.denominator
    q = n // (2 * f.denominator)
    return q if f >= 0 else -q


def test_quantize_multiplier_known_values():
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(1.0) == (2**30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # below 2**-31: product rounds to 0
    # q just under 1 rounds up to 2**31 -> halved, shift + 1
    m = 1 - 2.0**-33
    assert quantize_multiplier(m) == (2**30, 1)


@given(st.floats(2.0**-31, 2.0**29, allow_nan=False))
def test_quantize_multiplier_in_range_and_close(m):
    m0, shift = quantize_multiplier(m)
    assert 2**30 <= m0 < 2**31
    exact = Fraction(m0) * Fraction(2) ** (shift - 31)
    assert abs(exact - Fraction(m)) <= Fraction(2) ** (shift - 32)  # half an ulp of M0


@pytest.mark.parametrize("a,b", [(INT32_MIN, INT32_MIN), (INT32_MAX, INT32_MAX),
                                 (INT32_MIN, INT32_MAX), (INT32_MIN, 1), (1, 1), (0, INT32_MIN),
                                 (-1, 2**30), (1, 2**30), (3, 2**30), (-3, 2**30)])
def test_srdhm_extremes_and_ties(a, b):
    got = int(srdhm(a, b))
    expected = INT32_MAX if a == b == INT32_MIN else round_half_up(Fraction(a * b, 2**31))
    assert got == expected


@given(st.integers(INT32_MIN, INT32_MAX), st.integers(INT32_MIN, INT32_MAX))
def test_srdhm_random(a, b):
    if a == b == INT32_MIN:
        return
    assert int(srdhm(a, b)) == round_half_up(Fraction(a * b, 2**31))


def test_rounding_divide_by_pot_exact_ties_and_extremes():
    for e in range(0, 32):
        for x in [0, 1, -1, 2**e, -(2**e), 3 * 2 ** max(e - 1, 0), -3 * 2 ** max(e - 1, 0),
                  INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1]:
            expected = round_half_away(Fraction(x, 2**e))
            assert int(rounding_divide_by_pot(x, e)) == expected, (x, e)
    # exact division by a power of two is exact
    x = np.arange(-1000, 1000) * 8
    np.testing.assert_array_equal(rounding_divide_by_pot(x, 3), x // 8)
    with pytest.raises(ValueError, match="exponent"):
        rounding_divide_by_pot(1, 32)


@given(st.integers(INT32_MIN, INT32_MAX), st.floats(2.0**-31, 0.999))
def test_multiply_by_quantized_multiplier_within_one_of_exact(x, m):
    m0, shift = quantize_multiplier(m)
    got = int(multiply_by_quantized_multiplier(x, m0, shift))
    exact = Fraction(x) * Fraction(m0) * Fraction(2) ** (shift - 31)
    # two roundings (SRDHM then RDBPOT): within one unit of the exact product
    assert abs(Fraction(got) - exact) <= 1


def test_srdhm_ties_go_toward_plus_infinity():
    m0, shift = quantize_multiplier(0.5)  # M0 = 2**30, shift 0: x/2 with SRDHM's rounding only
    got = multiply_by_quantized_multiplier(np.arange(-3, 4), m0, shift)
    np.testing.assert_array_equal(got, [-1, -1, 0, 0, 1, 1, 2])


def test_rdbpot_ties_go_away_from_zero():
    m0, shift = quantize_multiplier(0.25)  # SRDHM halves exactly for even x, RDBPOT rounds
    got = multiply_by_quantized_multiplier(np.array([-6, -2, 2, 6]), m0, shift)
    np.testing.assert_array_equal(got, [-2, -1, 1, 2])


def test_left_shift_saturates():
    m0, shift = quantize_multiplier(4.0)
    assert shift == 3
    assert int(multiply_by_quantized_multiplier(2**29, m0, shift)) == INT32_MAX // 2 + 1
    assert int(multiply_by_quantized_multiplier(-(2**29), m0, shift)) == -(2**30)


def test_quantize_multiplier_rejects_bad_values():
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="multiplier"):
            quantize_multiplier(bad)
    with pytest.raises(ValueError, match="out of range"):
        quantize_multiplier(2.0**31)
