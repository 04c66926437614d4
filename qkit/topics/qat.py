"""Quantization-aware training: fake quantization, the straight-through estimator and LSQ.

PTQ rounds a trained model once and hopes. QAT rounds *during* training so the weights can
move to where rounding hurts least. Rounding has a zero gradient almost everywhere, so the
backward pass pretends it is the identity (the straight-through estimator, Bengio et al.
2013), except outside the clipping range, where the gradient is 0 (a clipped STE).

LSQ (Esser et al., ICLR 2020) also *learns* each step size ``s``:
``x_hat = round(clamp(x / s, Qn, Qp)) * s``; its gradient w.r.t. ``s`` is ``-x/s + round(x/s)``
inside the range and ``Qn`` or ``Qp`` outside, scaled by ``g = 1 / sqrt(N * Qp)`` (N = values
per step); the step starts at ``2 * mean|x| / sqrt(Qp)``.

`QatNet` wraps a traced float model (BN folded: `qkit.engine.trace`) with LSQ on every
weight (per output channel, symmetric, narrow range) and every ReLU output (per tensor,
unsigned); `to_integer` hands the learned steps to the integer engine, which then runs the
QAT model exactly like a PTQ one.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qkit import data
from qkit.core.qparams import qrange
from qkit.engine import IntegerModel, Scheme
from qkit.engine.floatrun import run_graph
from qkit.engine.graph import trace
from qkit.models import mnist_cnn

SEED = 20261127


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest (ties to even) forward; gradient 1 backward."""
    return x + (torch.round(x) - x).detach()


def scale_grad(x: torch.Tensor, g: float) -> torch.Tensor:
    """``x`` forward; gradient multiplied by ``g`` backward (LSQ's step-size gradient scale)."""
    return (x - x * g).detach() + x * g


def fake_quantize_ste(x: torch.Tensor, scale, qmin: int, qmax: int) -> torch.Tensor:
    """Quantize and dequantize with a clipped STE: gradient 1 inside the range, 0 outside."""
    return torch.clamp(round_ste(x / scale), qmin, qmax) * scale


