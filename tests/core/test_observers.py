"""QParams and observers: PyTorch's rules, and each calibration procedure as published."""

from collections import Counter

import numpy as np
import pytest

from qkit.core.observers import (
    OBSERVERS,
    ACIQObserver,
    EntropyObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    PercentileObserver,
    aciq_alpha,
    aciq_mse,
)
from qkit.core.qparams import QParams, qparams_from_range, qparams_from_tensor, qrange

torch = pytest.importorskip("torch")
obs_mod = pytest.importorskip("torch.ao.quantization.observer",
                              reason="this torch has no torch.ao quantization observers")


@pytest.mark.parametrize("dtype,qscheme", [
    (torch.quint8, torch.per_tensor_affine), (torch.qint8, torch.per_tensor_affine),
    (torch.qint8, torch.per_tensor_symmetric), (torch.quint8, torch.per_tensor_symmetric)])
def test_minmax_qparams_match_torch(rng, dtype, qscheme):
    for trial in range(20):
        x = (rng.standard_normal(300) * rng.uniform(0.01, 10) + rng.uniform(-3, 3))
        x = x.astype(np.float32)
        if trial == 0:
            x[:] = 0.0  # all zero
        if trial == 1:
            x[:] = 2.5  # constant
        ref = obs_mod.MinMaxObserver(dtype=dtype, qscheme=qscheme)
        ref(torch.from_numpy(x))
        s_ref, z_ref = ref.calculate_qparams()
        signed = dtype == torch.qint8
        qp = MinMaxObserver().update(x).qparams(8, signed=signed,
                                                symmetric=qscheme == torch.per_tensor_symmetric)
        assert float(qp.scale) == pytest.approx(float(s_ref), rel=0, abs=0)
        assert int(qp.zero_point) == int(z_ref)
        assert np.isfinite(qp.scale) and qp.scale > 0


def test_per_channel_minmax_matches_torch(rng):
    w = (rng.standard_normal((16, 3, 3, 3)) * rng.uniform(0.01, 2, (16, 1, 1, 1)))
    w = w.astype(np.float32)
    w[3] = 0.0
    ref = obs_mod.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                           qscheme=torch.per_channel_symmetric)
    ref(torch.from_numpy(w))
    s_ref, z_ref = ref.calculate_qparams()
    qp = MinMaxObserver(axis=0).update(w).qparams(8, signed=True, symmetric=True)
    np.testing.assert_array_equal(qp.scale, s_ref.numpy().astype(np.float32))
    np.testing.assert_array_equal(qp.zero_point, z_ref.numpy())


def test_moving_average_matches_torch(rng):
    ref = obs_mod.MovingAverageMinMaxObserver(dtype=torch.quint8)
    ours = MovingAverageMinMaxObserver()
    for _ in range(10):
        x = (rng.standard_normal(200) * rng.uniform(0.5, 3)).astype(np.float32)
        ref(torch.from_numpy(x))
        ours.update(x)
    lo, hi = ours.range()
    assert float(lo) == pytest.approx(float(ref.min_val), rel=1e-6)
    assert float(hi) == pytest.approx(float(ref.max_val), rel=1e-6)


def test_qrange_and_granularities(rng):
    assert qrange(4, True) == (-8, 7) and qrange(4, False) == (0, 15)
    assert qrange(16, True, narrow_range=True) == (-32767, 32767)
    w = rng.standard_normal((4, 6, 8)).astype(np.float32)
    assert qparams_from_tensor(w).scale.shape == ()
    assert qparams_from_tensor(w, axis=1).scale.shape == (6,)
    qp = qparams_from_tensor(w, axis=2, group_size=4)
    assert qp.scale.shape == (4, 6, 2) and qp.granularity == "per-group"
    # per-group scale equals per-tensor scale of that group
    g = w[1, 2, 4:8]
    assert qp.scale[1, 2, 1] == qparams_from_tensor(g).scale
    with pytest.raises(ValueError, match="group_size=5 must divide"):
        qparams_from_tensor(w, axis=2, group_size=5)


def test_symmetric_zero_point_and_narrow_range():
    qp = qparams_from_range(-2.0, 1.0, bits=8, signed=True, symmetric=True, narrow_range=True)
    assert int(qp.zero_point) == 0 and float(qp.scale) == np.float32(2.0) / np.float32(127)
    qp = qparams_from_range(0.0, 1.0, bits=8, signed=False, symmetric=True)
    assert int(qp.zero_point) == 128


def test_constant_and_zero_tensors_get_a_usable_scale():
    for x in (np.zeros(10, np.float32), np.full(10, -3.0, np.float32)):
        qp = qparams_from_tensor(x)
        assert np.isfinite(qp.scale) and qp.scale > 0
        from qkit import dequantize, quantize

        np.testing.assert_allclose(dequantize(quantize(x, qp), qp), x, atol=float(qp.scale))


