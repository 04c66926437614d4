"""Low-bit float element formats bit for bit against ml_dtypes (and torch's float8 casts):
every code point, every midpoint between neighbours, >= 10^6 random values per format and
source precision, every 16-bit float, subnormals, +-0, overflow, NaN and Inf."""

import numpy as np
import pytest

from qkit import kernels, reference
from qkit.formats import floats as F

ml_dtypes = pytest.importorskip("ml_dtypes")

NAMES = list(F.FORMATS)
RNG_N = 1_000_000


def ml_codes(x, name, ml_name=None):
    d = getattr(ml_dtypes, ml_name or F.FORMATS[name].ml_dtypes_name)
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(d).view(np.uint8)


def specials(dtype):
    f = np.finfo(dtype)
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, f.max, -f.max, f.tiny, -f.tiny,
         f.smallest_subnormal, -f.smallest_subnormal]
    return np.array(v, dtype)


def random_values(rng, dtype):
    """Values over 2^-17 .. 2^20 in magnitude: every format's subnormals, normals and
    overflow."""
    x = rng.standard_normal(RNG_N) * np.exp2(rng.uniform(-17, 20, RNG_N))
    return x.astype(dtype)


def f32(x):
    with np.errstate(over="ignore"):
        return x.astype(np.float32)


def midpoints(name):
    """Every code value, and every midpoint and near-midpoint between neighbouring values."""
    t = np.unique(F.code_table(name).astype(np.float64))
    t = t[np.isfinite(t)]
    mid = (t[1:] + t[:-1]) / 2
    near = np.concatenate([np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf)])
    top = F.FORMATS[name].max
    beyond = np.array([top * 1.03, top * 1.0625, top * 1.07, top * 1.2, top * 4, 1e300])
    return np.concatenate([t, mid, near, beyond, -beyond])


@pytest.mark.parametrize("name", NAMES)
def test_code_table_equals_ml_dtypes(name):
    f = F.FORMATS[name]
    codes = np.arange(2**f.bits, dtype=np.uint8)
    expected = codes.view(getattr(ml_dtypes, f.ml_dtypes_name)).astype(np.float32)
    np.testing.assert_array_equal(F.code_table(name), expected)  # NaN where NaN
    # decoding then encoding every non-NaN code gives the code back
    v = F.code_table(name)
    keep = ~np.isnan(v)
    assert np.array_equal(F.encode(v[keep], name), codes[keep])