class LSQ(nn.Module):
    """A learned-step quantizer; ``channels`` > 1 gives one step per output channel (axis 0)."""

    def __init__(self, bits: int, signed: bool, channels: int = 1):
        super().__init__()
        self.bits, self.signed = bits, signed
        self.qmin, self.qmax = qrange(bits, signed, narrow_range=signed)
        self.step = nn.Parameter(torch.ones(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def _view(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return s.view(-1, *[1] * (x.dim() - 1)) if s.numel() > 1 else s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            with torch.no_grad():
                dims = tuple(range(1, x.dim())) if self.step.numel() > 1 else None
                m = x.abs().mean(dim=dims) if dims else x.abs().mean()
                self.step.copy_((2 * m / math.sqrt(self.qmax)).clamp_min(1e-8).expand_as(
                    self.step))
                self.initialized.fill_(True)
        per_step = x.numel() / self.step.numel()
        s = scale_grad(self.step, 1.0 / math.sqrt(per_step * self.qmax)).abs().clamp_min(1e-8)
        return fake_quantize_ste(x, self._view(s, x), self.qmin, self.qmax)


class QatNet(nn.Module):
    """A traced (BN-folded) model with LSQ fake quantization on weights and activations."""

    def __init__(self, model: nn.Module, weight_bits: int = 4, act_bits: int = 8):
        super().__init__()
        self.ops, self.output = trace(copy.deepcopy(model))
        self.weight_bits, self.act_bits = weight_bits, act_bits
        self.weights, self.biases = nn.ParameterDict(), nn.ParameterDict()
        self.wq, self.aq = nn.ModuleDict(), nn.ModuleDict()
        for op in self.ops:
            key = op.name
            if op.kind in ("conv", "linear"):
                w = torch.from_numpy(op.params["weight"].copy())
                self.weights[key] = nn.Parameter(w)
                self.biases[key] = nn.Parameter(torch.from_numpy(op.params["bias"].copy()))
                self.wq[key] = LSQ(weight_bits, signed=True, channels=w.shape[0])
            # unsigned grids after a ReLU and on the input (images in [0, 1]); the logits and
            # residual sums keep their calibrated uint8 grids, as in PTQ
            if op.kind == "input" or op.activation in ("relu", "relu6") or op.kind == "relu":
                self.aq[key] = LSQ(act_bits, signed=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_graph(self.ops, x, self._layer, self._quantize_output)[self.output]

    def _layer(self, op, x):
        w, b, p = self.wq[op.name](self.weights[op.name]), self.biases[op.name], op.params
        if op.kind == "conv":
            return F.conv2d(x, w, b, p["stride"], p["padding"], p["dilation"], p["groups"])
        return F.linear(x, w, b)

    def _quantize_output(self, op, y):
        return self.aq[op.name](y) if op.name in self.aq else y

    def learned_steps(self) -> dict:
        """Per-layer weight steps (arrays) and activation steps (floats)."""
        return {"weights": {k: q.step.detach().abs().numpy().copy() for k, q in self.wq.items()},
                "activations": {k: float(q.step.detach().abs()) for k, q in self.aq.items()}}

    def to_integer(self, calibration, batch: int = 256) -> IntegerModel:
        """The integer-only model with the learned grids (other grids calibrated, min/max)."""
        ops = copy.deepcopy(self.ops)
        for op in ops:
            if op.name in self.weights:
                op.params["weight"] = self.weights[op.name].detach().numpy().copy()
                op.params["bias"] = self.biases[op.name].detach().numpy().copy()
        if self.act_bits != 8:
            raise ValueError("the integer engine runs uint8 activations: act_bits must be 8")
        steps = self.learned_steps()
        act = {k: (s, 0) for k, s in steps["activations"].items()}
        return IntegerModel.from_learned(ops, self.output, calibration,
                                         Scheme(self.weight_bits, per_channel=True), act,
                                         steps["weights"], batch)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, weight_bits: int,
          epochs: int = 3, batch: int = 64, lr: float = 1e-3, eval_set=None,
          progress: bool = True, seed: int = SEED) -> tuple[QatNet, dict]:
    """QAT from the float weights: Adam with cosine decay, the same augmentation as the float
    training; returns the net and its curves (loss per step, test accuracy per epoch)."""
    from tqdm.auto import tqdm


    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = QatNet(model, weight_bits)
    with torch.no_grad():
        net(x[:256])  # LSQ initialisation on a first batch
    steps = epochs * (-(-len(x) // batch))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    curves = {"loss": [], "test_accuracy": [evaluate(net, *eval_set)] if eval_set else []}
    bar = tqdm(total=steps, desc=f"QAT W{weight_bits}A8", disable=not progress)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(net(mnist_cnn.augment(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            curves["loss"].append(float(loss.detach()))
            bar.update()
        if eval_set:
            curves["test_accuracy"].append(evaluate(net, *eval_set))
    bar.close()
    return net.eval(), curves


def evaluate(net: nn.Module, x: torch.Tensor, labels: np.ndarray) -> float:
    net.eval()
    with torch.no_grad():
        return float((net(x).argmax(1).numpy() == labels).mean())


def ste_picture(bits: int = 2, x_min: float = -1.5, x_max: float = 1.5, n: int = 601) -> dict:
    """Forward (staircase) and backward (clipped STE) of a fixed-step quantizer on a line."""
    q = qrange(bits, True, narrow_range=True)
    scale = 1.0 / q[1]
    x = torch.linspace(x_min, x_max, n, requires_grad=True)
    y = fake_quantize_ste(x, scale, *q)
    y.sum().backward()
    return {"x": x.detach().numpy(), "y": y.detach().numpy(), "grad": x.grad.numpy(),
            "scale": scale, "qmin": q[0], "qmax": q[1], "bits": bits}


def mnist_run(weight_bits: int = 2, epochs: int = 1, threads: int = 2) -> dict:
    """A QAT run of notebook 07 on the MNIST CNN: PTQ and QAT at ``weight_bits``, both run on
    the integer engine, and how often the integer model agrees with its fake-quantized twin."""
    torch.set_num_threads(threads)
    split, model = data.mnist5k(), mnist_cnn.load()
    x, y = mnist_cnn.to_input(split["x_train"]), torch.from_numpy(split["y_train"])
    x_test, y_test = mnist_cnn.to_input(split["x_test"]), split["y_test"]
    net, curves = train(model, x, y, weight_bits=weight_bits, epochs=epochs,
                        eval_set=(x_test, y_test))
    integer = net.to_integer(x[:256].numpy())(x_test.numpy()).argmax(1)
    ptq = IntegerModel.from_float(model, x[:256].numpy(), Scheme(weight_bits))
    with torch.no_grad():
        fake = net(x_test).argmax(1).numpy()
    return {"bits": weight_bits, "ptq": float((ptq(x_test.numpy()).argmax(1) == y_test).mean()),
            "qat_fake_quant": curves["test_accuracy"][-1],
            "qat_integer": float((integer == y_test).mean()),
            "agreement": float((integer == fake).mean())}


def describe_run(r: dict) -> str:
    """`mnist_run`'s numbers as two lines of text."""
    return (f"PTQ W{r['bits']}A8: {r['ptq']:.1%}   QAT fake-quant: {r['qat_fake_quant']:.1%}   "
            f"QAT on the integer engine: {r['qat_integer']:.1%}\n"
            f"integer and fake-quant predictions agree on {r['agreement']:.1%} of the test "
            "images")


__all__ = ["LSQ", "QatNet", "describe_run", "fake_quantize_ste", "mnist_run", "round_ste",
           "scale_grad", "ste_picture", "train"]
