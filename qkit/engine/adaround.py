"""Adaptive weight rounding: round each weight up or down so that the *layer's output* changes
least on calibration data, instead of rounding each weight to its nearest grid point.

With weights ``w`` on a grid of step ``s`` and codes ``q``, output channel ``o`` of a layer
changes by ``d_o . x`` where ``d_o = s_o q_o - w_o`` and ``x`` is an input patch. Its mean
square over the calibration data is ``d_o^T H d_o`` with ``H = E[x x^T]``, the second
moment of the layer's input patches. Nearest rounding minimises each ``|d_oi|`` on its own
and ignores ``H``; AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training
Quantization", ICML 2020) minimises this local loss over the up/down choices, with a
continuous relaxation. Here it is solved directly:

* a 3x3 depthwise channel has 9 weights: all ``2**9 = 512`` up/down choices are tried and
  the best is kept (exact, per channel, ``H`` is 9 x 9);
* elsewhere, coordinate descent: starting from nearest rounding, flip a weight to its other
  neighbour whenever that lowers ``d^T H d`` (the change is ``e (2 (H d)_i + e H_ii)``
  for a step ``e``), all output channels at once, for a few sweeps. The loss never rises,
  so the result is never worse than nearest rounding on the calibration data.

Why it matters: in MobileNetV2 after BN folding, some depthwise channels see nearly
constant inputs, so their output depends on the *sum* of the channel's nine weights; nearest
rounding lets those errors add up, adaptive rounding cancels them (see notebook 05).
"""

from __future__ import annotations

import itertools

import numpy as np

from qkit.core.qparams import qparams_from_tensor
from qkit.engine.floatrun import run_float

SWEEPS = 3


def supported(op) -> bool:
    """Linear, ungrouped conv and depthwise conv ops get moments; other grouped convs do not."""
    if op.kind == "linear":
        return True
    if op.kind != "conv":
        return False
    return op.params["groups"] == 1 or _depthwise(op)


def _depthwise(op) -> bool:
    w = op.params["weight"]
    return op.params["groups"] == w.shape[0] and w.shape[1] == 1


class InputMoments:
    """Running ``E[x x^T]`` of one conv/linear op's input patches (float64)."""

    def __init__(self, op):
        self.op, self.total, self.count = op, None, 0

    def update(self, x) -> None:
        """``x``: the op's float input for a batch, torch NCHW (or (N, F))."""
        import torch
        from torch.nn import functional as F

        op, p = self.op, self.op.params
        x = x.detach().to(torch.float64)
        if op.kind == "linear":
            s, n = x.T @ x, x.shape[0]
        elif _depthwise(op):
            s, n = _depthwise_moments(x, op.params["weight"].shape[2:], p)
        elif op.params["weight"].shape[2:] == (1, 1) and p["padding"] == (0, 0):
            xs = x[:, :, ::p["stride"][0], ::p["stride"][1]]
            cols = xs.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
            s, n = cols.T @ cols, cols.shape[0]
        else:
            cols = F.unfold(x, op.params["weight"].shape[2:], dilation=p["dilation"],
                            padding=p["padding"], stride=p["stride"])  # (N, C*KH*KW, L)
            cols = cols.permute(0, 2, 1).reshape(-1, cols.shape[1])
            s, n = cols.T @ cols, cols.shape[0]
        self.total = s if self.total is None else self.total + s
        self.count += n

    @property
    def matrix(self) -> np.ndarray:
        return (self.total / self.count).numpy()


