"""Rotations: the fast Walsh-Hadamard transform against the matrix product (exact on integers),
random Hadamard rotations orthogonal for every n = 2^k * m, folding into weights and norms
leaves float outputs unchanged, and what a rotation does to MiniLM's outlier channels."""

import numpy as np
import pytest
import torch
from torch import nn

from qkit import kernels, reference
from qkit.reference.hadamard import hadamard_matrix
from qkit.topics import rotation as R


@pytest.mark.parametrize("n", [1, 2, 4, 8, 64, 128, 1024])
def test_fwht_equals_the_matrix_product_exactly_on_integers(rng, n):
    x = rng.integers(-1000, 1000, (7, n)).astype(np.float64)
    fast, slow = kernels.fwht(x), reference.fwht(x)
    np.testing.assert_array_equal(fast, slow)
    assert fast.dtype == np.float64 and fast.shape == (7, n)
    np.testing.assert_array_equal(kernels.fwht(fast), n * x)  # H H = n I
    assert np.unique(fast).size > 1 or n == 1


def test_fwht_on_floats_and_edge_inputs(rng):
    x = rng.standard_normal((5, 256))
    np.testing.assert_allclose(kernels.fwht(x), reference.fwht(x), rtol=0, atol=1e-12)
    e = np.zeros((1, 8))
    e[0, 3] = 1
    np.testing.assert_array_equal(kernels.fwht(e)[0], hadamard_matrix(8)[3])
    ints = np.arange(16, dtype=np.int16).reshape(2, 8)  # integer dtypes are accepted
    np.testing.assert_array_equal(kernels.fwht(ints), reference.fwht(ints))


@pytest.mark.parametrize("fn", [kernels.fwht, reference.fwht])
@pytest.mark.parametrize("bad,err,word", [
    (np.zeros((2, 6)), ValueError, "power of two"),
    (np.zeros(8), ValueError, "2-D"),
    (np.zeros((0, 8)), ValueError, "at least one row"),
    (np.full((1, 4), np.nan), ValueError, "NaN"),
    (np.zeros((1, 4), bool), TypeError, "dtype"),
    (np.array([["a"] * 4]), TypeError, "dtype"),
])
def test_fwht_refuses_bad_input_naming_x(fn, bad, err, word):
    with pytest.raises(err, match=word):
        fn(bad)


@pytest.mark.parametrize("n", [1, 3, 32, 384, 1536, 96, 7])
def test_random_hadamard_is_orthogonal_and_fast_equals_dense(rng, n):
    r = R.random_hadamard(n, seed=n)
    q = r.matrix()
    np.testing.assert_allclose(q @ q.T, np.eye(n), atol=1e-12)
    x = rng.standard_normal((3, 2, n))
    np.testing.assert_allclose(r.apply(x), x @ q, atol=1e-12)
    np.testing.assert_allclose(r.apply(x, fast=False), x @ q, atol=1e-12)
    assert r.p * r.m.shape[0] == n and r.m.shape[0] % 2 == 1


def test_random_hadamard_is_seeded_and_refuses_bad_sizes():
    a, b, c = (R.random_hadamard(384, s).matrix() for s in (0, 0, 1))
    assert np.array_equal(a, b) and not np.allclose(a, c)
    for bad in (0, -4, 2.5, True, "8"):
        with pytest.raises(ValueError, match="n must be"):
            R.random_hadamard(bad)
    with pytest.raises(ValueError, match="length 384"):
        R.random_hadamard(384).apply(np.zeros((2, 383)))


def test_rotated_linear_keeps_the_float_output(rng):
    lin = nn.Linear(96, 40)
    x = torch.from_numpy(rng.standard_normal((9, 96)).astype(np.float32))
    out = R.RotatedLinear(lin, R.random_hadamard(96, 3))(x)
    torch.testing.assert_close(out, lin(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm", [nn.LayerNorm(64), nn.RMSNorm(64)])
def test_norm_weights_fold_into_the_next_linear(rng, norm):
    with torch.no_grad():
        norm.weight.copy_(torch.from_numpy(rng.uniform(0.1, 20, 64).astype(np.float32)))
        if getattr(norm, "bias", None) is not None:
            norm.bias.copy_(torch.from_numpy(rng.standard_normal(64).astype(np.float32)))
    lin = nn.Linear(64, 16)
    x = torch.from_numpy(rng.standard_normal((5, 64)).astype(np.float32) * 3)
    plain = type(norm)(64, elementwise_affine=False) if isinstance(norm, nn.LayerNorm) else \
        nn.RMSNorm(64, elementwise_affine=False)
    folded = R.fold_norm(norm, lin)
    torch.testing.assert_close(folded(plain(x)), lin(norm(x)), atol=1e-4, rtol=1e-5)
    # the folded input has no gamma outliers left; rotating it on top keeps the output
    both = R.RotatedLinear(folded, R.random_hadamard(64, 1))(plain(x))
    torch.testing.assert_close(both, lin(norm(x)), atol=1e-4, rtol=1e-5)


def test_channel_outliers_on_a_planted_channel(rng):
    x = rng.standard_normal((500, 128))
    x[:, 5] *= 40
    assert R.channel_outliers(x) > 20
    after = R.random_hadamard(128).apply(x)
    assert R.channel_outliers(after) < 3
    study = R.outlier_study(x.astype(np.float32))
    assert study["after"]["int8 per tensor"] > study["before"]["int8 per tensor"] + 10
    with pytest.raises(ValueError, match="tokens, channels"):
        R.outlier_study(np.zeros(5))


@pytest.mark.slow
def test_rotating_every_minilm_linear_keeps_its_embeddings():
    from qkit import data
    from qkit.models import minilm

    lm, texts = minilm.load(), data.bbc_news()["x_test"][:8]
    ref = minilm.embed(lm, texts, 64)
    np.testing.assert_allclose(minilm.embed(R.rotated_minilm(lm), texts, 64), ref, atol=1e-5)
    # quantized, the rotation is what makes per-tensor int8 activations work
    plain = minilm.embed(R.rotated_minilm(lm, weights="int8 per tensor",
                                          activations="int8 per tensor", rotate=False), texts, 64)
    rotated = minilm.embed(R.rotated_minilm(lm, weights="int8 per tensor",
                                            activations="int8 per tensor"), texts, 64)
    assert (rotated * ref).sum(1).mean() > (plain * ref).sum(1).mean() + 0.02
