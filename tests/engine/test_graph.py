"""Tracing a float model: BN folding, fused activations, refusals that name the layer, and
cross-layer equalization."""

import numpy as np
import pytest
from torch import nn

from qkit.engine import UnsupportedLayer, run_float, trace

torch = pytest.importorskip("torch")


def test_trace_folds_bn_and_fuses_activations(models):
    ops, output = trace(models[0])
    kinds = [(op.kind, op.activation) for op in ops]
    assert kinds == [("input", None), ("conv", "relu"), ("conv", "relu6"), ("conv", None),
                     ("add", None), ("maxpool", None), ("avgpool", None), ("relu", None),
                     ("flatten", None), ("linear", None)]
    assert output == "fc"
    x = torch.rand(4, 3, 12, 12)
    for model in models:
        ops, _ = trace(model)
        with torch.no_grad():
            np.testing.assert_allclose(run_float(ops, x).numpy(), model(x).numpy(), atol=1e-5)


def test_unsupported_layers_are_named():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 2, 3)
            self.s = nn.Softmax(dim=1)

        def forward(self, x):
            return self.s(self.c(x))

    with pytest.raises(UnsupportedLayer, match=r"'s' \(Softmax, node s\).*SUPPORTED"):
        trace(Bad())

    class Sort(nn.Module):
        def forward(self, x):
            return torch.sort(x, 1)[0]

    with pytest.raises(UnsupportedLayer, match="'sort' \\(node sort\\)"):
        trace(Sort())

    class BnAlone(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.BatchNorm2d(1)

        def forward(self, x):
            return self.b(torch.relu(x))

    with pytest.raises(UnsupportedLayer):
        trace(BnAlone())


def test_cross_layer_equalization_keeps_the_function_and_evens_the_ranges():
    from qkit.engine.equalize import equalize

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
                          nn.Conv2d(8, 4, 1)).eval()
    with torch.no_grad():  # very uneven channel ranges, as after BN folding in MobileNetV2
        model[0].weight.mul_(torch.logspace(-2, 1, 8)[:, None, None, None])
    x = torch.rand(4, 3, 10, 10)
    ops, _ = trace(model)
    before = run_float(ops, x).numpy()
    assert equalize(ops) == 2
    np.testing.assert_allclose(run_float(ops, x).numpy(), before, rtol=1e-4, atol=1e-5)
    r1 = np.abs(ops[1].params["weight"]).reshape(8, -1).max(axis=1)
    r2 = np.abs(ops[2].params["weight"]).reshape(8, -1).max(axis=1)
    np.testing.assert_allclose(r1, r2, rtol=0.05)
