"""GGUF block formats against the ``gguf`` package (llama.cpp's own Python reference): the
legacy formats byte for byte, the K-quants read back equal, on random, tied, tiny, huge,
all-zero and constant blocks and on the real weights of the shipped SmolLM2 file."""

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qkit.formats import ggml, kquants

LEGACY = list(ggml.FORMATS)
KQUANTS = list(kquants.FORMATS)


def qtype(fmt):
    return getattr(gguf.GGMLQuantizationType, fmt.upper())


def cases(n, seed=0):
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal((8, n)).astype(np.float32)
    return {
        "normal": normal,
        "heavy tails": rng.standard_t(2, (8, n)).astype(np.float32),
        "scaled rows": normal * np.exp(3 * rng.standard_normal((8, 1))).astype(np.float32),
        "zeros": np.zeros((2, n), np.float32),
        "constant +": np.full((2, n), 0.7, np.float32),
        "constant -": np.full((2, n), -0.7, np.float32),
        "tiny (float16 scale underflows)": normal * np.float32(1e-7),
        "large": normal * np.float32(3000),
        "one spike": np.where(np.arange(n) % 32 == 5, np.float32(9), normal / 100),
        "ties": (rng.integers(-16, 16, (8, n)) / 2).astype(np.float32),
    }


def test_hand_checked_q8_0_and_q4_0_blocks():
    x = np.arange(32, dtype=np.float32) - 16  # -16 .. 15: amax 16
    f = ggml.decode(ggml.quantize(x, "q8_0"), "q8_0")
    assert float(f["d"][0]) == np.float32(np.float16(16 / 127))
    assert f["q"][0, :3].tolist() == [-127, -119, -111]  # roundf(-15 * 127/16 = -119.06)
    # q4_0: the largest magnitude is -16, so d = -16 / -8 = +2 and -16 gets code 0
    f = ggml.decode(ggml.quantize(x, "q4_0"), "q4_0")
    assert float(f["d"][0]) == 2.0
    assert f["q"][0, [0, 1, 2, 31]].tolist() == [0, 1, 1, 15]  # trunc(-7.5+8.5) = 1; 15/2+8.5 -> 15
    raw = ggml.quantize(x, "q4_0")
    assert raw[2] == (0 | (8 << 4))  # byte 0 of the codes: code 0 low, code 16 (x = 0) high


def test_q5_high_bits_layout():
    x = np.arange(32, dtype=np.float32)  # q5_1: d = 1, m = 0, code j = j
    raw = ggml.quantize(x, "q5_1")
    assert int.from_bytes(raw[4:8].tobytes(), "little") == 0xFFFF0000  # bit 4 set for j >= 16
    assert raw[8:24].tolist() == [(j & 15) | ((j & 15) << 4) for j in range(16)]
    np.testing.assert_array_equal(ggml.dequantize(raw, "q5_1"), x)


@pytest.mark.parametrize("fmt", LEGACY)
def test_legacy_bytes_equal_gguf(fmt):
    mismatched = 0
    for name, x in cases(256).items():
        ours, theirs = ggml.quantize(x, fmt), gguf_quantize(x, qtype(fmt))
        assert ours.shape == theirs.shape, name
        mismatched += int((ours != theirs).sum())
        np.testing.assert_array_equal(ggml.dequantize(theirs, fmt),
                                      gguf_dequantize(theirs, qtype(fmt)), err_msg=name)
    assert mismatched == 0


@settings(deadline=None, max_examples=60)
@given(x=arrays(np.float32, (3, 64), elements=st.floats(-1e4, 1e4, width=32)),
       fmt=st.sampled_from(LEGACY))
def test_legacy_bytes_equal_gguf_property(x, fmt):
    np.testing.assert_array_equal(ggml.quantize(x, fmt), gguf_quantize(x, qtype(fmt)))


@pytest.mark.parametrize("fmt", LEGACY)
def test_legacy_round_trip_error_is_half_a_step(fmt):
    x = cases(256)["normal"]
    raw = ggml.quantize(x, fmt)
    f = ggml.decode(raw, fmt)
    err = np.abs(ggml.dequantize(raw, fmt) - x).reshape(-1, 32).max(axis=1)
    step = np.abs(f["d"].astype(np.float32))
    # half a step, plus what rounding d (and m) to float16 moves the top code: 2^-11 relative.
    # The signed _0 formats put the largest magnitude on code 0 (-8d or -16d): a weight near
    # the opposite extreme is clipped to the top code, at most one step away.
    half = 1.0 if fmt.endswith("_0") and fmt != "q8_0" else 0.5
    assert (err <= step * (half + 2.0**-10 * 32) + 1e-6).all()
    assert len(np.unique(f["q"])) > 4  # the codes are not constant


