"""Integer 2-D convolution in numba with implicit im2col (twin of `qkit.reference.convolution`).

No patch matrix is built: each output reads its receptive field straight from
the input, substituting ``pad_value`` outside it, in the (kh, kw, c) order
of the reference's im2col.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qkit._checks import check_conv2d


@njit(cache=True)
def _conv_row(x, w, out, b, oy, stride, padding, dilation, groups, pad_value):
    # one output row out[b, oy, :, :]; x (N,H,W,C), w (O,KH,KW,Cg)
    _, h, wd, _ = x.shape
    o_len, kh_len, kw_len, cg = w.shape
    og = o_len // groups
    for ox in range(out.shape[2]):
        for o in range(o_len):
            c0 = (o // og) * cg
            acc = np.int32(0)
            for i in range(kh_len):
                iy = oy * stride[0] - padding[0] + i * dilation[0]
                for j in range(kw_len):
                    ix = ox * stride[1] - padding[1] + j * dilation[1]
                    inside = 0 <= iy < h and 0 <= ix < wd
                    for c in range(cg):
                        v = np.int32(x[b, iy, ix, c0 + c]) if inside else np.int32(pad_value)
                        acc += v * np.int32(w[o, i, j, c])
            out[b, oy, ox, o] = acc


@njit(cache=True, parallel=True)
def _conv_parallel(x, w, out, stride, padding, dilation, groups, pad_value):
    n_len, oh = out.shape[0], out.shape[1]
    for t in prange(n_len * oh):
        _conv_row(x, w, out, t // oh, t % oh, stride, padding, dilation, groups, pad_value)


@njit(cache=True)
def _conv_serial(x, w, out, stride, padding, dilation, groups, pad_value):
    for b in range(out.shape[0]):
        for oy in range(out.shape[1]):
            _conv_row(x, w, out, b, oy, stride, padding, dilation, groups, pad_value)


def conv2d(x, w, stride=1, padding=0, dilation=1, groups: int = 1, pad_value: int = 0):
    """(N,H,W,C) u8/s8 conv (O,KH,KW,C/groups) s8 -> (N,OH,OW,O) s32 (see the reference)."""
    x, w, stride, padding, dilation, groups, (oh, ow) = check_conv2d(
        x, w, stride, padding, dilation, groups, pad_value)
    out = np.empty((x.shape[0], oh, ow, w.shape[0]), np.int32)
    _conv_parallel(np.ascontiguousarray(x), np.ascontiguousarray(w), out, stride, padding,
                   dilation, groups, int(pad_value))
    return out
