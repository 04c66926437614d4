"""Quantize, dequantize and requantize, and their hypothesis properties.

Every numba kernel equals its NumPy reference, integer for integer: random shapes (1x1,
odd sizes, non-contiguous views), extreme values and hypothesis properties. These modules
also run with ``NUMBA_DISABLE_JIT=1`` (``make test``), which catches missing casts.
"""


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernel_cases import S8, U8, assert_same, ints

import qkit.kernels as K
import qkit.reference as R
from qkit.core.fixedpoint import quantize_multiplier
from qkit.core.qparams import QParams, qparams_from_tensor

pytestmark = pytest.mark.nojit


QPARAM_CASES = [
    dict(bits=8, signed=True, symmetric=True, narrow_range=True),
    dict(bits=8, signed=False),
    dict(bits=4, signed=True, axis=0),
    dict(bits=3, signed=False, axis=1, group_size=4),
    dict(bits=16, signed=True),
    dict(bits=2, signed=True, symmetric=True),
]


@pytest.mark.parametrize("kw", QPARAM_CASES)
@pytest.mark.parametrize("rounding", ["half_even", "half_away", "floor", "stochastic"])
def test_quantize_dequantize(rng, kw, rounding):
    x = (rng.standard_normal((6, 8)) * 3).astype(np.float32)
    x[1] = 0.0  # an all-zero channel
    x[2] = 1.5  # a constant channel
    qp = qparams_from_tensor(x, **kw)
    q = K.quantize(x, qp, rounding, rng=np.random.default_rng(1))
    assert_same(q, R.quantize(x, qp, rounding, rng=np.random.default_rng(1)))
    assert q.min() >= qp.qmin and q.max() <= qp.qmax
    assert_same(K.dequantize(q, qp), R.dequantize(q, qp))


def test_quantize_ties_and_limits():
    qp = QParams(np.float32(1.0), 127, bits=8, signed=False)
    x = np.array([-0.5, 0.5, 1.5, 2.5, -127.5, 128.5, -1e6, 1e6], np.float32)
    for rounding in ("half_even", "half_away", "floor"):
        assert_same(K.quantize(x, qp, rounding), R.quantize(x, qp, rounding))
    assert K.quantize(x, qp).tolist() == [127, 127, 129, 129, 0, 255, 0, 255]
    assert K.quantize(x, qp, "half_away").tolist() == [126, 128, 129, 130, 0, 255, 0, 255]


REQUANT_RANGES = [(0, 255, 0), (0, 255, 255), (-128, 127, -128), (-128, 127, 127), (7, 200, 9)]


@pytest.mark.parametrize("qmin,qmax,zp", REQUANT_RANGES)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_requantize(rng, qmin, qmax, zp, per_channel, with_bias):
    acc = ints(rng, (9, 13), np.int32)
    acc[0, :4] = [np.iinfo(np.int32).min, np.iinfo(np.int32).max, 0, -1]
    n = 13 if per_channel else 1
    m0, shift = quantize_multiplier(rng.uniform(1e-9, 1.5, n))
    bias_i = ints(rng, (13,), np.int32, -(2**20), 2**20) if with_bias else None
    out = K.requantize_fixed(acc, m0, shift, zp, qmin, qmax, bias=bias_i)
    assert_same(out, R.requantize_fixed(acc, m0, shift, zp, qmin, qmax, bias=bias_i))
    mult = rng.uniform(1e-9, 1e-2, n).astype(np.float32)
    bias_f = (rng.standard_normal(13) * 1e5).astype(np.float32) if with_bias else None
    out = K.requantize_float(acc, mult, zp, qmin, qmax, bias=bias_f)
    assert_same(out, R.requantize_float(acc, mult, zp, qmin, qmax, bias=bias_f))


# --- hypothesis properties ------------------------------------------------------------------


@given(hnp.arrays(np.float32, st.integers(1, 40),
                  elements=st.floats(-1e3, 1e3, width=32, allow_subnormal=False)),
       st.integers(2, 16), st.booleans(), st.booleans())
def test_round_trip_error_at_most_half_a_step(x, bits, signed, symmetric):
    qp = qparams_from_tensor(x, bits=bits, signed=signed, symmetric=symmetric)
    q = K.quantize(x, qp)
    assert_same(q, R.quantize(x, qp))
    assert qp.qmin <= q.min() and q.max() <= qp.qmax
    err = np.abs(K.dequantize(q, qp).astype(np.float64) - x)
    # inside the range: <= scale/2 (+ float32 rounding of x/scale and of (q-zp)*scale)
    step = float(qp.scale)
    tol = step / 2 + 4 * np.finfo(np.float32).eps * (np.abs(x).max() + step)
    assert err.max() <= tol


@given(hnp.arrays(np.int32, st.tuples(st.integers(1, 5), st.integers(1, 6))),
       st.floats(1e-10, 4.0), st.integers(-128, 127))
def test_requantize_fixed_matches_reference(acc, m, zp):
    m0, shift = quantize_multiplier(m)
    assert_same(K.requantize_fixed(acc, m0, shift, zp, -128, 127),
                R.requantize_fixed(acc, m0, shift, zp, -128, 127))


@given(st.integers(1, 9), st.integers(1, 70), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_gemm_property(m, k, n, seed):
    r = np.random.default_rng(seed)
    a, w = ints(r, (m, k), U8), ints(r, (n, k), S8)
    assert_same(K.gemm(a, w), R.gemm(a, w))
    assert_same(K.gemm_pairs16(a, w), R.gemm_pairs16(a, w))
    a7 = ints(r, (m, k), U8, 0, 127)  # reduce_range activations: pairs cannot saturate
    assert_same(K.gemm_pairs16(a7, w), R.gemm(a7, w))


@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
def test_fused_activation_clamps(rng, activation):
    from qkit.core.qparams import activation_range

    scale, zp = 0.05, 10  # uint8 output grid: real 0 at 10, real 6 at 130
    lo, hi = activation_range(activation, scale, zp, 0, 255)
    acc = ints(rng, (6, 9), np.int32, -(2**16), 2**16)
    mult = np.float32(0.01)
    out = K.requantize_float(acc, mult, zp, lo, hi)
    assert_same(out, R.requantize_float(acc, mult, zp, lo, hi))
    y = np.clip(np.rint(acc.astype(np.float32) * mult) + zp, 0, 255)  # no activation
    expected = {None: y, "relu": np.maximum(y, zp), "relu6": np.clip(y, zp, 130)}[activation]
    np.testing.assert_array_equal(out, expected)


