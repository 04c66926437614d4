"""Weight-only methods for language models: RTN's grid, GPTQ against a direct implementation
of the OBQ update, AWQ's scale folding and searches, and the three applied to SmolLM2."""

import numpy as np
import pytest
import torch

from qkit.engine import awq, gptq
from qkit.engine.rtn import WeightScheme, expand, rtn


def layer(n_out=48, n_in=192, tokens=1024, seed=0):
    """A weight and correlated inputs with uneven channel scales, like a real layer's."""
    rng = np.random.default_rng(seed)
    mix = np.eye(n_in) + rng.standard_normal((n_in, n_in)) / np.sqrt(n_in)
    scales = np.exp(rng.standard_normal(n_in))

    def inputs(t):
        return ((rng.standard_normal((t, n_in)) * scales) @ mix).astype(np.float32)

    return rng.standard_normal((n_out, n_in)).astype(np.float32), inputs(tokens), inputs(tokens)


def obq(w, h, scheme, damp=0.01):
    """Optimal Brain Quantization in its direct form: quantize column j, move every later
    column by -err_j / [H^-1]_jj * [H^-1]_j,: and remove j from H^-1, in natural order."""
    w = w.astype(np.float64).copy()
    n = w.shape[1]
    hinv = np.linalg.inv(h + damp * np.mean(np.diag(h)) * np.eye(n))
    scale, zero = expand(scheme.params(w.astype(np.float32)), w.shape)
    qmin, qmax = scheme.qmin_qmax
    g = scheme.group_size
    codes = np.zeros(w.shape, np.int16)
    for j in range(n):
        k = 0 if g is None else j // g
        if g is not None and j % g == 0:
            s, z = expand(scheme.params(w[:, j:j + g].astype(np.float32)), (w.shape[0],))
            scale[:, k], zero[:, k] = s[:, 0], z[:, 0]
        q = np.clip(np.rint(w[:, j] / scale[:, k]) + zero[:, k], qmin, qmax)
        codes[:, j] = q
        err = (w[:, j] - (q - zero[:, k]) * scale[:, k]) / hinv[j, j]
        w[:, j:] -= np.outer(err, hinv[j, j:])
        hinv = hinv - np.outer(hinv[:, j], hinv[j, :]) / hinv[j, j]
    return codes


def test_rtn_grid_and_error():
    w, _, _ = layer()
    for scheme in (WeightScheme(4, None), WeightScheme(4, 64), WeightScheme(3, 32, True),
                   WeightScheme(2, 64), WeightScheme(8, None, True)):
        q = rtn(w, scheme)
        qmin, qmax = scheme.qmin_qmax
        assert q.codes.min() >= qmin and q.codes.max() <= qmax
        if scheme.bits <= 4:  # the whole grid is used
            assert len(np.unique(q.codes)) == qmax - qmin + 1
        step = np.repeat(q.scale, scheme.group_size or w.shape[1], axis=1)
        assert (np.abs(q.dequantize() - w) <= step * 0.5 + 1e-6).all()
        assert q.scale.shape == (w.shape[0], scheme.groups(w.shape[1]))


def test_rtn_shorter_last_group_is_its_own_group():
    w = np.random.default_rng(1).standard_normal((8, 576)).astype(np.float32)
    q = rtn(w, WeightScheme(4, 128))
    assert q.scale.shape == (8, 5)
    last = rtn(w[:, 512:], WeightScheme(4, None))  # the 64 weights of the last group alone
    np.testing.assert_array_equal(q.codes[:, 512:], last.codes)
    np.testing.assert_array_equal(q.scale[:, 4:], last.scale)
    assert WeightScheme(4, 128).bits_per_weight(576) == 4 + 32 * 5 / 576


@pytest.mark.parametrize("bad", [dict(bits=1), dict(bits=9), dict(bits=True), dict(bits=4.0),
                                 dict(group_size=1), dict(group_size=64.0)])
def test_scheme_refuses_bad_arguments(bad):
    with pytest.raises(ValueError, match="bits|group_size"):
        WeightScheme(**bad)


def test_rtn_refuses_bad_weights():
    with pytest.raises(ValueError, match="2-D"):
        rtn(np.ones(8), WeightScheme())
    with pytest.raises(ValueError, match="NaN"):
        rtn(np.full((2, 8), np.nan), WeightScheme())


@pytest.mark.parametrize("scheme,block", [(WeightScheme(4, None), 128), (WeightScheme(4, None), 7),
                                          (WeightScheme(3, 64, True), 64),
                                          (WeightScheme(4, 32), 128)])
def test_gptq_is_obq(scheme, block):
    w, x, _ = layer()
    h = gptq.hessian(x)
    q = gptq.gptq(w, h, scheme, block_size=block)
    if scheme.group_size is None or block % scheme.group_size == 0 and block == scheme.group_size:
        np.testing.assert_array_equal(q.codes, obq(w, h, scheme))
    else:
        # groups inside a lazy block take their parameters from the weights as the full
        # matrix holds them (the authors' code): not yet updated by the block's own columns
        assert 0 < (q.codes != obq(w, h, scheme)).mean() < 0.5


