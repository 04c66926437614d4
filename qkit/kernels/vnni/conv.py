"""Direct convolution on the VNNI micro-kernel: no im2col matrix.

A tile of 8 output pixels reads its windows straight from the (padded, unsigned) NHWC input:
pixel ``row0 + r`` of the tile reads ``x[offs[row0 + r] + taps[t] + 4c]`` for tap ``t`` and
channel quad ``c``, against the same weight panels as the GEMM (K ordered (kh, kw, c)). In
Python, for one tile::

    for t in range(len(taps)):                     # kernel rows (or single taps)
        for c in range(quads_per_tap):             # 4 bytes of K per step
            k = t * quads_per_tap + c
            for r in range(rows):
                quad = x[offs[row0 + r] + taps[t] + 4 * c:][:4]
                acc[r] = vpdpbusd(acc[r], quad, panels[panel, k])

Without dilation a kernel row's ``kw * C`` bytes are contiguous, so one tap is a whole row
and K runs in long stretches. A tile may span output rows (and images), so every tile but
the last has all 8 rows. For a large batch each thread pads a few images at a time into a
buffer of its own (`_qconv_chunks`), which stays in L1/L2 while the tiles read it.

`ConvPlan` prepares all of that once per input shape; ``geometry`` is
``(stride, padding, dilation)``, each a pair, and ``grid`` is
``(x_zero_point, mult, bias, out_zero_point, qmin, qmax)``, the requantization of
`qkit.reference.qconv2d`.
"""

from __future__ import annotations

import functools
import threading

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.kernels.packing import (
    PackedWeights,
    conv_panels,
    epilogue_vectors,
    output_rows,
    valid_columns,
)
from qkit.kernels.simd import ir as sx
from qkit.kernels.vnni.gemm import ROWS, store_tile, tail_rows


def window_tile(builder, x_data, window, row0, panels_data, panel, rows: int) -> list:
    """Emit the tap and channel-quad loops for ``rows`` output pixels; returns the sums.

    ``window`` is the kernel's window argument unpacked: ``[offs, taps, quads_per_tap]``.
    """
    offs, taps, quads_per_tap = window
    i64 = row0.type
    dot = sx.vpdpbusd(builder)
    x8 = sx.data_pointer(builder, x_data)
    offs_p = builder.bitcast(offs.data, i64.as_pointer())
    row_ptrs = [builder.gep(x8, [builder.load(builder.gep(offs_p, [builder.add(row0, i64(r))]))])
                for r in range(rows)]
    taps_p = builder.bitcast(taps.data, i64.as_pointer())
    n_taps = builder.extract_value(taps.shape, 0)
    k_quads = builder.mul(n_taps, quads_per_tap)
    b_base = builder.gep(builder.bitcast(panels_data, sx.V16I32.as_pointer()),
                         [builder.mul(builder.mul(panel, k_quads), i64(2))])

    def tap(t, acc):
        t_off = builder.load(builder.gep(taps_p, [t]))

        def quad_step(c, acc):
            k2 = builder.mul(builder.add(builder.mul(t, quads_per_tap), c), i64(2))
            b0 = builder.load(builder.gep(b_base, [k2]), align=1)
            b1 = builder.load(builder.gep(b_base, [builder.add(k2, i64(1))]), align=1)
            offset = builder.add(t_off, builder.mul(c, i64(4)))
            new = []
            for r in range(rows):
                ptr = builder.bitcast(builder.gep(row_ptrs[r], [offset]), sx.I32.as_pointer())
                quad = sx.splat(builder, builder.load(ptr, align=1), sx.V16I32)
                new += [builder.call(dot, [acc[2 * r], quad, b0]),
                        builder.call(dot, [acc[2 * r + 1], quad, b1])]
            return new

        return sx.loop(builder, quads_per_tap, acc, quad_step, "quads", rolled=True)

    return sx.loop(builder, n_taps, [sx.zeros(sx.V16I32)] * (2 * rows), tap, "taps")