# --- histogram observers ----------------------------------------------------------------------


def test_percentile(rng):
    x = rng.standard_normal(200_000).astype(np.float32)
    amax = PercentileObserver(99.0).update(x).amax()
    assert amax == pytest.approx(np.quantile(np.abs(x), 0.99), rel=0.01)
    obs = PercentileObserver(100.0).update(x)  # amax is the left edge of the last bin
    assert 0 <= np.abs(x).max() - obs.amax() <= obs.edges[1] + 1e-6


def test_histogram_grows_with_same_bin_width(rng):
    obs = PercentileObserver(bins=100).update(np.linspace(-1, 1, 101, dtype=np.float32))
    width = obs.edges[1]
    obs.update(np.array([3.0], np.float32))
    assert obs.edges[1] == width and obs.edges[-1] >= 3.0 and obs.hist.sum() == 102


def _mse_literal(hist, edges, bits=8, start_bin=128):
    """The procedure as written in docs/semantics.md, one candidate at a time."""
    centres = (edges[:-1] + edges[1:]) / 2
    best, best_amax = np.inf, None
    qmax = 2 ** (bits - 1) - 1
    for i in range(start_bin, len(centres)):
        amax = centres[i]
        q = np.clip(np.round(centres / amax * qmax), -qmax, qmax) * amax / qmax
        err = np.sum(hist * (q - centres) ** 2)
        if err < best:
            best, best_amax = err, amax
    return best_amax


def test_mse_observer_matches_literal_procedure(rng):
    x = rng.laplace(size=50_000).astype(np.float32)
    obs = MSEObserver().update(x)
    assert obs.amax() == pytest.approx(_mse_literal(obs.hist, obs.edges), rel=1e-12)
    assert obs.amax() < np.abs(x).max()  # heavy tails get clipped


def _kl_literal(hist, edges, bits=8, start_bin=128):
    """TensorRT's loop transcribed plainly (digitize + Counter), as an independent check."""
    bins = hist.astype(np.float64).copy()
    bins[0] = bins[1]
    nbins = 1 << (bits - 1)
    divs = []
    for i in range(start_bin, len(bins) + 1):
        space = np.linspace(0, i, num=nbins + 1)
        digitized = np.digitize(range(i), space) - 1
        digitized[bins[:i] == 0] = -1
        counts = np.zeros(nbins)
        for j, d in enumerate(digitized):
            if d != -1:
                counts[d] += bins[j]
        for key, val in Counter(digitized).items():
            if key != -1:
                counts[key] /= val
        q = np.array([counts[d] if d != -1 else 0.0 for d in digitized])
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        p, q = p / p.sum(), q / q.sum()
        mask = p > 0
        divs.append(np.inf if (q[mask] == 0).any() else np.sum(p[mask] * np.log(p[mask] / q[mask])))
    divs = np.array(divs)
    last = len(divs) - 1 - np.argmin(divs[::-1])
    return edges[last + start_bin]


def test_entropy_observer_matches_tensorrt_loop(rng):
    x = np.concatenate([rng.standard_normal(20_000), rng.standard_normal(50) * 8])
    obs = EntropyObserver(bins=400).update(x.astype(np.float32))
    assert obs.amax() == _kl_literal(obs.hist, obs.edges)
    assert obs.amax() < np.abs(x).max()


@pytest.mark.parametrize("bits,laplace,gauss", [(2, 2.83, 1.71), (3, 3.90, 2.15), (4, 5.03, 2.56),
                                                (8, 9.90, 3.92)])
def test_aciq_alphas_match_banner_et_al(bits, laplace, gauss):
    assert aciq_alpha(bits, "laplace") == pytest.approx(laplace, abs=0.01)
    assert aciq_alpha(bits, "gaussian") == pytest.approx(gauss, abs=0.01)


def test_aciq_mse_is_minimal_at_alpha_and_observer_uses_it(rng):
    a = aciq_alpha(4, "gaussian")
    assert aciq_mse(a, 1.0, 4, "gaussian") < aciq_mse([a * 0.9, a * 1.1], 1.0, 4, "gaussian").min()
    x = rng.standard_normal(100_000).astype(np.float32)
    lo, hi = ACIQObserver(4, "gaussian").update(x).range()
    assert float(hi) == pytest.approx(a * x.std() + x.mean(), rel=1e-3)
    assert float(lo) == pytest.approx(-a * x.std() + x.mean(), rel=1e-2)


def test_every_observer_gives_valid_qparams(rng):
    x = rng.standard_normal(5000).astype(np.float32)
    for name, cls in OBSERVERS.items():
        qp = cls().update(x).qparams(bits=8, signed=True, symmetric=True)
        assert isinstance(qp, QParams) and np.isfinite(qp.scale) and qp.scale > 0, name
        with pytest.raises(ValueError, match="no data"):
            cls().range()