@pytest.mark.parametrize("impl", ["kernel", "reference"])
@pytest.mark.parametrize("name", NAMES)
def test_every_case_equals_ml_dtypes(name, impl):
    rng = np.random.default_rng(NAMES.index(name))
    ref = impl == "reference"
    cases = {
        "midpoints float64": midpoints(name),
        "midpoints float32": f32(midpoints(name)),
        "random float32": random_values(rng, np.float32),
        "random float64": random_values(rng, np.float64),  # no double rounding via float32
        "specials float32": specials(np.float32),
        "specials float64": specials(np.float64),
        "every float16": np.arange(2**16, dtype=np.uint16).view(np.float16),
        "every bfloat16 as float32": (np.arange(2**16, dtype=np.uint32) << 16).view(np.float32),
    }
    for what, x in cases.items():
        got = F.encode(x, name, reference=ref)
        want = ml_codes(x, name)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{what}: {bad.size} mismatches, e.g. {x[bad[:3]]} -> " \
                              f"{got[bad[:3]]} vs ml_dtypes {want[bad[:3]]}"
        np.testing.assert_array_equal(F.round_to_format(x, name),
                                      want.view(getattr(ml_dtypes, F.FORMATS[name]
                                                        .ml_dtypes_name)).astype(np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_kernel_equals_reference_saturating(name):
    f = F.FORMATS[name]
    rng = np.random.default_rng(7)
    x = np.concatenate([random_values(rng, np.float64)[:200_000], midpoints(name),
                        specials(np.float64)])
    kind = F.KINDS.index(f.kind) if f.kind != "e8m0" else None
    for sat in (False, True):
        if kind is None:
            a, b = kernels.encode_e8m0(x, sat), reference.encode_e8m0(x, sat)
        else:
            a = kernels.encode_float(x, f.ebits, f.mbits, kind, sat)
            b = reference.encode_float(x, f.ebits, f.mbits, kind, sat)
        assert a.dtype == b.dtype == np.uint8 and np.array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_saturating_variant(name):
    f = F.FORMATS[name]
    big = np.array([f.max * 1.5, -f.max * 1.5, np.inf, -np.inf, 1e300])
    if f.kind == "e8m0":
        big = big[[0, 2, 4]]
    sat = F.round_to_format(big, name, saturate=True)
    assert np.array_equal(np.abs(sat), np.full(big.size, f.max, np.float32))
    assert np.isnan(F.round_to_format([np.nan], name, saturate=True)[0]) or f.kind == "finite"
    # inside the range both variants agree
    x = np.linspace(-f.max, f.max, 1001) if f.kind != "e8m0" else np.geomspace(1e-30, 1e30, 99)
    assert np.array_equal(F.encode(x, name), F.encode(x, name, saturate=True))


def test_quirks_are_the_engines_own():
    # what ml_dtypes does at the edges, written down
    assert np.isnan(F.round_to_format([465.0], "fp8_e4m3")[0])  # overflow: NaN, no Inf
    assert F.round_to_format([61440.0], "fp8_e5m2")[0] == np.inf  # the tie rounds to Inf
    assert F.round_to_format([100.0], "fp4_e2m1")[0] == 6.0  # no Inf, no NaN: saturates
    nan_codes = F.encode(np.array([np.nan, -np.nan]), "fp4_e2m1")
    assert nan_codes.tolist() == [0b1000, 0b0000]  # NaN -> zero with the sign flipped
    assert F.encode([1.5, 3.0, 6.0], "e8m0").tolist() == [128, 129, 130]  # ties go up
    assert F.encode([0.0, -1.0, np.inf], "e8m0").tolist() == [255, 255, 255]
    assert F.encode([1e-45, 2.0**-127], "e8m0").tolist() == [0, 0]


@pytest.mark.parametrize("name,dtype", [("fp8_e4m3", "float8_e4m3fn"),
                                        ("fp8_e5m2", "float8_e5m2"),
                                        ("e8m0", "float8_e8m0fnu")])
def test_torch_convention_equals_torch(name, dtype):
    torch = pytest.importorskip("torch")
    if not hasattr(torch, dtype):
        pytest.skip(f"this torch has no {dtype}")
    rng = np.random.default_rng(3)
    x = np.concatenate([(np.arange(2**16, dtype=np.uint32) << 16).view(np.float32),
                        random_values(rng, np.float32), specials(np.float32),
                        f32(midpoints(name)),
                        rng.uniform(0, 2.0**-126, 10_000).astype(np.float32)])
    want = torch.from_numpy(x).to(getattr(torch, dtype)).view(torch.uint8).numpy()
    got = F.encode(x, name, convention="torch")
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} mismatches, e.g. {x[bad[:3]]}"
    with pytest.raises(ValueError, match="no cast to fp4_e2m1"):
        F.encode(x, "fp4_e2m1", convention="torch")


def test_fields_spell_out_the_value():
    d = F.fields(0x3C, "fp8_e4m3")
    assert d["bits"] == "0.0111.100" and d["value"] == 1.5
    assert d["formula"] == "(-1)^0 * 2^(7 - 7) * 1.100b"
    assert F.fields(0x01, "fp8_e4m3")["value"] == 2.0**-9  # smallest subnormal
    assert F.fields(0x7F, "fp8_e4m3")["formula"] == "NaN"
    assert F.fields(0x7C, "fp8_e5m2")["formula"] == "+Inf"
    assert F.fields(127, "e8m0")["value"] == 1.0
    for name, f in F.FORMATS.items():
        assert F.fields(2**f.bits - 1, name)["value"] == F.code_table(name)[-1] or \
            np.isnan(F.code_table(name)[-1])


def test_format_constants():
    got = {n: (f.bits, f.max, f.emax, f.min_subnormal) for n, f in F.FORMATS.items()}
    assert got["fp8_e4m3"] == (8, 448.0, 8, 2.0**-9)
    assert got["fp8_e5m2"] == (8, 57344.0, 15, 2.0**-16)
    assert got["fp6_e2m3"] == (6, 7.5, 2, 0.125)
    assert got["fp6_e3m2"] == (6, 28.0, 4, 0.0625)
    assert got["fp4_e2m1"] == (4, 6.0, 2, 0.5)
    assert F.code_table("fp4_e2m1")[:8].tolist() == [0, 0.5, 1, 1.5, 2, 3, 4, 6]


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="fmt must be one of"):
        F.round_to_format([1.0], "fp5")
    assert F.get_format("float8_e4m3fn").name == "fp8_e4m3"  # ml_dtypes' names work
    with pytest.raises(TypeError, match="x must be a real-valued array"):
        F.encode(np.array(["a"]), "fp8_e4m3")
    with pytest.raises(TypeError, match="saturate must be True or False"):
        F.encode([1.0], "fp8_e4m3", saturate="yes")
    with pytest.raises(ValueError, match="convention must be one of"):
        F.encode([1.0], "fp8_e4m3", convention="jax")
    with pytest.raises(ValueError, match="codes of fp4_e2m1 are 0..15"):
        F.decode([16], "fp4_e2m1")
    with pytest.raises(TypeError, match="codes must be an integer array"):
        F.decode([1.5], "fp4_e2m1")
    assert F.round_to_format(np.zeros((0, 3)), "fp8_e4m3").shape == (0, 3)  # empty is fine
    assert F.round_to_format(2.0, "fp8_e4m3").shape == ()