@pytest.mark.parametrize("fmt", KQUANTS)
def test_kquant_bytes_read_by_gguf_as_by_qkit(fmt):
    for name, x in cases(512).items():
        raw = kquants.quantize(x, fmt)
        assert raw.shape == (x.shape[0], 2 * kquants.FORMATS[fmt]), name
        ours = kquants.dequantize(raw, fmt)
        np.testing.assert_array_equal(ours, gguf_dequantize(raw, qtype(fmt)), err_msg=name)
        if name == "normal":
            rel = np.abs(ours - x).max() / np.abs(x).max()
            assert rel < {"q4_k": 0.07, "q5_k": 0.04, "q6_k": 0.025}[fmt]


@pytest.mark.parametrize("fmt", KQUANTS)
def test_kquant_random_bytes_decode_like_gguf(fmt):
    # any bytes with finite scales: qkit's reader is the same function as gguf's
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, (64, kquants.FORMATS[fmt]), dtype=np.uint8)
    d = rng.standard_normal((64, 2)).astype(np.float16).view(np.uint8)
    if fmt == "q6_k":
        raw[:, 208:210] = d[:, :2]
    else:
        raw[:, 0:4] = d
    np.testing.assert_array_equal(kquants.dequantize(raw, fmt), gguf_dequantize(raw, qtype(fmt)))


@pytest.mark.parametrize("fmt", LEGACY)
def test_legacy_random_bytes_decode_like_gguf(fmt):
    rng = np.random.default_rng(2)
    size = ggml.FORMATS[fmt][2]
    raw = rng.integers(0, 256, (64, size), dtype=np.uint8)
    raw[:, 0:4] = rng.standard_normal((64, 2)).astype(np.float16).view(np.uint8)
    np.testing.assert_array_equal(ggml.dequantize(raw, fmt), gguf_dequantize(raw, qtype(fmt)))


@pytest.mark.parametrize("module,fmt", [(ggml, "q4_0"), (kquants, "q4_k")])
def test_bad_inputs_are_named(module, fmt):
    n = 32 if module is ggml else 256
    with pytest.raises(ValueError, match="fmt must be one of"):
        module.quantize(np.zeros(n), "q3_x")
    with pytest.raises(ValueError, match="multiple of"):
        module.quantize(np.zeros(n + 1), fmt)
    with pytest.raises(ValueError, match="NaN or Inf"):
        module.quantize(np.full(n, np.nan), fmt)
    with pytest.raises(ValueError, match="empty"):
        module.quantize(np.zeros((0, n)), fmt)
    with pytest.raises(ValueError, match="overflow"):
        module.quantize(np.full(n, 1e9, np.float32) * (np.arange(n) % 2), fmt)
    with pytest.raises(TypeError, match="uint8"):
        module.dequantize(np.zeros(144, np.int8), fmt)
    with pytest.raises(ValueError, match="whole number"):
        module.dequantize(np.zeros(7, np.uint8), fmt)
    raw = module.quantize(np.ones(n, np.float32), fmt).copy()
    raw[0:2] = np.frombuffer(np.float16(np.nan).tobytes(), np.uint8)
    with pytest.raises(ValueError, match="corrupted"):
        module.dequantize(raw, fmt)


def test_bits_per_weight():
    assert [ggml.bits_per_weight(f) for f in ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1")] == \
        [8.5, 4.5, 5.0, 5.5, 6.0]
    assert [kquants.bits_per_weight(f) for f in KQUANTS] == [4.5, 5.5, 6.5625]


def test_the_shipped_file_reads_the_same_in_qkit_and_gguf():
    from qkit.models import smollm2

    reader = gguf.GGUFReader(smollm2.gguf_path())
    seen = set()
    for t in reader.tensors:
        fmt = t.tensor_type.name.lower()
        if fmt not in ggml.FORMATS or fmt in seen and not t.name.startswith("blk.29"):
            continue
        seen.add(fmt)
        raw = np.asarray(t.data)
        np.testing.assert_array_equal(ggml.dequantize(raw, fmt),
                                      gguf_dequantize(raw, t.tensor_type), err_msg=t.name)
    assert seen == {"q4_1", "q8_0"}