def _depthwise_moments(x, kernel, p):
    """Per channel, the (KH*KW)^2 second moments of its windows: (C, K, K), and the count."""
    import torch
    from torch.nn import functional as F

    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, p["stride"], p["padding"], p["dilation"]
    xp = F.pad(x, (pw, pw, ph, ph))
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    taps = [xp[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            for i in range(kh) for j in range(kw)]
    k = len(taps)
    s = torch.empty((x.shape[1], k, k), dtype=torch.float64)
    for a in range(k):
        for b in range(a, k):
            s[:, a, b] = s[:, b, a] = (taps[a] * taps[b]).sum(dim=(0, 2, 3))
    return s, x.shape[0] * oh * ow


def collect(ops, images, batch: int = 16) -> dict:
    """Input moments of every supported conv/linear op of a traced graph, from the float
    (BN-folded) model run on ``images`` (NCHW) ``batch`` at a time: {op name: matrix}."""

    moments = {op.name: InputMoments(op) for op in ops if supported(op)}
    for i in range(0, len(images), batch):
        vals = run_float(ops, images[i:i + batch], keep=True)
        for op in ops:
            if op.name in moments:
                moments[op.name].update(vals[op.inputs[0]])
    return {name: m.matrix for name, m in moments.items()}


def round_weights(w: np.ndarray, scale: np.ndarray, h: np.ndarray, qmin: int, qmax: int
                  ) -> np.ndarray:
    """Integer codes for ``w`` (O, ...) on the grid ``scale`` (per output channel, or one value)
    minimising ``sum_o d_o^T H d_o``; ``h`` is (K, K), or (O, K, K) for a depthwise layer."""
    o = w.shape[0]
    ws = (w.reshape(o, -1).astype(np.float64)
          / np.broadcast_to(np.asarray(scale, np.float64).reshape(-1, 1), (o, 1)))
    if h.ndim == 3 and ws.shape[1] <= 12:
        codes = _exhaustive(ws, h, qmin, qmax)
    elif h.ndim == 3:  # larger depthwise kernels: one descent per channel
        codes = np.concatenate([_coordinate_descent(ws[c:c + 1], h[c], qmin, qmax)
                                for c in range(o)])
    else:
        codes = _coordinate_descent(ws, h, qmin, qmax)
    return codes.reshape(w.shape)


def _exhaustive(ws, h, qmin, qmax):
    """Every up/down choice of each channel's K weights (K <= 12): the exact minimum."""
    o, k = ws.shape
    if k > 12:
        raise ValueError(f"exhaustive rounding tries 2**K choices; K={k} is too many")
    choices = np.array(list(itertools.product((0.0, 1.0), repeat=k)))  # (2**K, K)
    cand = np.clip(np.floor(ws)[:, None, :] + choices[None], qmin, qmax)  # (O, 2**K, K)
    d = cand - ws[:, None, :]
    cost = np.einsum("ock,okl,ocl->oc", d, h, d)
    return cand[np.arange(o), cost.argmin(axis=1)]


def _coordinate_descent(ws, h, qmin, qmax, sweeps: int = SWEEPS):
    codes = np.clip(np.rint(ws), qmin, qmax)
    d = codes - ws  # (O, K), in grid steps (the scale is a per-row factor of the loss)
    g = d @ h  # (H d) per row
    diag = np.diagonal(h)
    for _ in range(sweeps):
        changed = False
        for i in range(ws.shape[1]):
            step = np.where(d[:, i] > 0, -1.0, 1.0)  # to the other neighbour
            new = codes[:, i] + step
            gain = step * (2 * g[:, i] + step * diag[i])
            take = (gain < 0) & (new >= qmin) & (new <= qmax)
            if take.any():
                e = np.where(take, step, 0.0)
                codes[:, i] += e
                d[:, i] += e
                g += e[:, None] * h[i][None, :]
                changed = True
        if not changed:
            break
    return codes


def local_loss(w: np.ndarray, codes: np.ndarray, scale, h: np.ndarray) -> float:
    """``sum_o d_o^T H d_o`` in grid steps (what `round_weights` minimises)."""
    o = w.shape[0]
    ws = (w.reshape(o, -1).astype(np.float64)
          / np.broadcast_to(np.asarray(scale, np.float64).reshape(-1, 1), (o, 1)))
    d = codes.reshape(o, -1) - ws
    if h.ndim == 3:
        return float(np.einsum("ok,okl,ol->", d, h, d))
    return float(np.einsum("ok,kl,ol->", d, h, d))


def compare(op, h: np.ndarray, bits: int = 8) -> dict:
    """One layer, per-channel symmetric ``bits``-bit weights: the local loss of nearest and of
    adaptive rounding (relative to nearest), and the share of weights rounded the other way."""

    w = op.params["weight"]
    qp = qparams_from_tensor(w, bits=bits, signed=True, symmetric=True, narrow_range=True,
                             axis=0)
    nearest = np.clip(np.rint(w / qp.scale.reshape(-1, *[1] * (w.ndim - 1))), qp.qmin, qp.qmax)
    adaptive = round_weights(w, qp.scale, h, qp.qmin, qp.qmax)
    base = local_loss(w, nearest, qp.scale, h)
    return {"layer": op.name, "weights": int(w.size),
            "loss_nearest": 1.0, "loss_adaptive": local_loss(w, adaptive, qp.scale, h) / base,
            "changed": float((adaptive != nearest).mean())}
