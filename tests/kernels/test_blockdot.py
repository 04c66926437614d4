"""The 4-bit x 8-bit block dot product: kernel == reference to the bit, serial == parallel,
and what it computes: the dequantized Q4 weights times the dequantized Q8_0 activations."""

import numpy as np
import pytest
from kernel_cases import use_path

import qkit.kernels as K
import qkit.reference as R
from qkit.formats import ggml
from qkit.kernels import blockdot

pytestmark = pytest.mark.nojit


def operands(rng, rows, blocks, tokens, offset=8):
    qs = rng.integers(0, 256, (rows, blocks, 16), dtype=np.uint8)
    d = (rng.standard_normal((rows, blocks)) * 0.02).astype(np.float32)
    m = np.zeros_like(d) if offset else (rng.standard_normal((rows, blocks)) * 0.1).astype(
        np.float32)
    qx = rng.integers(-127, 128, (tokens, blocks, 32), dtype=np.int8)
    dx = rng.random((tokens, blocks)).astype(np.float32)
    return qs, d, m, offset, qx, dx


@pytest.mark.parametrize("rows,blocks,tokens", [(1, 1, 1), (3, 2, 1), (7, 5, 3), (65, 3, 2),
                                                (192, 18, 1), (130, 2, 4)])
@pytest.mark.parametrize("offset", [8, 0])
@pytest.mark.parametrize("path", ["plain", "vnni"])
def test_kernel_equals_reference(rng, monkeypatch, path, rows, blocks, tokens, offset):
    use_path(monkeypatch, path)
    ops = operands(rng, rows, blocks, tokens, offset)
    expected = R.block_dot(*ops)
    np.testing.assert_array_equal(K.block_dot(*ops), expected)
    qs, d, m, offset, qx, dx = ops
    packed = K.pack_blocks(qs, d, m)
    for parallel in (False, True):
        np.testing.assert_array_equal(blockdot.run(packed, offset, qx, dx, parallel), expected)
    np.testing.assert_array_equal(K.block_dot_packed(packed, offset, qx, dx), expected)
    assert expected.size == 1 or len(np.unique(expected)) > 1


@pytest.mark.parametrize("path", ["plain", "vnni"])
def test_extremes_are_exact(rng, monkeypatch, path):
    use_path(monkeypatch, path)
    qs = np.full((4, 3, 16), 0xFF, np.uint8)  # every code 15 (weight +7 for Q4_0)
    qx = np.full((2, 3, 32), -128, np.int8)
    qx[1] = 127
    one = np.ones((4, 3), np.float32)
    out = K.block_dot(qs, one, one, 0, qx, np.ones((2, 3), np.float32))
    # Q4_1 with m = 1: 3 blocks x 32 x (15 + 1) x qx
    np.testing.assert_array_equal(out, R.block_dot(qs, one, one, 0, qx, np.ones((2, 3),
                                                                               np.float32)))
    assert out[0, 0] == 3 * 32 * 16 * -128 and out[1, 0] == 3 * 32 * 16 * 127


@pytest.mark.parametrize("fmt", ["q4_0", "q4_1"])
def test_it_is_the_dequantized_product(rng, fmt):
    w = rng.standard_normal((48, 128)).astype(np.float32)
    x = rng.standard_normal((2, 128)).astype(np.float32)
    raw = ggml.quantize(w, fmt)
    s = ggml.split(raw, fmt)
    qx, dx = ggml.quantize_activations(x)
    y = K.block_dot(s["qs"], s["d"], s["m"], s["offset"], qx, dx)
    xd = (qx.astype(np.float64) * dx[..., None]).reshape(2, -1)
    exact = xd @ ggml.dequantize(raw, fmt).astype(np.float64).T
    assert np.abs(y - exact).max() < 1e-5 * np.abs(exact).max()


def test_bad_operands_are_named(rng):
    qs, d, m, off, qx, dx = operands(rng, 4, 2, 1)
    with pytest.raises(TypeError, match="qs"):
        K.block_dot(qs.astype(np.int8), d, m, off, qx, dx)
    with pytest.raises(ValueError, match="same blocks"):
        K.block_dot(qs, d, m, off, qx[:, :1], dx)
    with pytest.raises(ValueError, match="d must be float32"):
        K.block_dot(qs, d.astype(np.float64), m, off, qx, dx)
    with pytest.raises(ValueError, match="dx contains NaN"):
        K.block_dot(qs, d, m, off, qx, np.full_like(dx, np.nan))
    with pytest.raises(ValueError, match="offset"):
        K.block_dot(qs, d, m, 16, qx, dx)
    with pytest.raises(ValueError, match="q4_0 or q4_1"):
        ggml.split(ggml.quantize(np.ones((1, 32)), "q8_0"), "q8_0")


