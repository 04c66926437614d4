"""QAT: the straight-through estimator, LSQ, and conversion to the integer engine."""

import numpy as np
import torch

from qkit.engine import IntegerModel, Scheme
from qkit.studies import results
from qkit.topics import qat


def test_ste_gradients():
    x = torch.linspace(-2, 2, 81, requires_grad=True)
    qat.fake_quantize_ste(x, 0.5, -3, 3).sum().backward()
    r = torch.round(x.detach() / 0.5)  # the clamp acts after rounding, as in torch FakeQuantize
    assert torch.equal(x.grad, ((r >= -3) & (r <= 3)).float())
    torch_x = x.detach().clone().requires_grad_(True)
    torch.fake_quantize_per_tensor_affine(torch_x, 0.5, 0, -3, 3).sum().backward()
    assert torch.equal(x.grad, torch_x.grad)
    y = torch.tensor([0.3, 1.7], requires_grad=True)
    qat.round_ste(y).sum().backward()
    assert torch.equal(y.grad, torch.ones(2))


def test_lsq_init_and_step_gradient():
    torch.manual_seed(0)
    w = torch.randn(4, 50)
    q = qat.LSQ(4, signed=True, channels=4)
    q(w)
    assert torch.allclose(q.step.detach(), 2 * w.abs().mean(dim=1) / np.sqrt(7))
    q.step.grad = None
    q(w).sum().backward()
    s = q.step.detach()[:, None]
    v = w / s
    inside = (v >= -7) & (v <= 7)
    # LSQ: d x_hat / d s = round(v) - v inside, qmin/qmax outside; times g = 1/sqrt(N Qp)
    per = torch.where(inside, torch.round(v) - v, torch.clamp(v, -7, 7).round())
    assert torch.allclose(q.step.grad, per.sum(dim=1) / np.sqrt(50 * 7), atol=1e-5)


def test_qat_converts_to_the_integer_engine(mnist):
    x, y = mnist["x"][:512], mnist["y"][:512]
    net, curves = qat.train(mnist["model"], x, y, weight_bits=3, epochs=1, progress=False)
    assert len(curves["loss"]) == 8 and np.isfinite(curves["loss"]).all()
    im = net.to_integer(x[:256].numpy())
    # the learned grids are the engine's grids
    steps = net.learned_steps()
    for name, s in steps["weights"].items():
        assert np.allclose(im.layers[name]["w_scale"], s)
    for name, s in steps["activations"].items():
        assert im.act[name] == (np.float32(s), 0)
    xt = mnist["x_test"][:500]
    with torch.no_grad():
        fake = net(xt).argmax(1).numpy()
    assert (im(xt.numpy()).argmax(1) == fake).mean() >= 0.97


def test_stored_qat_study_matches_the_live_ptq(mnist):
    """The PTQ column of the cached QAT study is re-measured here, so it cannot be stale."""
    stored = results.load("qat")
    calib = mnist["x"][:256].numpy()
    for row in stored["rows"]:
        im = IntegerModel.from_float(mnist["model"], calib, Scheme(row["bits"]))
        live = float((im(mnist["x_test"].numpy()).argmax(1) == mnist["y_test"]).mean())
        assert live == row["ptq_integer"], row["bits"]
        assert row["qat_integer"] >= row["ptq_integer"] - 0.005
    low = {r["bits"]: r for r in stored["rows"]}
    assert low[2]["qat_integer"] > low[2]["ptq_integer"] + 0.5
