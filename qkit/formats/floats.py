"""Low-bit float element formats: FP8 (E4M3, E5M2), FP6 (E2M3, E3M2), FP4 (E2M1) and the
E8M0 block scale, as codes (uint8) and values, bit for bit equal to ``ml_dtypes``' casts.

``round_to_format(x, fmt)`` is the round trip (value -> nearest code -> value, float32);
``encode`` / ``decode`` go to the codes and back; ``code_table(fmt)`` lists the value of
every code. Names follow the OCP Microscaling spec v1.0 and ``ml_dtypes``:

========== ============== ====== ===== ========== ===============================
fmt        ml_dtypes      bits   bias  max        special codes
========== ============== ====== ===== ========== ===============================
fp8_e4m3   float8_e4m3fn  8      7     448        S.1111.111 NaN, no Inf
fp8_e5m2   float8_e5m2    8      15    57344      Inf and NaN as in IEEE 754
fp6_e2m3   float6_e2m3fn  6      1     7.5        none
fp6_e3m2   float6_e3m2fn  6      3     28         none
fp4_e2m1   float4_e2m1fn  4      1     6          none
e8m0       float8_e8m0fnu 8      127   2^127      0xFF NaN; no sign, no zero
========== ============== ====== ===== ========== ===============================

By default a value too large for the format becomes what ``ml_dtypes`` gives: Inf (E5M2),
NaN (E4M3, E8M0), or the largest value (FP6, FP4, which have neither). ``saturate=True`` is
the "satfinite" conversion that hardware and deployment code use: +-max instead.

>>> round_to_format([0.3, 1.0, 5.0, 1000.0], "fp4_e2m1").tolist()
[0.5, 1.0, 4.0, 6.0]
>>> round_to_format([464.0, 465.0], "fp8_e4m3").tolist()  # a tie goes to the even code 448
[448.0, nan]
>>> round_to_format([465.0], "fp8_e4m3", saturate=True).tolist()
[448.0]
>>> hex(int(encode(1.5, "fp8_e4m3")))  # 0 0111 100: 2^(7-7) * 1.100b
'0x3c'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from qkit import kernels
from qkit import reference as _reference
from qkit.reference.floats import KINDS, float_format_limits


@dataclass(frozen=True)
class FloatFormat:
    """One element format: field widths, what the top codes mean, and the name in ml_dtypes."""

    name: str
    ebits: int
    mbits: int
    kind: str  # "ieee", "fn", "finite" (see qkit.reference.floats) or "e8m0"
    ml_dtypes_name: str

    @property
    def bits(self) -> int:
        return self.ebits + self.mbits + (0 if self.kind == "e8m0" else 1)

    @property
    def bias(self) -> int:
        return 2 ** (self.ebits - 1) - 1

    @property
    def max(self) -> float:
        if self.kind == "e8m0":
            return 2.0 ** 127
        return float_format_limits(self.ebits, self.mbits, KINDS.index(self.kind))[3]

    @property
    def emax(self) -> int:
        """Exponent of the largest binade (the OCP spec's emax_elem): max = 2^emax * 1.m."""
        return int(np.floor(np.log2(self.max)))

    @property
    def min_normal(self) -> float:
        return 2.0 ** (1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (1 - self.bias - self.mbits)


FORMATS = {f.name: f for f in (
    FloatFormat("fp8_e4m3", 4, 3, "fn", "float8_e4m3fn"),
    FloatFormat("fp8_e5m2", 5, 2, "ieee", "float8_e5m2"),
    FloatFormat("fp6_e2m3", 2, 3, "finite", "float6_e2m3fn"),
    FloatFormat("fp6_e3m2", 3, 2, "finite", "float6_e3m2fn"),
    FloatFormat("fp4_e2m1", 2, 1, "finite", "float4_e2m1fn"),
    FloatFormat("e8m0", 8, 0, "e8m0", "float8_e8m0fnu"),
)}
_ALIASES = {f.ml_dtypes_name: f.name for f in FORMATS.values()}


def get_format(fmt) -> FloatFormat:
    """A `FloatFormat` from its name (qkit's or ml_dtypes'), or the format itself."""
    if isinstance(fmt, FloatFormat):
        return fmt
    if isinstance(fmt, str):
        name = _ALIASES.get(fmt, fmt)
        if name in FORMATS:
            return FORMATS[name]
    raise ValueError(f"fmt must be one of {', '.join(FORMATS)} (or ml_dtypes' names "
                     f"{', '.join(_ALIASES)}); got {fmt!r}")


def _values(x, name: str = "x") -> np.ndarray:
    """Any real array as float64 (exact for float16/32/64); NaN and Inf are valid inputs."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
        raise TypeError(f"{name} must be a real-valued array, got dtype {x.dtype}")
    with np.errstate(invalid="ignore"):  # signalling NaNs are quieted, their sign kept
        return x.astype(np.float64)


def _check_saturate(saturate) -> bool:
    if not isinstance(saturate, (bool, np.bool_)):
        raise TypeError(f"saturate must be True or False, got {saturate!r}")
    return bool(saturate)


CONVENTIONS = ("ml_dtypes", "torch")


def encode(x, fmt, *, saturate: bool = False, convention: str = "ml_dtypes",
           reference: bool = False) -> np.ndarray:
    """The code (uint8, shape of ``x``) of the value of ``fmt`` nearest to each ``x``:
    round to nearest, ties to even (E8M0: ties up, as ``ml_dtypes``).

    ``convention="torch"`` gives the codes of PyTorch's casts to ``torch.float8_e4m3fn``,
    ``float8_e5m2`` and ``float8_e8m0fnu`` from float32, which differ from ``ml_dtypes`` in
    their special cases: E4M3 saturates (Inf and overflow become +-448), E5M2 writes NaN as
    ``S.11111.11``, and E8M0 ignores the sign, sends 0 to code 0 and rounds the float32
    subnormals above 2^-127 up to 2^-126. ``reference=True`` runs the readable NumPy version
    instead of the numba kernel (both give the same codes)."""
    f = get_format(fmt)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if convention == "torch":
        return _torch_codes(x, f, reference)
    x = _values(x)
    saturate = _check_saturate(saturate)
    impl = _reference if reference else kernels
    if f.kind == "e8m0":
        return impl.encode_e8m0(x, saturate)
    return impl.encode_float(x, f.ebits, f.mbits, KINDS.index(f.kind), saturate)


def _torch_codes(x, f: FloatFormat, reference: bool) -> np.ndarray:
    if f.name not in ("fp8_e4m3", "fp8_e5m2", "e8m0"):
        raise ValueError(f"convention='torch': PyTorch has no cast to {f.name}; it has "
                         "fp8_e4m3, fp8_e5m2 and e8m0")
    x = _values(x).astype(np.float32)  # torch casts from float32
    if f.name == "fp8_e4m3":
        return encode(x, f, saturate=True, reference=reference)
    if f.name == "fp8_e5m2":
        codes = encode(x, f, reference=reference)
        return np.where(np.isnan(x), codes | 0x7F, codes).astype(np.uint8)
    a = np.abs(x)
    codes = encode(a, f, reference=reference)
    codes[a == 0] = 0
    codes[(a > 2.0 ** -127) & (a < 2.0 ** -126)] = 1
    return codes


@lru_cache(maxsize=None)
def _table(name: str) -> np.ndarray:
    f = FORMATS[name]
    codes = np.arange(2 ** f.bits, dtype=np.int64)
    if f.kind == "e8m0":
        v = np.ldexp(1.0, codes - 127)
        v[255] = np.nan
    else:
        v = _element_values(f, codes)
    v = v.astype(np.float32)
    v.setflags(write=False)
    return v


def _element_values(f: FloatFormat, codes: np.ndarray) -> np.ndarray:
    sign = np.where(codes >> (f.ebits + f.mbits), -1.0, 1.0)
    field = (codes >> f.mbits) & (2 ** f.ebits - 1)
    mant = codes & (2 ** f.mbits - 1)
    normal = np.ldexp(1.0 + mant / 2 ** f.mbits, field - f.bias)
    sub = np.ldexp(mant / 2 ** f.mbits, 1 - f.bias)
    v = sign * np.where(field > 0, normal, sub)
    top = field == 2 ** f.ebits - 1
    if f.kind == "ieee":
        v = np.where(top, np.where(mant == 0, sign * np.inf, np.nan), v)
    elif f.kind == "fn":
        v = np.where(top & (mant == 2 ** f.mbits - 1), np.nan, v)
    return v


def code_table(fmt) -> np.ndarray:
    """The value (float32) of every code 0 .. 2^bits - 1 of ``fmt``; NaN where the code is NaN."""
    return _table(get_format(fmt).name).copy()


def decode(codes, fmt) -> np.ndarray:
    """Values (float32) of the codes of ``fmt`` (integers in 0 .. 2^bits - 1)."""
    f = get_format(fmt)
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu" or codes.dtype == np.bool_:
        raise TypeError(f"codes must be an integer array, got dtype {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= 2 ** f.bits):
        raise ValueError(f"codes of {f.name} are 0..{2 ** f.bits - 1}; got values in "
                         f"{codes.min()}..{codes.max()}")
    return _table(f.name)[codes.astype(np.intp)]


def round_to_format(x, fmt, *, saturate: bool = False, convention: str = "ml_dtypes"
                    ) -> np.ndarray:
    """``x`` rounded to the nearest value of ``fmt``, as float32: the round trip of
    ``ml_dtypes``' cast, ``x.astype(ml_dtypes.<fmt>).astype(np.float32)`` (see `encode` for
    ``saturate`` and ``convention``)."""
    return decode(encode(x, fmt, saturate=saturate, convention=convention), fmt)


def fields(code: int, fmt) -> dict:
    """The bit fields of one code and how they make its value (for the bit editor)."""
    f = get_format(fmt)
    code = int(code)
    if not 0 <= code < 2 ** f.bits:
        raise ValueError(f"code of {f.name} must be in 0..{2 ** f.bits - 1}, got {code}")
    value = float(_table(f.name)[code])
    if f.kind == "e8m0":
        return {"sign": None, "exponent": code, "mantissa": None, "value": value,
                "bits": format(code, "08b"),
                "formula": "NaN" if code == 255 else f"2^({code} - 127)"}
    s = code >> (f.ebits + f.mbits)
    e = (code >> f.mbits) & (2 ** f.ebits - 1)
    m = code & (2 ** f.mbits - 1)
    mb = format(m, f"0{f.mbits}b")
    if not np.isfinite(value):
        formula = "NaN" if np.isnan(value) else ("-" if s else "+") + "Inf"
    elif e == 0:
        formula = f"(-1)^{s} * 2^(1 - {f.bias}) * 0.{mb}b"
    else:
        formula = f"(-1)^{s} * 2^({e} - {f.bias}) * 1.{mb}b"
    return {"sign": s, "exponent": e, "mantissa": m, "value": value,
            "bits": f"{s}.{format(e, f'0{f.ebits}b')}.{mb}", "formula": formula}
