"""SmoothQuant on MiniLM: exact before quantization, helpful at low activation bits."""

import numpy as np
import pytest
import torch

from qkit import data
from qkit.topics import smoothquant


def test_smoothing_is_exact_before_quantization():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 8)
    x = torch.randn(5, 16) * torch.linspace(0.1, 30, 16)
    s = smoothquant.smoothing_factors(x.abs().amax(0).numpy(), lin.weight.detach().numpy(), 0.5)
    with torch.no_grad():
        smoothed = torch.nn.functional.linear(x / torch.from_numpy(s),
                                              lin.weight * torch.from_numpy(s), lin.bias)
        assert torch.allclose(smoothed, lin(x), atol=1e-4)
        # at 16 bits the fake quantization is nearly transparent
        assert torch.allclose(smoothquant.SmoothedLinear(lin, s, 16, 16)(x), lin(x), atol=2e-3)
    assert np.allclose(smoothquant.smoothing_factors(np.array([64.0]), np.array([[0.25]]), 0.5),
                       16)
    with pytest.raises(ValueError, match="alpha"):
        smoothquant.smoothing_factors(np.ones(2), np.ones((2, 2)), 1.5)


def test_smoothing_helps_minilm_at_low_activation_bits():
    from qkit.models import minilm

    model, bbc = minilm.load(), data.bbc_news()
    stats = smoothquant.capture(model, bbc["x_train"][:16], max_len=32)
    assert set(stats) == {f"{i}.{n}" for i in range(6) for n in smoothquant.SMOOTHABLE}
    texts = bbc["x_test"][:8]
    ref = minilm.embed(model, texts, 32)

    def cos(m):
        return float((minilm.embed(m, texts, 32) * ref).sum(1).mean())

    plain = cos(smoothquant.quantized_model(model, None, a_bits=6))
    smooth = cos(smoothquant.quantized_model(model, stats, 0.5, a_bits=6))
    assert smooth > plain
