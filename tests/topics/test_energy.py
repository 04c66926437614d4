"""The energy estimate's operation and memory counts on real models."""

import pytest
import torch

from qkit.topics import energy


def test_energy_counts_of_real_models():
    from qkit.models import mobilenet_v2 as mv2

    c = energy.traced_counts(mv2.load(), torch.zeros(1, 3, 224, 224))
    assert 295e6 < c["macs"] < 305e6  # MobileNetV2 1.0-224: 300 M multiply-adds (Sandler 2018)
    assert 3.4e6 < c["weights"] < 3.5e6
    t = energy.transformer_counts(tokens=1)
    assert t["weights"] == 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    e = energy.compare_precisions(c)
    assert e["int4"]["weights_uj"] == pytest.approx(e["int8"]["weights_uj"] / 2)
    assert e["fp32"]["total_uj"] > e["int8"]["total_uj"] > e["int4"]["total_uj"]
    on_chip = energy.compare_precisions(c, weights_on_chip=True)
    assert on_chip["int8"]["weights_uj"] < e["int8"]["weights_uj"] / 100
    with pytest.raises(ValueError, match="precision"):
        energy.estimate(1, 1, 1, "int2")