@pytest.mark.parametrize("scheme", [WeightScheme(4, None), WeightScheme(4, 64),
                                    WeightScheme(3, 64, True), WeightScheme(2, 32)])
def test_gptq_reduces_output_error_against_rtn(scheme):
    w, x, held_out = layer()
    h = gptq.hessian(x)
    plain = gptq.gptq(w, h, scheme, act_order=False)
    ordered = gptq.gptq(w, h, scheme, act_order=True)
    baseline = gptq.output_error(w, rtn(w, scheme), held_out)
    assert gptq.output_error(w, plain, held_out) < 0.6 * baseline
    assert gptq.output_error(w, ordered, held_out) < 0.6 * baseline
    assert gptq.output_error(w, ordered, x) <= 1.05 * gptq.output_error(w, plain, x)


def test_gptq_edges_and_errors():
    w, x, _ = layer(8, 32, 256)
    x[:, 3] = 0  # a dead input: its weights are zeroed, not quantized at random
    q = gptq.gptq(w, gptq.hessian(x), WeightScheme(4, None))
    assert (q.dequantize()[:, 3] == 0).all()
    with pytest.raises(ValueError, match=r"hessian must be \(32, 32\)"):
        gptq.gptq(w, np.eye(31), WeightScheme())
    with pytest.raises(ValueError, match="symmetric"):
        gptq.gptq(w, np.triu(np.ones((32, 32))), WeightScheme())
    with pytest.raises(ValueError, match="positive definite"):
        gptq.gptq(w, -np.eye(32), WeightScheme(), damp=0.0)
    with pytest.raises(ValueError, match="tokens"):
        gptq.hessian(np.zeros((0, 4)))


def test_awq_scaling_leaves_the_float_layer_unchanged_and_helps():
    w, x, held_out = layer(64, 128, 512, seed=3)
    x[:, :2] *= 30  # two salient input channels
    held_out[:, :2] *= 30
    scheme = WeightScheme(3, 64)
    s, alpha, losses = awq.search_scales(x, [w], scheme)
    assert s.shape == (128,) and alpha > 0 and losses.min() < losses[0]
    np.testing.assert_allclose((x / s) @ (w * s).T, x @ w.T, rtol=1e-4, atol=1e-3)
    scaled = rtn(w * s, scheme).dequantize() / s
    err_awq = np.sum(((held_out @ (scaled - w).T)) ** 2)
    err_rtn = np.sum(((held_out @ (rtn(w, scheme).dequantize() - w).T)) ** 2)
    assert err_awq < 0.8 * err_rtn


def test_awq_clip_search():
    w, x, _ = layer(32, 128, 256, seed=4)
    w[:, 7] = 12.0  # an outlier weight per row: clipping its group helps the others
    scheme = WeightScheme(3, 64)
    clipped, ratios = awq.search_clip(x, w, scheme)
    assert ratios.shape == (32, 2) and ratios.min() >= 0.525 and ratios.max() <= 1
    assert (ratios < 1).any()

    def err(weights):
        return float(np.sum((x @ (rtn(weights, scheme).dequantize() - w).T) ** 2))

    assert err(clipped) <= err(w)
    with pytest.raises(ValueError, match="weights"):
        awq.search_scales(x, [w[:, :5]], scheme)
    with pytest.raises(ValueError, match="finite"):
        awq.search_clip(np.full_like(x, np.nan), w, scheme)


@pytest.mark.slow
def test_methods_on_two_blocks_of_smollm2():
    from qkit.models import smollm2, smollm2_quant

    model = smollm2.load()
    model.blocks = model.blocks[:2]
    scheme = WeightScheme(3, 128)
    ids = torch.from_numpy(smollm2.text_tokens("evaluation")[:1024].reshape(2, 512))
    with torch.inference_mode():
        ref = model(ids)
    errors = {}
    for method in smollm2_quant.METHODS:
        q, weights = smollm2_quant.quantize(model, method, scheme, windows=2, awq_tokens=256)
        assert len(weights) == 14
        assert smollm2_quant.weight_bytes(weights) < sum(
            w.codes.size for w in weights.values()) * 3.3 / 8
        with torch.inference_mode():
            errors[method] = float(((q(ids) - ref) ** 2).mean())
        if method == "rtn":
            w = model.blocks[1].ffn_down.weight.numpy()
            np.testing.assert_array_equal(weights["blk.1.ffn_down"].codes, rtn(w, scheme).codes)
    assert model.blocks[0].attn_q.weight.abs().sum() > 0  # the original is not modified
    assert errors["gptq"] < errors["rtn"] and errors["awq"] < errors["rtn"]
    with pytest.raises(ValueError, match="method"):
        smollm2_quant.quantize(model, "smoothquant", scheme)
    with pytest.raises(TypeError, match="WeightScheme"):
        smollm2_quant.quantize(model, "rtn", 4)
