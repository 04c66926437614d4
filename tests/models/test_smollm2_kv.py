"""The KIVI-style KV cache: keys per channel over groups of tokens, values per token, the
newest tokens in float; decoding one token at a time gives what one block forward gives."""

import numpy as np
import pytest
import torch

from qkit.models import smollm2 as S
from qkit.models import smollm2_kv as K


def test_key_and_value_grids_by_hand():
    rng = np.random.default_rng(0)
    k = torch.from_numpy(rng.standard_normal((1, 3, 70, 64)).astype(np.float32))
    s = K.KVScheme(2, 3, group=32)
    kq = K.quantize_keys(k, s)
    assert torch.equal(kq[:, :, 64:], k[:, :, 64:])  # the incomplete group stays float
    for g in range(2):  # each channel of each group: at most 4 levels, from its own min/max
        blk, ref = kq[0, 1, 32 * g:32 * g + 32], k[0, 1, 32 * g:32 * g + 32]
        for c in range(64):
            lo, hi = float(ref[:, c].min()), float(ref[:, c].max())
            m = float(np.float16(lo))
            step = float(np.float16((hi - lo) / 3))
            want = np.clip(np.round((ref[:, c].numpy() - m) / step), 0, 3) * step + m
            assert np.allclose(blk[:, c].numpy(), want, atol=1e-6)
            assert len(set(blk[:, c].tolist())) <= 4
    vq = K.quantize_values(k, s)  # per token: one grid over each head's 64 channels
    assert all(len(set(vq[0, h, t].tolist())) <= 8 for h in range(3) for t in range(70))
    const = torch.full((1, 3, 32, 64), 0.25)
    assert torch.equal(K.quantize_keys(const, s), const)  # a constant group: exact
    tq = K.quantize_keys(k, K.KVScheme(2, 2, keys="token"))
    assert all(len(set(tq[0, 0, t].tolist())) <= 4 for t in range(70))


def test_scheme_bytes_and_bad_arguments():
    s = K.KVScheme(4, 4, group=32, residual=32)
    n = S.LAYERS * S.KV_HEADS * S.HEAD
    assert s.bytes_per_token() == n * (4 + 1) / 8 + n * (4 + 0.5) / 8
    assert S.KVCache().bytes_per_token() / s.bytes_per_token() > 6
    assert [s.quantized(L) for L in (0, 32, 63, 64, 95, 96)] == [0, 0, 0, 32, 32, 64]
    for bad in (dict(key_bits=0), dict(value_bits=9), dict(group=0), dict(residual=-1),
                dict(key_bits=True), dict(keys="head")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            K.KVScheme(**bad)
    with pytest.raises(TypeError, match="scheme"):
        K.QuantizedKVCache("int4")


@pytest.mark.slow
def test_decode_equals_block_forward_and_bits_order_the_error():
    model = S.load()
    ids = torch.from_numpy(S.text_tokens()[:100])[None]
    with torch.inference_mode():
        ref = model(ids)
        # residual longer than the text: nothing is ever quantized, the float model's logits
        assert torch.equal(model(ids, K.QuantizedKVCache(K.KVScheme(2, 2, residual=100))), ref)
        s = K.KVScheme(4, 4, group=16, residual=8)
        block = model(ids, K.QuantizedKVCache(s))
        cache = K.QuantizedKVCache(s)
        steps = [model(ids[:, :37], cache)] + [model(ids[:, i:i + 1], cache)
                                               for i in range(37, 100)]
        # the same codes and grids either way; float32 keys computed in another batch shape
        # differ in the last bits, which can move a value across a rounding boundary: a few
        # logits differ by a fraction of a code step, no prediction changes
        d = (torch.cat(steps, 1) - block).abs()
        assert float(d.max()) < 0.05 and float(d.mean()) < 1e-3
        assert torch.equal(torch.cat(steps, 1).argmax(-1), block.argmax(-1))
        assert cache.length == 100
        assert cache.nbytes() == 80 * s.bytes_per_token() + 20 * S.KVCache().bytes_per_token()

        def kl(scheme):
            lp = torch.log_softmax(model(ids, K.QuantizedKVCache(scheme))[0, 50:].double(), -1)
            lr = torch.log_softmax(ref[0, 50:].double(), -1)
            return float((lr.exp() * (lr - lp)).sum(-1).mean())

        k8, k4, k2 = (kl(K.KVScheme(b, b, group=16, residual=8)) for b in (8, 4, 2))
        assert 0 < k8 < k4 < k2