def _conv_tile(rows: int):
    @intrinsic
    def tile(typingctx, x, window, row0, panels, panel, out, out_row):
        """int32 sums of ``rows`` output pixels x 32 output channels."""

        def codegen(context, builder, signature, args):
            x_, window_, row0_, panels_, panel_, out_, out_row_ = sx.arguments(
                context, builder, signature, args)
            sums = window_tile(builder, x_.data, window_, row0_, panels_.data, panel_, rows)
            store_tile(builder, sums, out_, out_row_, panel_, rows)
            return context.get_dummy_value()

        return types.void(x, window, row0, panels, panel, out, out_row), codegen

    return tile


def _requant_conv_tile(rows: int):
    @intrinsic
    def tile(typingctx, x, window, row0, panels, panel, out, out_row, epilogue):
        """The same tile requantized to 8 bits in registers."""

        def codegen(context, builder, signature, args):
            x_, window_, row0_, panels_, panel_, out_, out_row_, epi = sx.arguments(
                context, builder, signature, args)
            sums = window_tile(builder, x_.data, window_, row0_, panels_.data, panel_, rows)
            store_tile(builder, sums, out_, out_row_, panel_, rows, epi)
            return context.get_dummy_value()

        return types.void(x, window, row0, panels, panel, out, out_row, epilogue), codegen

    return tile


_sums_8px, _sums_4px, _sums_1px = (_conv_tile(r) for r in (ROWS, 4, 1))
_requant_8px, _requant_4px, _requant_1px = (_requant_conv_tile(r) for r in (ROWS, 4, 1))


