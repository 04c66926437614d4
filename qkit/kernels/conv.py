"""Integer 2-D convolution in numba (twin of `qkit.reference.conv2d`), int32 out.

Three paths, chosen by shape and CPU (`qkit.kernels.dispatch`):

* depthwise (groups == C == O): `qkit.kernels.depthwise`, a loop along channels;
* with VNNI: the direct convolution of `qkit.kernels.vnni.conv`, no patch matrix;
* elsewhere: `im2col` gathers each output pixel's window into a row and the AVX2 (or
  plain) GEMM multiplies; `_conv_row` is the same sum written out, for reading.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qkit.core.checks import check_conv2d
from qkit.kernels import dispatch
from qkit.kernels.depthwise import depthwise_sums
from qkit.kernels.gemm import gemm_no_vnni
from qkit.kernels.packing import PackedWeights
from qkit.kernels.vnni.conv import conv_vnni


@njit(cache=True)
def _conv_row(x, w, out, b, oy, geometry, pad_value):
    # one output row out[b, oy, :, :] the plain way; x (N,H,W,C), w (O,KH,KW,Cg), geometry
    # (groups, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)
    groups, sh, sw, ph, pw, dh, dw = geometry
    _, h, wd, _ = x.shape
    o_len, kh_len, kw_len, cg = w.shape
    og = o_len // groups
    for ox in range(out.shape[2]):
        for o in range(o_len):
            c0 = (o // og) * cg
            acc = np.int32(0)
            for i in range(kh_len):
                iy = oy * sh - ph + i * dh
                for j in range(kw_len):
                    ix = ox * sw - pw + j * dw
                    inside = 0 <= iy < h and 0 <= ix < wd
                    for c in range(cg):
                        v = np.int32(x[b, iy, ix, c0 + c]) if inside else np.int32(pad_value)
                        acc += v * np.int32(w[o, i, j, c])
            out[b, oy, ox, o] = acc


@njit(cache=True)
def conv_plain(x, w, out, geometry, pad_value):
    # every output row with `_conv_row` (serial: the reading version, and the test's twin)
    for b in range(out.shape[0]):
        for oy in range(out.shape[1]):
            _conv_row(x, w, out, b, oy, geometry, pad_value)


def conv2d(x, w, stride=1, padding=0, dilation=1, groups: int = 1, pad_value: int = 0):
    """(N,H,W,C) u8/s8 conv (O,KH,KW,C/groups) s8 -> (N,OH,OW,O) s32 (see the reference)."""
    x, w, stride, padding, dilation, groups, (oh, ow) = check_conv2d(
        x, w, stride, padding, dilation, groups, pad_value)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    geometry = (w.shape[1], w.shape[2]) + stride + padding + dilation
    if groups == x.shape[3] == w.shape[0] and groups > 1:
        return depthwise_sums(x, w, np.asarray(geometry, np.int64), int(pad_value), (oh, ow))
    nhw = (x.shape[0], oh, ow)
    if dispatch.USE_VNNI:
        return per_group(x, w, groups, lambda xg, wg: conv_vnni(
            xg, wg, (stride, padding, dilation), pad_value), nhw)
    g = np.asarray(geometry, np.int64)
    return per_group(x, w, groups, lambda xg, wg: gemm_no_vnni(
        im2col(xg, g, oh, ow, int(pad_value)),
        PackedWeights(np.ascontiguousarray(wg.reshape(wg.shape[0], -1)))), nhw)


@njit(cache=True, parallel=True)
def im2col(x, geometry, oh, ow, pad_value):
    # (N,H,W,C) -> (N*OH*OW, KH*KW*C): one row per output pixel, in the weights' (i, j, c) order
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    n_len, h, w, c_len = x.shape
    cols = np.empty((n_len * oh * ow, kh * kw * c_len), x.dtype)
    for t in prange(n_len * oh):
        b, oy = t // oh, t % oh
        for ox in range(ow):
            row = cols[t * ow + ox]
            for i in range(kh):
                iy = oy * sh - ph + i * dh
                for j in range(kw):
                    ix = ox * sw - pw + j * dw
                    base = (i * kw + j) * c_len
                    if 0 <= iy < h and 0 <= ix < w:
                        src = x[b, iy, ix]
                        for c in range(c_len):
                            row[base + c] = src[c]
                    else:
                        for c in range(c_len):
                            row[base + c] = pad_value
    return cols


def per_group(x, w, groups, run, nhw):
    """Run an ungrouped conv per group and put the output channels side by side."""
    if groups == 1:
        return run(x, w).reshape(nhw + (w.shape[0],))
    cg, og = x.shape[3] // groups, w.shape[0] // groups
    parts = [run(np.ascontiguousarray(x[..., g * cg:(g + 1) * cg]), w[g * og:(g + 1) * og])
             for g in range(groups)]
    return np.concatenate(parts, axis=1).reshape(nhw + (w.shape[0],))
