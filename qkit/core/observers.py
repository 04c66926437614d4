"""Observers: choose the float range a quantizer covers, from data.

Each observer sees calibration batches through ``update(x)`` and answers
``range()`` (the clip points ``lo, hi``) and ``qparams(...)``. The procedures
follow docs/semantics.md ("Calibration observers") exactly:

* `MinMaxObserver` - running min and max (per tensor or per channel);
* `MovingAverageMinMaxObserver` - ``m += c * (m_batch - m)``, c = 0.01;
* `PercentileObserver` - the p-th percentile of |x| from a histogram;
* `MSEObserver` - the clip that minimises the histogram's quantization MSE;
* `EntropyObserver` - TensorRT's KL-divergence calibration;
* `ACIQObserver` - Banner et al.'s analytic clip for Gaussian/Laplace data.

The histogram observers return a symmetric range ``[-amax, amax]``
(``[0, amax]`` when the data are non-negative).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import erf

from qkit.core.checks import check_bits, check_float_array
from qkit.core.qparams import QParams, minmax, qparams_from_range


class Observer:
    """Base class: ``update`` with batches, then read ``range`` or ``qparams``."""

    axis: int | None = None

    def update(self, x) -> Observer:
        raise NotImplementedError

    def range(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def qparams(self, bits: int = 8, *, signed: bool = True, symmetric: bool = False,
                narrow_range: bool = False) -> QParams:
        """QParams covering `range` (PyTorch's rule, `qkit.core.qparams.qparams_from_range`)."""
        lo, hi = self.range()
        return qparams_from_range(lo, hi, bits, signed=signed, symmetric=symmetric,
                                  narrow_range=narrow_range, axis=self.axis)

    def _need_data(self, seen) -> None:
        if seen is None:
            raise ValueError(f"{type(self).__name__} has seen no data: call update(x) first")


class MinMaxObserver(Observer):
    """Running minimum and maximum, per tensor (``axis=None``) or per channel.

    >>> obs = MinMaxObserver().update([-1.0, 2.0]).update([3.0])
    >>> [float(v) for v in obs.range()]
    [-1.0, 3.0]
    """

    def __init__(self, axis: int | None = None):
        self.axis, self.lo, self.hi = axis, None, None

    def update(self, x):
        lo, hi = minmax(x, self.axis)
        self.lo = lo if self.lo is None else np.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else np.maximum(self.hi, hi)
        return self

    def range(self):
        self._need_data(self.lo)
        return self.lo, self.hi


class MovingAverageMinMaxObserver(MinMaxObserver):
    """``m += averaging_constant * (m_batch - m)``; the first batch sets ``m``.

    >>> obs = MovingAverageMinMaxObserver(averaging_constant=0.5)
    >>> [float(v) for v in obs.update([0.0, 4.0]).update([-2.0, 2.0]).range()]
    [-1.0, 3.0]
    """

    def __init__(self, averaging_constant: float = 0.01, axis: int | None = None):
        super().__init__(axis)
        if not 0 < averaging_constant <= 1:
            raise ValueError(f"averaging_constant must be in (0, 1], got {averaging_constant}")
        self.c = np.float32(averaging_constant)

    def update(self, x):
        lo, hi = minmax(x, self.axis)
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = self.lo + self.c * (lo - self.lo)
            self.hi = self.hi + self.c * (hi - self.hi)
        return self


class HistogramObserver(Observer):
    """A histogram of |x| over ``[0, amax]``; later batches widen it at the same bin width."""

    def __init__(self, bins: int = 2048):
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        self.n_bins, self.hist, self.edges, self.negative = bins, None, None, False

    def update(self, x):
        x = check_float_array(x)
        self.negative |= bool((x < 0).any())
        ax = np.abs(x).ravel().astype(np.float64)
        top = float(ax.max())
        if self.hist is None:
            self.edges = np.linspace(0.0, top if top > 0 else 1.0, self.n_bins + 1)
            self.hist = np.zeros(self.n_bins, np.int64)
        elif top > self.edges[-1]:  # extend with bins of the same width
            width = self.edges[1] - self.edges[0]
            n = int(math.ceil(top / width))
            self.edges = np.arange(n + 1) * width
            self.hist = np.concatenate([self.hist, np.zeros(n - self.hist.size, np.int64)])
        counts, _ = np.histogram(ax, bins=self.edges)
        self.hist += counts
        return self

    def amax(self) -> float:
        raise NotImplementedError

    def range(self):
        self._need_data(self.hist)
        amax = np.float32(self.amax())
        lo = -amax if self.negative else np.float32(0)
        return np.asarray(lo, np.float32), np.asarray(amax, np.float32)


class PercentileObserver(HistogramObserver):
    """``amax = edges[searchsorted(cumsum(hist) / total, p / 100)]`` (NVIDIA pytorch-quantization).

    >>> x = np.linspace(-1, 1, 10001, dtype=np.float32)
    >>> round(float(PercentileObserver(99.0).update(x).amax()), 2)
    0.99
    """

    def __init__(self, percentile: float = 99.99, bins: int = 2048):
        super().__init__(bins)
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        self.percentile = percentile

    def amax(self) -> float:
        cdf = np.cumsum(self.hist) / self.hist.sum()
        idx = min(int(np.searchsorted(cdf, self.percentile / 100)), self.edges.size - 1)
        return float(self.edges[idx])


class MSEObserver(HistogramObserver):
    """The bin centre that, used as amax, minimises ``sum counts * (fq(c) - c)^2``.

    Candidates are bin centres from ``start_bin`` on; each fake-quantizes the
    bin centres symmetric, narrow range (``[-(2^(b-1)-1), 2^(b-1)-1]``).
    """

    def __init__(self, bits: int = 8, bins: int = 2048, start_bin: int = 128):
        super().__init__(bins)
        self.bits, self.start_bin = check_bits(bits), start_bin

    def errors(self) -> tuple[np.ndarray, np.ndarray]:
        """Candidate amax values and the MSE each one gives."""
        self._need_data(self.hist)
        centres = (self.edges[:-1] + self.edges[1:]) / 2
        qmax = 2 ** (self.bits - 1) - 1
        cands = centres[min(self.start_bin, centres.size - 1):]
        step = cands[:, None] / qmax  # (candidates, 1)
        fq = np.clip(np.rint(centres[None, :] / step), 0, qmax) * step
        mse = ((fq - centres[None, :]) ** 2 * self.hist[None, :]).sum(axis=1) / self.hist.sum()
        return cands, mse

    def amax(self) -> float:
        cands, mse = self.errors()
        return float(cands[np.argmin(mse)])


class EntropyObserver(HistogramObserver):
    """TensorRT's calibration: the clip whose quantized histogram is closest in KL.

    For each ``i`` from ``start_bin`` to the number of bins: P is ``hist[:i]``
    with the tail folded into its last bin; Q merges ``hist[:i]`` into
    ``2^(b-1)`` groups and spreads each group's count evenly over its nonzero
    bins; the last ``i`` of minimum KL(P||Q) gives ``amax = edges[i]``
    (``bins[0]`` is first set to ``bins[1]``, as TensorRT does).

    Notes
    -----
    Migacz, "8-bit Inference with TensorRT", GTC 2017 (S7310).
    """

    def __init__(self, bits: int = 8, bins: int = 2048, start_bin: int = 128):
        super().__init__(bins)
        self.bits, self.start_bin = check_bits(bits), start_bin

    def divergences(self) -> tuple[np.ndarray, np.ndarray]:
        """Candidate bin counts ``i`` and KL(P||Q) for each."""
        self._need_data(self.hist)
        bins = self.hist.astype(np.float64)
        bins[0] = bins[1]
        n_levels = 2 ** (self.bits - 1)
        start = min(self.start_bin, bins.size)
        cands = np.arange(start, bins.size + 1)
        kl = np.array([_kl_candidate(bins, i, n_levels) for i in cands])
        return cands, kl

    def amax(self) -> float:
        cands, kl = self.divergences()
        last_argmin = kl.size - 1 - int(np.argmin(kl[::-1]))
        return float(self.edges[cands[last_argmin]])


def _kl_candidate(bins: np.ndarray, i: int, n_levels: int) -> float:
    p = bins[:i].copy()
    p[-1] += bins[i:].sum()  # fold the clipped tail into the last bin
    group = np.minimum((np.arange(i) * n_levels) // i, n_levels - 1)  # bin -> level
    nonzero = bins[:i] > 0
    total = np.bincount(group, weights=bins[:i], minlength=n_levels)
    count = np.bincount(group, weights=nonzero, minlength=n_levels)
    q = np.where(nonzero, total[group] / np.maximum(count[group], 1), 0.0)
    if p.sum() == 0 or q.sum() == 0:
        return np.inf
    p, q = p / p.sum(), q / q.sum()
    support = p > 0
    if (q[support] == 0).any():
        return np.inf
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def aciq_mse(alpha, scale: float, bits: int, dist: str):
    """ACIQ's expected MSE of clipping at ``alpha``: clip error + ``alpha^2 / (3 * 4^bits)``.

    ``scale`` is b for Laplace(b) and sigma for Gaussian(sigma) (Banner et al. 2019, eq. 5-6).
    """
    a = np.asarray(alpha, dtype=np.float64)
    if dist == "laplace":
        clip = 2 * scale**2 * np.exp(-a / scale)
    elif dist == "gaussian":
        clip = ((a**2 + scale**2) * (1 - erf(a / (np.sqrt(2) * scale)))
                - np.sqrt(2 / np.pi) * a * scale * np.exp(-(a**2) / (2 * scale**2)))
    else:
        raise ValueError(f"dist must be 'gaussian' or 'laplace', got {dist!r}")
    return clip + a**2 / (3 * 4.0**bits)


def aciq_alpha(bits: int, dist: str) -> float:
    """Optimal clip in units of b (Laplace) or sigma (Gaussian), minimising `aciq_mse`.

    >>> round(aciq_alpha(4, "laplace"), 2), round(aciq_alpha(4, "gaussian"), 2)
    (5.03, 2.56)
    """
    bits = check_bits(bits)
    res = minimize_scalar(lambda a: float(aciq_mse(a, 1.0, bits, dist)), bounds=(1e-3, 50.0),
                          method="bounded", options={"xatol": 1e-8})
    return float(res.x)


class ACIQObserver(Observer):
    """Analytic clipping (ACIQ): ``[mean - a*, mean + a*]`` within the data's range.

    ``a* = aciq_alpha(bits, dist) * b`` with b = mean |x - mean| (Laplace) or
    ``* sigma`` (Gaussian), from all data seen so far.

    Notes
    -----
    Banner, Nahshan, Soudry, "Post training 4-bit quantization of
    convolutional networks for rapid-deployment", NeurIPS 2019.
    """

    def __init__(self, bits: int = 8, dist: str = "laplace"):
        aciq_mse(1.0, 1.0, 8, dist)  # validates dist
        self.bits, self.dist, self.data = check_bits(bits), dist, []

    def update(self, x):
        self.data.append(check_float_array(x).ravel())
        return self

    def range(self):
        self._need_data(self.data or None)
        x = np.concatenate(self.data).astype(np.float64)
        mu = x.mean()
        spread = np.abs(x - mu).mean() if self.dist == "laplace" else x.std()
        alpha = aciq_alpha(self.bits, self.dist) * spread
        lo, hi = max(mu - alpha, x.min()), min(mu + alpha, x.max())
        return np.asarray(lo, np.float32), np.asarray(hi, np.float32)


OBSERVERS = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageMinMaxObserver,
    "percentile": PercentileObserver,
    "mse": MSEObserver,
    "entropy": EntropyObserver,
    "aciq": ACIQObserver,
}
