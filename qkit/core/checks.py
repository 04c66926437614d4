"""Input validation shared by `qkit.reference` and `qkit.kernels`.

Every public function checks its arguments here and raises a `ValueError` or
`TypeError` that names the argument and the allowed range. Bad input never
produces a silent wrong answer.
"""

from __future__ import annotations

import functools

import numpy as np

INT32_MAX = 2**31 - 1

INTEGER_OPERANDS = (np.int8, np.uint8)


class AccumulatorOverflowError(ValueError):
    """Raised when an int32 accumulator could overflow for the given operands."""


def check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an int, got {type(bits).__name__}")
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits}")
    return int(bits)


def check_float_array(x, name: str = "x") -> np.ndarray:
    """Return `x` as float32, refusing empty arrays, NaN and Inf."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
        raise TypeError(f"{name} must be a real-valued array, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); there is nothing to quantize")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are refused below
        x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{name} contains {bad} NaN or Inf value(s) (or values beyond float32)")
    return x


def check_int_array(q, name: str, dtypes=INTEGER_OPERANDS, ndim: int | None = None) -> np.ndarray:
    q = np.asarray(q)
    if q.dtype.type not in dtypes:
        allowed = ", ".join(np.dtype(d).name for d in dtypes)
        raise TypeError(f"{name} must have dtype {allowed}; got {q.dtype}")
    if ndim is not None and q.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {q.shape}")
    if q.size == 0:
        raise ValueError(f"{name} is empty (shape {q.shape})")
    return q


def check_int4_values(q) -> np.ndarray:
    """4-bit integers to pack: int8 in [-8, 7] or uint8 in [0, 15], at least one axis."""
    q = check_int_array(q, "q", (np.int8, np.uint8))
    if q.ndim == 0:
        raise ValueError("q must have at least one axis: values are packed two per byte along "
                         "the last one")
    if q.dtype == np.int8:
        check_range(q, "q", -8, 7)
    else:
        check_range(q, "q", 0, 15)
    return q


def check_range(q: np.ndarray, name: str, qmin: int, qmax: int) -> None:
    """Values of `q` must lie in [qmin, qmax] (e.g. a declared 4-bit range in an int8 array)."""
    low, high = int(q.min()), int(q.max())
    if low < qmin or high > qmax:
        raise ValueError(f"{name} has values in [{low}, {high}], outside the declared range "
                         f"[{qmin}, {qmax}]")


def check_qrange(qmin: int, qmax: int) -> tuple[int, int]:
    qmin, qmax = int(qmin), int(qmax)
    if not -(2**15) <= qmin <= qmax <= 2**16 - 1:
        raise ValueError(f"need -32768 <= qmin <= qmax <= 65535, got qmin={qmin}, qmax={qmax}")
    return qmin, qmax


def check_accumulation(k: int, amax: int, bmax: int, what: str = "a @ w") -> None:
    """Raise if `k` products of |a| <= amax and |b| <= bmax could overflow int32.

    The bound is computed from the operands' actual largest magnitudes, so a
    long K is accepted when the values are small enough to make it exact.
    """
    worst = int(k) * int(amax) * int(bmax)
    if worst > INT32_MAX:
        k_safe = INT32_MAX // max(int(amax) * int(bmax), 1)
        raise AccumulatorOverflowError(
            f"int32 accumulation of {what} could overflow: K={k} products of |a| <= {amax} "
            f"and |w| <= {bmax} can reach {worst:,} > {INT32_MAX:,}. qkit raises rather than "
            f"widen silently: split K into chunks of at most {k_safe:,}, or use fewer bits."
        )


def max_abs(q: np.ndarray) -> int:
    return max(abs(int(q.min())), abs(int(q.max())))


def _dtype_bound(dtype, zero_point: int) -> int:
    """The largest ``|x - zero_point|`` any value of ``dtype`` can have."""
    x_min, x_max = _limits(np.dtype(dtype))
    return max(x_max - int(zero_point), int(zero_point) - x_min)


def dtype_proves_exact(dtype, zero_point: int, k: int, bmax: int) -> bool:
    """True when ``k`` products of any ``dtype`` value minus ``zero_point`` with ``|w| <= bmax``
    fit int32: the check then holds for every input of that dtype, whatever its values."""
    return int(k) * _dtype_bound(dtype, zero_point) * int(bmax) <= INT32_MAX


def centred_bound(x: np.ndarray, zero_point: int, k: int, bmax: int) -> int:
    """A bound on ``|x - zero_point|`` good enough for `check_accumulation` with ``k``, ``bmax``.

    The dtype's range when that already proves the int32 sum exact (the common 8-bit case,
    no pass over the data); otherwise the data's actual extremes, so that long K with small
    values is still accepted.
    """
    if dtype_proves_exact(x.dtype, zero_point, k, bmax):
        return _dtype_bound(x.dtype, zero_point)
    return max(abs(int(x.max()) - int(zero_point)), abs(int(x.min()) - int(zero_point)))


@functools.lru_cache(maxsize=None)
def _limits(dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


@functools.lru_cache(maxsize=256)
def storage_dtype(qmin: int, qmax: int) -> np.dtype:
    """Smallest integer dtype that holds [qmin, qmax]."""
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(dt)
    raise ValueError(f"no integer dtype holds [{qmin}, {qmax}]")


# --- operand checks shared by qkit.reference and qkit.kernels -----------------------------


def check_gemm(a, w):
    """``a`` (M,K) u8/s8 and ``w`` (N,K) s8 with an exact int32 sum over K."""
    a = check_int_array(a, "a", INTEGER_OPERANDS, ndim=2)
    w = check_int_array(w, "w", (np.int8,), ndim=2)
    if a.shape[1] != w.shape[1]:
        raise ValueError(f"a is (M,K)={a.shape} and w is (N,K)={w.shape}: K must match")
    check_accumulation(a.shape[1], max_abs(a), max_abs(w))
    return a, w


def check_int4_gemm(a, w_packed):
    """``a`` (M,K) u8/s8, ``w_packed`` (N, ceil(K/2)) uint8 of signed 4-bit pairs."""
    a = check_int_array(a, "a", INTEGER_OPERANDS, ndim=2)
    w_packed = check_int_array(w_packed, "w_packed", (np.uint8,), ndim=2)
    if w_packed.shape[1] != (a.shape[1] + 1) // 2:
        raise ValueError(f"w_packed must be (N, ceil(K/2)) = (N, {(a.shape[1] + 1) // 2}) for "
                         f"K={a.shape[1]}, got {w_packed.shape}")
    check_accumulation(a.shape[1], max_abs(a), 8)
    return a, w_packed


def check_codebook_gemm(a, idx, codebook):
    """``a`` (M,K) u8/s8, ``idx`` (N,K) uint8 codes, ``codebook`` (L,) or (N,L) int8/int16."""
    a = check_int_array(a, "a", INTEGER_OPERANDS, ndim=2)
    idx = check_int_array(idx, "idx", (np.uint8,), ndim=2)
    codebook = check_int_array(codebook, "codebook", (np.int8, np.int16))
    if a.shape[1] != idx.shape[1]:
        raise ValueError(f"a is (M,K)={a.shape} and idx is (N,K)={idx.shape}: K must match")
    if codebook.ndim == 1:
        codebook = np.broadcast_to(codebook, (idx.shape[0], codebook.shape[0]))
    if codebook.ndim != 2 or codebook.shape[0] != idx.shape[0]:
        raise ValueError(f"codebook must be (L,) or (N, L) with N={idx.shape[0]}, "
                         f"got {codebook.shape}")
    if int(idx.max()) >= codebook.shape[1]:
        raise ValueError(f"idx has code {int(idx.max())} but the codebook has only "
                         f"{codebook.shape[1]} entries")
    check_accumulation(a.shape[1], max_abs(a), max_abs(codebook))
    return a, idx, np.ascontiguousarray(codebook, dtype=np.int16)


def check_fixed_point(multiplier, shift) -> tuple[np.ndarray, np.ndarray]:
    """gemmlowp's ``(M0, shift)`` as int32 arrays: integers, M0 in [0, 2^31), shift in
    [-31, 30] (`qkit.core.fixedpoint.quantize_multiplier` gives M0 in [2^30, 2^31))."""
    out = []
    for name, value, low, high in (("multiplier", multiplier, 0, 2**31 - 1),
                                   ("shift", shift, -31, 30)):
        v = np.atleast_1d(np.asarray(value))
        if v.dtype.kind not in "iuf" or v.ndim != 1:
            raise TypeError(f"{name} must be an integer or a 1-D array of integers, got "
                            f"{type(value).__name__} {v.dtype}")
        if v.dtype.kind == "f" and not (np.isfinite(v).all() and (v == np.round(v)).all()):
            raise TypeError(f"{name} must be integers (M0 and shift from quantize_multiplier, "
                            f"not the real multiplier), got {value}")
        if v.size and (v.min() < low or v.max() > high):
            raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
        out.append(v.astype(np.int32))
    if out[0].size != out[1].size:
        raise ValueError(f"multiplier and shift must have the same number of values, got "
                         f"{out[0].size} and {out[1].size}")
    return out[0], out[1]


def check_requantize(acc, zero_point, qmin, qmax, bias, n_params, *, integer_bias=False):
    """``acc`` (M,N) int32; per-tensor (1 value) or per-channel (N values) parameters; a bias
    of N finite values (integers for the fixed-point rule, whose bias is int32)."""
    acc = check_int_array(acc, "acc", (np.int32,), ndim=2)
    qmin, qmax = check_qrange(qmin, qmax)
    if not isinstance(zero_point, int | np.integer) and not (
            isinstance(zero_point, float | np.floating) and float(zero_point).is_integer()):
        raise TypeError(f"zero_point must be an integer, got {zero_point!r}")
    if not qmin <= int(zero_point) <= qmax:
        raise ValueError(f"zero_point {zero_point} outside [qmin, qmax] = [{qmin}, {qmax}]")
    if bias is not None:
        b = np.asarray(bias)
        with np.errstate(over="ignore"):
            finite = b.dtype.kind in "iuf" and np.isfinite(b.astype(np.float32)).all()
        if not finite:
            raise ValueError(f"bias must be finite numbers (in float32), got {bias}")
        if integer_bias and not ((b == np.round(b)).all() and np.abs(b).max(initial=0) < 2**31):
            raise ValueError("bias must be int32 integers for fixed-point requantization (at "
                             f"scale s_in * s_w), got {bias}")
    n = acc.shape[1]
    for name, size in n_params.items():
        if size not in (1, n):
            raise ValueError(f"{name} must have 1 (per-tensor) or N={n} (per-channel) values, "
                             f"got {size}")
    if bias is not None and np.size(bias) != n:
        raise ValueError(f"bias must have N={n} values, got {np.size(bias)}")
    return acc, qmin, qmax


def check_qlinear(x, w_n_k, w_max_abs, x_zero_point, multiplier, out_zero_point, *, qmin,
                  qmax, bias):
    """Operands of a quantized linear layer; returns per-column float32 multiplier and bias."""
    x = check_int_array(x, "x_q", INTEGER_OPERANDS, ndim=2)
    n, k = w_n_k
    if x.shape[1] != k:
        raise ValueError(f"x_q is (M,K)={x.shape} but the weights are (N,K)=({n}, {k})")
    x_min, x_max = _limits(x.dtype)
    if int(x_zero_point) != x_zero_point or not x_min <= x_zero_point <= x_max:
        raise ValueError(f"x_zero_point must be an integer in the range of {x.dtype}, "
                         f"got {x_zero_point}")
    centred = centred_bound(x, x_zero_point, k, w_max_abs)
    check_accumulation(k, centred, w_max_abs, "(x - x_zero_point) @ w")
    qmin, qmax = check_qrange(qmin, qmax)
    if storage_dtype(qmin, qmax).itemsize != 1:
        raise ValueError(f"qlinear outputs 8-bit integers: [qmin, qmax] = [{qmin}, {qmax}] does "
                         "not fit int8 or uint8")
    if int(out_zero_point) != out_zero_point:
        raise TypeError(f"out_zero_point must be an integer, got {out_zero_point!r}")
    if not qmin <= int(out_zero_point) <= qmax:
        raise ValueError(f"out_zero_point {out_zero_point} outside [qmin, qmax] = [{qmin}, {qmax}]")
    mult = check_multiplier(multiplier)
    if mult.size not in (1, n):
        raise ValueError(f"multiplier must have 1 (per-tensor) or N={n} (per-channel) values, "
                         f"got {mult.size}")
    mult = np.broadcast_to(mult, (n,))
    if bias is None:
        bias = np.zeros(n, np.float32)
    bias = np.asarray(bias, np.float32).reshape(-1)
    if bias.size != n or not np.isfinite(bias).all():
        raise ValueError(f"bias must hold N={n} finite values")
    return x, qmin, qmax, np.ascontiguousarray(mult), bias


def int_pair(name: str, v, smallest: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``smallest`` (strides, paddings, kernels...)."""
    pair = (v, v) if np.ndim(v) == 0 else tuple(np.ravel(v))
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {len(pair)} values: {v!r}")
    if not all(isinstance(p, int | np.integer) and not isinstance(p, bool) for p in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    if min(pair) < smallest:
        raise ValueError(f"{name} must be >= {smallest}, got {v!r}")
    return int(pair[0]), int(pair[1])


def check_int_in(value, name: str, low: int, high: int, what: str) -> int:
    """An integer (an integer-valued float too) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer | float | np.floating):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not float(value).is_integer():
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be an integer in the range of {what}, [{low}, {high}], "
                         f"got {value}")
    return int(value)


def check_conv2d(x, w, stride, padding, dilation, groups, pad_value, w_max_abs=None,
                 pad_name: str = "pad_value"):
    """``x`` (N,H,W,C) u8/s8, ``w`` (O,KH,KW,C/groups) s8 (NHWC / OHWI layouts); ``w_max_abs``
    when the caller knows it already."""
    x = check_int_array(x, "x", INTEGER_OPERANDS, ndim=4)
    w = check_int_array(w, "w", (np.int8,), ndim=4)
    params = {name: int_pair(name, v, 0 if name == "padding" else 1)
              for name, v in (("stride", stride), ("padding", padding), ("dilation", dilation))}
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer):
        raise TypeError(f"groups must be a positive int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups}")
    c, o = x.shape[3], w.shape[0]
    if c % groups or o % groups:
        raise ValueError(f"groups={groups} must divide in_channels={c} and out_channels={o}")
    if w.shape[3] != c // groups:
        raise ValueError(f"w must be (O,KH,KW,C/groups) = (O,KH,KW,{c // groups}), got {w.shape}"
                         f" (x is NHWC: its last axis holds C = {c} channels; an NCHW x of "
                         f"shape {x.shape} would explain this)")
    (sh, sw), (ph, pw), (dh, dw) = params["stride"], params["padding"], params["dilation"]
    oh = (x.shape[1] + 2 * ph - dh * (w.shape[1] - 1) - 1) // sh + 1
    ow = (x.shape[2] + 2 * pw - dw * (w.shape[2] - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {w.shape[1:3]} with dilation {(dh, dw)} does not fit the "
                         f"padded input {(x.shape[1] + 2 * ph, x.shape[2] + 2 * pw)}")
    x_min, x_max = _limits(x.dtype)
    pad_value = check_int_in(pad_value, pad_name, x_min, x_max, str(x.dtype))
    k = w.shape[1] * w.shape[2] * w.shape[3]
    wmax = max_abs(w) if w_max_abs is None else int(w_max_abs)
    check_accumulation(k, max(centred_bound(x, 0, k, wmax), abs(int(pad_value))), wmax, "conv2d")
    return x, w, params["stride"], params["padding"], params["dilation"], int(groups), (oh, ow)


def check_pool(x, kernel, stride):
    """``x`` (N,H,W,C) 8-bit; ``kernel``/``stride`` ints or pairs (stride defaults to kernel)."""
    x = check_int_array(x, "x", INTEGER_OPERANDS, ndim=4)
    (kh, kw), (sh, sw) = (int_pair(name, v, 1) for name, v in (
        ("kernel", kernel), ("stride", kernel if stride is None else stride)))
    if kh > x.shape[1] or kw > x.shape[2]:
        raise ValueError(f"kernel {(kh, kw)} is larger than the input {x.shape[1:3]}")
    out = ((x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1)
    return x, (kh, kw), (sh, sw), out


def check_relu(x, zero_point):
    """``x`` 8-bit, ``zero_point`` an integer that the dtype of ``x`` holds."""
    x = check_int_array(x, "x", (np.uint8, np.int8))
    info = np.iinfo(x.dtype)
    return x, check_int_in(zero_point, "zero_point", int(info.min), int(info.max), str(x.dtype))


def check_multiplier(value, name: str = "multiplier") -> np.ndarray:
    """Real multipliers (``s_in * s_w / s_out``) as a 1-D float32 array, finite and > 0.
    Strings, None and booleans are refused by name (NumPy would convert "0.1")."""
    if isinstance(value, str | bytes | bool) or value is None:
        raise TypeError(f"{name} must be a positive real number or an array of them, got "
                        f"{value!r}")
    m = np.atleast_1d(np.asarray(value))
    if m.dtype.kind not in "iuf" or m.ndim != 1:
        raise TypeError(f"{name} must be a positive real number or a 1-D array of them, got "
                        f"{type(value).__name__} {m.dtype}")
    with np.errstate(over="ignore"):
        m = m.astype(np.float32)
    if not (np.isfinite(m).all() and (m > 0).all()):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return m


def check_qadd(a, za, ma, b, zb, mb, zero_point, *, qmin, qmax):
    a = check_int_array(a, "a", INTEGER_OPERANDS)
    b = check_int_array(b, "b", INTEGER_OPERANDS)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    qmin, qmax = check_qrange(qmin, qmax)
    dtype = storage_dtype(qmin, qmax)
    if dtype.itemsize != 1:
        raise ValueError(f"qadd outputs 8-bit integers; [{qmin}, {qmax}] does not fit")
    if not qmin <= zero_point <= qmax:
        raise ValueError(f"zero_point {zero_point} outside [{qmin}, {qmax}]")
    mults = []
    for name, m in (("a_mult", ma), ("b_mult", mb)):
        m = check_multiplier(m, name)
        if m.size != 1:
            raise ValueError(f"{name} must be one number, got {m.size}")
        mults.append(m[0])
    return a, b, mults[0], mults[1], qmin, qmax, dtype
