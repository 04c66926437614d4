"""GPTQ: quantize a weight one input column at a time, and let the columns not yet quantized
absorb each column's error through the inverse Hessian of the layer's inputs.

For a Linear ``y = W x`` and calibration inputs ``X`` (in, tokens), the output error of a
quantized ``Q`` is ``||(W - Q) X||^2``, whose Hessian with respect to each row of ``W`` is
``H = 2 X X^T``, shared by all rows. Optimal Brain Quantization (OBQ) quantizes one weight
``q``, then moves the remaining ones by ``-(w_q - quant(w_q)) / [H^-1]_qq * [H^-1]_q,:`` to
cancel its error, and removes ``q`` from ``H^-1``. GPTQ (Frantar et al., ICLR 2023, Alg. 1)
makes this fast: every row in the same column order, so one ``H^-1`` serves all rows; the
updates of ``H^-1`` are the rows of its upper Cholesky factor ``U`` (``H^-1 = U^T U``); and
updates are applied lazily, 128 columns at a time.

Details as in the authors' code: columns with ``H_jj = 0`` (never active) are zeroed;
dampening adds ``damp * mean(diag H)`` to the diagonal; per-group parameters are computed
when a group's first column comes up, from the weights as they stand in the full matrix
(the updates inside the current lazy block are not yet written there). ``act_order``
quantizes columns by decreasing ``H_jj``; then qkit computes every group's parameters from
the original weights before starting ("static groups"), so that groups stay contiguous
runs of inputs and the kernels' layout is unchanged.
"""

from __future__ import annotations

import numpy as np

from qkit.engine.rtn import QuantizedWeight, WeightScheme, expand


def hessian(x, weight: float = 2.0) -> np.ndarray:
    """``2 X X^T / tokens`` (float64) of inputs ``x`` (tokens, in)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be (tokens, in) with tokens > 0, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or Inf")
    return weight * (x.T @ x) / x.shape[0]


def _check_hessian(h, n: int) -> np.ndarray:
    h = np.array(h, np.float64)
    if h.shape != (n, n):
        raise ValueError(f"hessian must be ({n}, {n}) for w with {n} inputs, got {h.shape}")
    if not np.isfinite(h).all() or not np.allclose(h, h.T, rtol=1e-6, atol=1e-9):
        raise ValueError("hessian must be finite and symmetric")
    return h


def _quant(w, scale, zero, qmin, qmax):
    q = np.clip(np.rint(w / scale) + zero, qmin, qmax)
    return q, (q - zero) * scale


def inverse_factor(h: np.ndarray, damp: float) -> np.ndarray:
    """Upper Cholesky factor ``U`` of the dampened ``H^-1`` (``H^-1 = U^T U``)."""
    h = h + damp * np.mean(np.diag(h)) * np.eye(len(h))
    try:
        return np.linalg.cholesky(np.linalg.inv(h)).T
    except np.linalg.LinAlgError as e:
        raise ValueError(f"the dampened hessian is not positive definite; raise damp "
                         f"(now {damp})") from e


def gptq(w, hessian, scheme: WeightScheme, *, damp: float = 0.01, block_size: int = 128,
         act_order: bool = False) -> QuantizedWeight:
    """GPTQ of an (out, in) weight given the (in, in) Hessian of its inputs."""
    w = scheme.check_weight(w).astype(np.float64)
    n = w.shape[1]
    h = _check_hessian(hessian, n)
    if not 0 <= damp < 1e3 or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"damp must be >= 0 and block_size an int >= 1, got {damp}, {block_size}")
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    g, (qmin, qmax) = scheme.group_size, scheme.qmin_qmax
    scale, zero = expand(scheme.params(w.astype(np.float32)), w.shape)
    scale, zero = scale.astype(np.float64), zero.astype(np.float64)
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(n)
    dynamic = g is not None and not act_order
    w, u = w[:, perm], inverse_factor(h[perm][:, perm], damp)
    codes = np.zeros(w.shape, np.int16)
    for i1 in range(0, n, block_size):
        i2 = min(i1 + block_size, n)
        w1, err1 = w[:, i1:i2].copy(), np.zeros((w.shape[0], i2 - i1))
        for i in range(i2 - i1):
            col = int(perm[i1 + i])
            grp = 0 if g is None else col // g
            if dynamic and col % g == 0:
                s, z = expand(scheme.params(w[:, col:col + g].astype(np.float32)), (w.shape[0],))
                scale[:, grp], zero[:, grp] = s[:, 0], z[:, 0]
            q, deq = _quant(w1[:, i], scale[:, grp], zero[:, grp], qmin, qmax)
            codes[:, i1 + i] = q
            err = (w1[:, i] - deq) / u[i1 + i, i1 + i]
            w1[:, i:] -= np.outer(err, u[i1 + i, i1 + i:i2])
            err1[:, i] = err
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    out = np.empty_like(codes)
    out[:, perm] = codes
    return QuantizedWeight(out, scale.astype(np.float32), zero.astype(np.int32), scheme)


def output_error(w, quantized: QuantizedWeight, x) -> float:
    """``||(W - Q) X||^2 / ||W X||^2`` on inputs ``x`` (tokens, in): what GPTQ minimizes."""
    w = np.asarray(w, np.float64)
    x = np.asarray(x, np.float64)
    diff = (w - quantized.dequantize()) @ x.T
    return float((diff**2).sum() / ((w @ x.T) ** 2).sum())
