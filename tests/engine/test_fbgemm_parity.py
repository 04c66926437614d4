"""qkit reproduces PyTorch's quantized CPU engine output for output.

Skipped with a reason when the installed torch has no ``torch.ao`` quantized
modules; qkit itself never needs them.
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from qkit.engine.fbgemm import (
    default_accumulation,
    from_torch,
    quantize_per_channel_torch,
    quantize_per_tensor_torch,
)

torch = pytest.importorskip("torch")
pytest.importorskip("torch.ao.nn.quantized", reason="this torch has no torch.ao quantized modules")
if "fbgemm" not in torch.backends.quantized.supported_engines:
    pytest.skip("this torch build has no fbgemm engine", allow_module_level=True)

import torch_layers  # noqa: E402  (tests/ is on sys.path under pytest's rootdir conftest)

warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
HERE = Path(__file__).parent


def _values_with_ties(rng, scale, n):
    x = (rng.standard_normal(n) * scale * 60).astype(np.float32)
    k = rng.integers(-140, 140, n // 2)
    x[: k.size] = ((k + 0.5) * np.float32(scale)).astype(np.float32)  # exact .5 ties of x/scale
    return x


@pytest.mark.parametrize("dtype,qmin,qmax", [("quint8", 0, 255), ("qint8", -128, 127)])
def test_quantize_per_tensor_rule(rng, dtype, qmin, qmax):
    compared = 0
    for _ in range(200):
        scale = float(np.float32(rng.uniform(1e-3, 0.5)))
        zp = int(rng.integers(qmin, qmax + 1))
        x = _values_with_ties(rng, scale, int(rng.integers(1, 300)))
        ref = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, getattr(torch, dtype))
        ours = quantize_per_tensor_torch(x, scale, zp, qmin, qmax)
        np.testing.assert_array_equal(ours, ref.int_repr().numpy())
        compared += x.size
    assert compared > 20_000


def test_quantize_per_channel_rule(rng):
    for _ in range(200):
        c, n = int(rng.integers(1, 8)), int(rng.integers(1, 60))
        scales = rng.uniform(1e-3, 0.5, c).astype(np.float32).astype(np.float64)
        zps = rng.integers(-128, 128, c)
        x = np.stack([_values_with_ties(rng, s, n) for s in scales])
        ref = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales),
                                         torch.from_numpy(zps), 0, torch.qint8)
        np.testing.assert_array_equal(quantize_per_channel_torch(x, scales, zps, 0, -128, 127),
                                      ref.int_repr().numpy())


def test_textbook_rule_differs_from_torch_only_at_ties(rng):
    """Why the rule matters: with an odd zero point, ties of x/scale round differently."""
    from qkit import QParams, quantize

    x = (np.arange(-20, 20) + 0.5).astype(np.float32) * np.float32(0.25)
    textbook = quantize(x, QParams(np.float32(0.25), 3, 8, signed=False))
    torch_rule = quantize_per_tensor_torch(x, 0.25, 3, 0, 255)
    assert 0 < (textbook != torch_rule).mean() < 1
    assert np.abs(textbook.astype(int) - torch_rule).max() == 1


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["fbgemm", "x86"])
def test_layers_match_torch_on_this_cpu(engine):
    if engine not in torch.backends.quantized.supported_engines:
        pytest.skip(f"engine {engine} not in this torch build")
    report = torch_layers.compare("auto", engine=engine)  # each layer's own path
    print(f"{engine} / {default_accumulation()}: {report}")
    for kind in ("linear", "conv2d") + (("depthwise",) if engine == "fbgemm" else ()):
        assert report[kind]["outputs"] > 10_000
        assert report[kind]["mismatches"] == 0, report


@pytest.mark.slow
def test_avx2_pair_saturation_matches_fbgemm_avx2_path():
    """fbgemm forced onto AVX2 (vpmaddubsw): only the saturating-pairs model matches."""
    env = dict(os.environ, FBGEMM_ENABLE_INSTRUCTIONS="AVX2",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    out = subprocess.run([sys.executable, str(HERE / "torch_layers.py"), "pairs16", "exact"],
                         env=env, capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(report)
    for kind in ("linear", "conv2d", "depthwise"):
        assert report["pairs16"][kind]["mismatches"] == 0, report
        # with activations over the full [0, 255], exact int32 sums are *not* what AVX2 fbgemm gives
        assert report["exact"][kind]["mismatches"] > 0, report


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="reads quantized Linear/Conv2d"):
        from_torch(torch.nn.Linear(2, 2))


def test_random_torch_linear_matches_on_this_cpu():
    pytest.importorskip("torch.ao.nn.quantized")
    from qkit.engine import fbgemm

    module, x_q, sx, zx, y = fbgemm.random_torch_linear(k=64, n=16, m=8)
    assert np.array_equal(fbgemm.from_torch(module)(x_q, sx, zx), y)


@pytest.mark.parametrize("kind,expected", [
    (dict(c=16, mult=1, k=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1)), True),
    (dict(c=8, mult=2, k=5, stride=(2, 1), padding=(2, 2), dilation=(1, 1)), True),
    (dict(c=12, mult=1, k=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1)), False),
    (dict(c=16, mult=3, k=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1)), False),
    (dict(c=16, mult=1, k=3, stride=(3, 3), padding=(1, 1), dilation=(1, 1)), False),
    (dict(c=16, mult=1, k=3, stride=(1, 1), padding=(0, 0), dilation=(1, 1)), False),
    (dict(c=16, mult=1, k=3, stride=(1, 1), padding=(1, 1), dilation=(2, 2)), False),
    (dict(c=16, mult=1, k=1, stride=(1, 1), padding=(0, 0), dilation=(1, 1)), False),
])
def test_fbgemm_depthwise_path_is_recognised(kind, expected):
    # the conditions under which fbgemm's depthwise kernel (saturating pairs) runs, measured
    # with the pinned torch on a VNNI CPU: each neighbour changes one of them
    from qkit.engine.fbgemm import FbgemmLayer

    c, o, k = kind["c"], kind["c"] * kind["mult"], kind["k"]
    layer = FbgemmLayer(np.zeros((o, k, k, 1), np.int8), np.ones(1, np.float32),
                        np.zeros(1, np.int32), 1.0, 0,
                        conv={"stride": kind["stride"], "padding": kind["padding"],
                              "dilation": kind["dilation"], "groups": c})
    assert layer.fbgemm_depthwise() is expected
    if default_accumulation() == "exact":
        assert layer.accumulation() == ("pairs16" if expected else "exact")
        layer.engine = "x86"  # oneDNN runs convs on VNNI CPUs: exact
        assert layer.accumulation() == "exact"


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("conv", [False, True])
def test_requantized_values_past_int32_wrap_in_torch(relu, conv):
    # a tiny output scale pushes f32(raw + bias) * mult past 2^31: fbgemm's float -> int32
    # conversion gives INT_MIN and PyTorch outputs the lower clamp where the formula (and qkit
    # by default) saturates to 255; overflow="wrap" reproduces PyTorch, "saturate" the formula
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    from qkit import reference

    torch.backends.quantized.engine = "fbgemm"
    rng = np.random.default_rng(7)
    if conv:
        mod = (nniq.ConvReLU2d if relu else nnq.Conv2d)(4, 8, 3, padding=1)
        w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
        x = rng.integers(0, 256, (2, 4, 6, 6)).astype(np.uint8)
    else:
        mod = nniq.LinearReLU(64, 16) if relu else nnq.Linear(64, 16)
        w = rng.standard_normal((16, 64)).astype(np.float32)
        x = rng.integers(0, 256, (8, 64)).astype(np.uint8)
    mod.set_weight_bias(torch.quantize_per_tensor(torch.from_numpy(w), 0.02, 0, torch.qint8),
                        torch.zeros(w.shape[0]))
    mod.scale, mod.zero_point = 1e-9, 7
    y_torch = mod(torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), 0.05, 3))
    y_torch = y_torch.int_repr().numpy()
    x_q = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if conv else x
    y_torch = y_torch.transpose(0, 2, 3, 1) if conv else y_torch
    layer = from_torch(mod)
    wrapped, saturated = layer(x_q, 0.05, 3, overflow="wrap"), layer(x_q, 0.05, 3)
    assert np.array_equal(wrapped, y_torch)
    lowest = 7 if relu else 0
    differ = saturated != y_torch
    assert differ.sum() > 0 and (saturated[differ] == 255).all()
    assert (y_torch[differ] == lowest).all()
    mult, bias_q = layer.requant_params(0.05)
    if not conv:  # the default is the formula's saturation, which the reference computes
        ref = reference.qlinear(x_q, layer.w, 3, mult, 7, lowest, 255, bias=bias_q)
        assert np.array_equal(saturated, ref)
    with pytest.raises(ValueError, match="overflow must be one of"):
        layer(x_q, 0.05, 3, overflow="clip")


def test_dynamic_linear_is_refused_by_name():
    import torch.ao.nn.quantized.dynamic as nnqd

    with pytest.raises(TypeError, match="is dynamic .*DynamicModel"):
        from_torch(nnqd.Linear(8, 4))


def _assert_sweep(report):
    assert sum(r["layers"] for r in report.values()) == 1000, report
    assert {k.removesuffix("-tiny") for k in report} == {"linear", "depthwise", "grouped",
                                                          "dense"}
    assert all(r["mismatches"] == 0 for r in report.values()), report


def test_a_thousand_random_layers_match_torch():
    # each layer on its own path (exact int32, or the depthwise kernel's int16 pairs), and the
    # tiny-scale ones with PyTorch's wrap past 2^31
    report = torch_layers.sweep()
    print(report)
    _assert_sweep(report)


@pytest.mark.slow
def test_a_thousand_random_layers_match_torch_on_avx2():
    env = dict(os.environ, FBGEMM_ENABLE_INSTRUCTIONS="AVX2",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    out = subprocess.run([sys.executable, str(HERE / "torch_layers.py"), "sweep"], env=env,
                         capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(report)
    _assert_sweep(report)
