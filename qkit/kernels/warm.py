"""`warmup`: compile (or load from numba's on-disk cache) the signatures a notebook uses, so
the first cell a student runs does not wait for the compiler (``python -m qkit warmup``)."""

from __future__ import annotations

import numpy as np

from qkit.core.qparams import QParams
from qkit.kernels import blockdot, loops
from qkit.kernels.conv import conv2d
from qkit.kernels.elementwise import lut, qmul
from qkit.kernels.gemm import (
    gemm,
    gemm_codebook,
    gemm_int4,
    gemm_packed,
    gemm_pairs16,
    pack_weights_int4,
)
from qkit.kernels.int4 import pack_int4, unpack_int4
from qkit.kernels.linear import pack_weights, qlinear
from qkit.kernels.pooling import avgpool2d, maxpool2d, qadd
from qkit.kernels.qconv import qconv2d
from qkit.kernels.quantization import dequantize, quantize
from qkit.kernels.requantization import requantize_fixed, requantize_float
from qkit.kernels.spatial import pad2d, upsample2d

GRIDS = ((0, 255), (-128, 127))  # (qmin, qmax) of uint8 and int8 outputs


def warmup(progress: bool = False) -> None:
    """Compile (or load from the cache) the common signatures once; ``progress`` shows a bar
    naming each group of kernels (a first compile takes minutes, a cached load seconds)."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(0)
    steps = []
    for dt in (np.uint8, np.int8):
        a = rng.integers(0, 100, (3, 5)).astype(dt)
        w = rng.integers(-100, 100, (4, 5)).astype(np.int8)
        p = rng.integers(0, 100, (2, 4, 4, 3)).astype(dt)
        name = np.dtype(dt).name
        steps += [(f"GEMMs, {name} inputs", lambda a=a, w=w: _gemms(rng, a, w)),
                  (f"convolutions, {name} inputs", lambda a=a, w=w: _convs(a, w)),
                  (f"pooling, add and layer ops, {name}", lambda p=p: _pools(p))]
    steps += [("quantize and requantize", lambda: _quantization(rng)),
              ("portable loops", _loops)]
    bar = tqdm(steps, desc="compiling qkit kernels", disable=not progress)
    for what, run in bar:
        bar.set_postfix_str(what)
        run()


def _pools(p) -> None:
    maxpool2d(p, 2)
    avgpool2d(p, 2)
    qadd(p, 1, 0.5, p, 2, 0.25, 3, qmin=0, qmax=255)
    lut(p, np.arange(256).astype(p.dtype))  # the converter's layers (qkit.engine.elementwise)
    qmul(p, 1, p[:, :1, :1], 2, 0.01, 3, 0, 255)
    pad2d(p, (0, 1, 0, 1), 1)
    upsample2d(p, 2, "nearest")
    upsample2d(p, 2, "bilinear")


def _loops() -> None:
    loops.gemm_plain(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8))
    loops.int4_plain(np.zeros((2, 4), np.uint8), np.zeros((3, 2), np.uint8))


def _gemms(rng, a, w) -> None:
    gemm(a, w)
    gemm_packed(a, pack_weights(w))
    gemm_packed(a, pack_weights_int4(np.clip(w // 16, -8, 7).astype(np.int8)))
    for qmin, qmax in GRIDS:
        qlinear(a, w, 1, np.full(4, 0.01, np.float32), 3, qmin, qmax, bias=np.ones(4, np.float32))
    gemm_pairs16(a, w)
    gemm_int4(a, pack_int4(rng.integers(-8, 8, (4, 5)).astype(np.int8)))
    gemm_codebook(a, rng.integers(0, 4, (4, 5)).astype(np.uint8), np.arange(4, dtype=np.int8))
    blockdot.warm()


def _convs(a, w) -> None:
    conv2d(a.reshape(1, 3, 5, 1), w[:2, :4].reshape(2, 2, 2, 1), padding=1, pad_value=1)
    x4 = a[:, :4].reshape(1, 3, 4, 1)
    for wc in (w[:2, :4].reshape(2, 2, 2, 1), np.ones((1, 3, 3, 1), np.int8)):
        for qmin, qmax in GRIDS:
            mult = np.full(wc.shape[0], 0.01, np.float32)
            qconv2d(x4, wc, 1, mult, 3, qmin, qmax, padding=1)
    xd = np.repeat(x4, 2, axis=3)
    conv2d(xd, np.ones((2, 3, 3, 1), np.int8), padding=1, groups=2)  # depthwise
    qconv2d(xd, np.ones((2, 3, 3, 1), np.int8), 1, 0.01, 3, 0, 255, padding=1, groups=2)


def _quantization(rng) -> None:
    x = rng.normal(size=(4, 6)).astype(np.float32)
    for signed in (True, False):
        qp = QParams(np.float32(0.05), 0 if signed else 128, 8, signed)
        for rounding in ("half_even", "half_away", "floor", "stochastic"):
            q = quantize(x, qp, rounding, rng=rng)
        dequantize(q, qp)
    acc = rng.integers(-1000, 1000, (3, 4)).astype(np.int32)
    for qmin, qmax in GRIDS:
        requantize_fixed(acc, [1 << 30], [-3], 0, qmin, qmax, bias=np.zeros(4, np.int32))
        requantize_float(acc, [0.01], 0, qmin, qmax, bias=np.zeros(4, np.float32))
        requantize_fixed(acc, [1 << 30], [-3], 0, qmin, qmax)
        requantize_float(acc, [0.01], 0, qmin, qmax)
    unpack_int4(pack_int4(np.zeros((2, 3), np.uint8)), 3, signed=False)