def test_activation_quantization_is_llama_cpps_q8_0(rng):
    x = (rng.standard_normal((64, 96)) * np.exp(rng.uniform(-30, 12, (64, 1)))).astype(np.float32)
    x[0, :32] = 0  # an all-zero block: d = 0, codes 0
    x[1, :32] = 1e-30  # d underflows float16 to 0, the codes stay 127 (llama.cpp's too)
    x[2, :32] = (np.arange(32) - 16) * np.float32(127 / 16) / 127  # x / d on exact halves
    ours, theirs = K.quantize_q8_blocks(x), R.quantize_q8_blocks(x)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    q, d, _ = ggml.codes(x, "q8_0")  # the gguf package's own Q8_0, tested byte for byte
    np.testing.assert_array_equal(ours[0].reshape(-1, 32), q)
    np.testing.assert_array_equal(ours[1].reshape(-1), d.astype(np.float32).reshape(-1))
    for bad in (x.astype(np.float64), x[:, :40], np.full((1, 32), np.nan, np.float32),
                np.full((1, 32), 1e8, np.float32)):
        with pytest.raises(ValueError, match="x"):
            K.quantize_q8_blocks(bad)


def test_packed_operands_are_checked(rng):
    qs, d, m, off, qx, dx = operands(rng, 4, 2, 1)
    packed = K.pack_blocks(qs, d, m)
    with pytest.raises(TypeError, match="pack_blocks"):
        K.block_dot_packed(qs, off, qx, dx)
    with pytest.raises(ValueError, match="qx"):
        K.block_dot_packed(packed, off, qx[:, :1], dx)


@pytest.mark.parametrize("rows,blocks,tokens", [(1, 1, 1), (5, 3, 2), (130, 18, 1)])
@pytest.mark.parametrize("path", ["plain", "vnni"])
def test_q8_kernel_equals_reference(rng, monkeypatch, path, rows, blocks, tokens):
    use_path(monkeypatch, path)
    qw = rng.integers(-128, 128, (rows, blocks, 32), dtype=np.int8)
    d = (rng.standard_normal((rows, blocks)) * 0.01).astype(np.float32)
    qx = rng.integers(-128, 128, (tokens, blocks, 32), dtype=np.int8)
    dx = rng.random((tokens, blocks)).astype(np.float32)
    expected = R.block_dot_q8(qw, d, qx, dx)
    np.testing.assert_array_equal(K.block_dot_q8(qw, d, qx, dx), expected)
    packed = K.pack_q8(qw, d)
    for parallel in (False, True):
        np.testing.assert_array_equal(blockdot.run_q8(packed, qx, dx, parallel), expected)
    raw = ggml.quantize(rng.standard_normal((rows, blocks * 32)), "q8_0")  # gguf bytes
    f = ggml.decode(raw, "q8_0")
    y = K.block_dot_q8(f["q"].reshape(rows, blocks, 32), f["d"].astype(np.float32).reshape(
        rows, blocks), qx, dx)
    exact = (qx.astype(np.float64) * dx[..., None]).reshape(tokens, -1) @ \
        ggml.dequantize(raw, "q8_0").astype(np.float64).T
    assert np.abs(y - exact).max() <= 1e-5 * np.abs(exact).max()
    with pytest.raises(ValueError, match="qw"):
        K.block_dot_q8(qw[:, :, :16], d, qx, dx)
    with pytest.raises(TypeError, match="pack_q8"):
        K.block_dot_q8_packed(qw, qx, dx)


@pytest.mark.parametrize("path", ["plain", "vnni"])
def test_block_linear_is_quantize_then_dot(rng, monkeypatch, path):
    use_path(monkeypatch, path)
    x = rng.standard_normal((3, 96)).astype(np.float32)
    qs, d, m, off, _, _ = operands(rng, 70, 3, 1, offset=0)
    qw = rng.integers(-128, 128, (70, 3, 32), dtype=np.int8)
    qx, dx = R.quantize_q8_blocks(x)
    np.testing.assert_array_equal(blockdot.block_linear(K.pack_blocks(qs, d, m), 0, x),
                                  R.block_dot(qs, d, m, 0, qx, dx))
    np.testing.assert_array_equal(blockdot.block_linear(K.pack_q8(qw, d), 0, x),
                                  R.block_dot_q8(qw, d, qx, dx))
    with pytest.raises(ValueError, match="NaN"):
        blockdot.block_linear(K.pack_q8(qw, d), 0, np.full_like(x, np.inf))
    with pytest.raises(ValueError, match="float32"):
        blockdot.block_linear(K.pack_q8(qw, d), 0, x[:, :64])