@njit(cache=True, parallel=True)
def _conv_direct(xp, window, panels, out):
    # xp padded u8, window = (offs, taps, quads_per_tap) -> out (pixels, O) s32
    total, n_panels = window[0].shape[0], panels.shape[0]
    four, ones = tail_rows(total)
    for i in prange(total // ROWS):
        for p in range(n_panels):  # the tile's input rows stay in L1 across the panels
            _sums_8px(xp, window, i * ROWS, panels, p, out, i * ROWS)
    for p in range(n_panels):
        if four < total:
            _sums_4px(xp, window, four, panels, p, out, four)
        for row in range(ones, total):
            _sums_1px(xp, window, row, panels, p, out, row)


@njit(cache=True, parallel=True)
def _qconv_direct(xp, window, panels, out, epilogue):
    # _conv_direct with requantization to 8 bits in registers
    total, n_panels = window[0].shape[0], panels.shape[0]
    four, ones = tail_rows(total)
    for i in prange(total // ROWS):
        for p in range(n_panels):
            _requant_8px(xp, window, i * ROWS, panels, p, out, i * ROWS, epilogue)
    for p in range(n_panels):
        if four < total:
            _requant_4px(xp, window, four, panels, p, out, four, epilogue)
        for row in range(ones, total):
            _requant_1px(xp, window, row, panels, p, out, row, epilogue)


@njit(cache=True, parallel=True)
def _qconv_chunks(x, chunking, window, panels, out, epilogue):
    # _qconv_direct where each thread pads `chunk` images at a time into a small buffer of its
    # own (it stays in L1/L2 while the tiles read it) instead of a copy of the whole input;
    # channels are already whole quads (C % 4 == 0), so a padded row is one run of bytes
    chunk, pad, flip, ph, pw = chunking
    n, h, wd, c = x.shape
    hp, wp = h + 2 * ph, wd + 2 * pw
    pixels = window[0].shape[0] // chunk  # output pixels of one image
    xf = x.reshape(-1)
    for t in prange(-(-n // chunk)):
        first = t * chunk
        images = min(chunk, n - first)
        buf = np.empty(chunk * hp * wp * c, np.uint8)
        buf[:] = pad
        for j in range(images):
            for y in range(h):
                o = ((j * hp + y + ph) * wp + pw) * c
                src = ((first + j) * h + y) * wd * c
                # a ufunc on slices: an indexed byte loop here compiles ~40x slower
                np.bitwise_xor(xf[src:src + wd * c], flip, buf[o:o + wd * c])
        total, base = images * pixels, first * pixels
        four, ones = tail_rows(total)
        for p in range(panels.shape[0]):  # one panel's weights and the chunk stay in L1
            for i in range(total // ROWS):
                _requant_8px(buf, window, i * ROWS, panels, p, out, base + i * ROWS, epilogue)
            if four < total:
                _requant_4px(buf, window, four, panels, p, out, base + four, epilogue)
            for row in range(ones, total):
                _requant_1px(buf, window, row, panels, p, out, base + row, epilogue)


@njit(cache=True, parallel=True)
def _window_offsets(n_len, oh, ow, hp, wp, sh, sw, cp):
    # where each output pixel's window starts in the padded input, pixels in (n, oy, ox) order
    offs = np.empty(n_len * oh * ow, np.int64)
    for t in prange(n_len * oh):
        b, oy = t // oh, t % oh
        base = (b * hp + oy * sh) * wp * cp
        for ox in range(ow):
            offs[t * ow + ox] = base + ox * sw * cp
    return offs


_WORKSPACES = threading.local()


def _workspace(shape) -> np.ndarray:
    """A scratch uint8 buffer for the padded input, reused per shape and thread.

    A fresh multi-megabyte array costs a page fault per 4 KiB on first touch (about 0.5 ms
    for the MNIST CNN's conv2 at batch 256, a tenth of the layer); the buffer never leaves
    one convolution call, so reusing it is safe. The 4 most recent shapes are kept.
    """
    cache = getattr(_WORKSPACES, "buffers", None)
    if cache is None:
        cache = _WORKSPACES.buffers = {}
    buf = cache.pop(shape, None)
    if buf is None:
        buf = np.empty(shape, np.uint8)
        while len(cache) >= 4:
            cache.pop(next(iter(cache)))
    cache[shape] = buf  # most recent last
    return buf


def _cached_offsets(*geometry) -> np.ndarray:
    """`_window_offsets`, kept per geometry (a model calls each layer with the same shapes)
    when the array is at most 4 MiB; larger ones are cheap next to their convolution."""
    n_len, oh, ow = geometry[:3]
    if n_len * oh * ow > 1 << 19:
        offs = _window_offsets(*geometry)
        offs.flags.writeable = False  # the same numba type as the cached ones: no second compile
        return offs
    return _small_offsets(*geometry)


@functools.lru_cache(maxsize=16)
def _small_offsets(*geometry) -> np.ndarray:
    offs = _window_offsets(*geometry)
    offs.flags.writeable = False
    return offs


MIN_CHUNKS = 4 * numba.config.NUMBA_NUM_THREADS  # fewer images: pad the whole input once


def chunk_images(pixels: int) -> int:
    """Images padded together by `_qconv_chunks`: the fewest whose output pixels fill whole
    8-row tiles (a 14x14 map: 2 images, 392 pixels, 49 tiles)."""
    return ROWS // np.gcd(pixels, ROWS)


class ConvPlan:
    """A padded, unsigned copy of the input (or, with ``chunks``, the input itself for
    `_qconv_chunks` to pad a few images at a time), window offsets and tap offsets.

    Channels are padded to a multiple of 4 (one ``vpdpbusd`` quad); the weights get
    matching zero channels, so K is ordered (kh, kw, c) as in the reference's im2col.
    """

    def __init__(self, x, w, geometry, pad_value, *, chunks: bool = False, weights=None):
        n, h, wd, c = x.shape
        (sh, sw), (ph, pw), (dh, dw) = geometry
        o, kh, kw, _ = w.shape
        cp = -(-c // 4) * 4
        self.flip = 128 if x.dtype == np.int8 else 0
        self.pad = (int(pad_value) + self.flip) & 0xFF  # the padding value, unsigned
        hp, wp = h + 2 * ph, wd + 2 * pw
        self.oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        self.ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        self.padding, self.chunk, self.padded = (ph, pw), 0, None
        if not (ph or pw or self.flip) and cp == c:  # nothing to pad or shift: read x itself
            pass
        elif chunks and cp == c and n >= MIN_CHUNKS * chunk_images(self.oh * self.ow):
            self.chunk = chunk_images(self.oh * self.ow)
        else:
            self.padded = (n, hp, wp, cp)
        self.xp = self.input(x)
        self.weights: PackedWeights = conv_panels(w, cp) if weights is None else weights
        if dw == 1:  # a kernel row's kw pixels are contiguous: one long tap per row
            taps = np.array([i * dh * wp * cp for i in range(kh)], np.int64)
            quads_per_tap = kw * cp // 4
        else:
            taps = np.array([(i * dh * wp + j * dw) * cp
                             for i in range(kh) for j in range(kw)], np.int64)
            quads_per_tap = cp // 4
        offs = _cached_offsets(self.chunk or n, self.oh, self.ow, hp, wp, sh, sw, cp)
        self.window = (offs, taps, quads_per_tap)
        self.rows = n * self.oh * self.ow

    def input(self, x) -> np.ndarray:
        """What the kernel reads for input ``x`` (of the planned shape and dtype): ``x``
        itself, or its padded copy."""
        if self.padded is None:
            return np.ascontiguousarray(x)
        return self._padded(x)

    def _padded(self, x):
        """x copied into a reused buffer, unsigned, with a border of the padding value (and
        zero-weight padding channels)."""
        n, h, wd, c = x.shape
        (ph, pw), shape = self.padding, self.padded
        xp = _workspace(shape)
        if shape[3] != c:
            xp.fill(self.pad)
        else:  # only the border: the rest is copied over
            for border in (np.s_[:, :ph], np.s_[:, ph + h:], np.s_[:, :, :pw],
                           np.s_[:, :, pw + wd:]):
                xp[border] = self.pad
        inside = xp[:, ph:ph + h, pw:pw + wd, :c]
        np.bitwise_xor(x.view(np.uint8), np.uint8(self.flip), out=inside)
        return xp

    def out(self, dtype) -> np.ndarray:
        return output_rows(self.rows, self.weights, dtype)


def conv_vnni(x, w, geometry, pad_value) -> np.ndarray:
    """Ungrouped conv2d of checked operands -> (N*OH*OW, O) int32."""
    plan = ConvPlan(x, w, geometry, pad_value)
    out = plan.out(np.int32)
    _conv_direct(plan.xp, plan.window, plan.weights.panels, out)
    out = valid_columns(out, w.shape[0])
    if plan.flip:
        out -= np.int32(128) * plan.weights.col_sums  # exact mod 2**32; the true sum fits
    return out


class QConvVnni:
    """Ungrouped conv2d fused with requantization, everything but the input prepared: the
    plan (window and tap offsets, packed weights) and the per-column vectors of the epilogue.
    ``run(x)`` -> (N*OH*OW, O) 8-bit for an input of the planned shape and dtype."""

    def __init__(self, x, w, geometry, grid, out_dtype, weights=None):
        x_zero_point, mult, bias, zp, qmin, qmax = grid
        self.plan = plan = ConvPlan(x, w, geometry, x_zero_point, chunks=True, weights=weights)
        vectors = epilogue_vectors(plan.weights, int(x_zero_point) + plan.flip, mult, bias)
        self.epilogue = (*vectors, int(zp), int(qmin), int(qmax))
        self.out_dtype = out_dtype

    def run(self, x) -> np.ndarray:
        plan, panels = self.plan, self.plan.weights.panels
        xp = plan.xp if x is None else plan.input(x)
        out = plan.out(self.out_dtype)
        if plan.chunk:
            chunking = (plan.chunk, np.uint8(plan.pad), np.uint8(plan.flip), *plan.padding)
            _qconv_chunks(xp.view(np.uint8), chunking, plan.window, panels, out, self.epilogue)
        else:
            _qconv_direct(xp, plan.window, panels, out, self.epilogue)
        return valid_columns(out, plan.weights.n)
