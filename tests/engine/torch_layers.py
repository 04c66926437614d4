"""Random PyTorch quantized Linear/Conv2d layers run by torch and by `qkit.engine.fbgemm`.

Used by test_torch_parity.py, in-process and in a subprocess with fbgemm forced
onto its AVX2 path (``FBGEMM_ENABLE_INSTRUCTIONS=AVX2``, read once at start-up).
Run directly, it prints one JSON line: ``python tests/torch_layers.py pairs16``.
"""

import json
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")


def _weight(torch, rng, shape, per_channel, affine):
    wf = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    if not per_channel:
        return torch.quantize_per_tensor(wf, float(rng.uniform(1e-3, 0.05)), 0, torch.qint8)
    n = shape[0]
    zps = rng.integers(-20, 20, n) if affine else np.zeros(n, np.int64)
    return torch.quantize_per_channel(wf, torch.from_numpy(rng.uniform(1e-3, 0.05, n)),
                                      torch.from_numpy(zps), 0, torch.qint8)


def _io_params(rng, t):
    limits = [(0, 0), (255, 255), (0, 255), (255, 0)]
    zx, zy = limits[t] if t < len(limits) else (int(v) for v in rng.integers(0, 256, 2))
    return float(rng.uniform(1e-3, 0.1)), zx, float(rng.uniform(0.01, 1.0)), zy


def linear_cases(n, seed):
    import torch
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(seed)
    for t in range(n):
        k, n_out, m = (int(v) for v in rng.integers(1, [300, 40, 20]))
        relu, has_bias = t % 3 == 0, t % 4 != 1
        if relu:
            mod = nniq.LinearReLU(k, n_out, bias=has_bias)
        else:
            mod = nnq.Linear(k, n_out, bias_=has_bias)
        bias = torch.from_numpy(rng.standard_normal(n_out).astype(np.float32)) if has_bias else None
        mod.set_weight_bias(_weight(torch, rng, (n_out, k), t % 2 == 0, t % 8 == 2), bias)
        sx, zx, mod.scale, mod.zero_point = _io_params(rng, t)
        x = rng.integers(0, 256, (m, k), endpoint=False).astype(np.uint8)  # full range [0, 255]
        y = mod(torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), sx, zx))
        yield mod, x, sx, zx, y.int_repr().numpy()


def conv_cases(n, seed):
    import torch
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(seed)
    for t in range(n):
        g = (1, 2, 3)[t % 3]
        c, o = int(rng.integers(1, 5)) * g, int(rng.integers(1, 5)) * g
        if t % 5 == 0:  # depthwise
            g = c = o = int(rng.integers(1, 9))
        k = int(rng.choice([1, 3, 5]))
        if t % 10 == 5:  # 3x3 depthwise in blocks of 16 channels: qkit's VNNI depthwise kernel
            g = c = o = 16 * int(rng.integers(1, 3))
            k = 3
        s, p, d = int(rng.integers(1, 3)), int(rng.integers(0, 3)), int(rng.integers(1, 3))
        h, w = (int(v) for v in rng.integers(k * d, 14, 2))
        cls = nniq.ConvReLU2d if t % 2 == 0 else nnq.Conv2d
        mod = cls(c, o, k, stride=s, padding=p, dilation=d, groups=g, bias=t % 4 != 1)
        bias = torch.from_numpy(rng.standard_normal(o).astype(np.float32)) if t % 4 != 1 else None
        mod.set_weight_bias(_weight(torch, rng, (o, c // g, k, k), t % 3 != 0, False), bias)
        sx, zx, mod.scale, mod.zero_point = _io_params(rng, t)
        x = rng.integers(0, 256, (2, c, h, w)).astype(np.uint8)
        y = mod(torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), sx, zx))
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        yield mod, x_nhwc, sx, zx, y.int_repr().numpy().transpose(0, 2, 3, 1)


def depthwise_cases(n, seed):
    """Depthwise convs on and around fbgemm's specialised depthwise kernel (C % 8 == 0,
    multiplier 1 or 2, 3x3 or 5x5, stride 1 or 2, same padding, no dilation), which sums
    saturating int16 pairs even on VNNI CPUs; the neighbours change one condition each."""
    import torch
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(seed)
    for t in range(n):
        c, mult = 8 * int(rng.integers(1, 4)), int(rng.integers(1, 3))
        k = int(rng.choice([3, 5]))
        s, p, d = int(rng.integers(1, 3)), (k - 1) // 2, 1
        change = t % 6  # 0, 1: on the fast path; then one condition off it
        if change == 2:
            c += 4  # channels not a multiple of 8
        elif change == 3:
            p = (k - 1) // 2 + 1 - 2 * int(rng.integers(0, 2))  # not "same" padding
        elif change == 4:
            d = 2
        elif change == 5:
            mult, s = 3, 3
        o = c * mult
        mod = nnq.Conv2d(c, o, k, stride=s, padding=p, dilation=d, groups=c, bias=t % 4 != 1)
        bias = torch.from_numpy(rng.standard_normal(o).astype(np.float32)) if t % 4 != 1 else None
        mod.set_weight_bias(_weight(torch, rng, (o, 1, k, k), t % 2 == 0, False), bias)
        sx, zx, mod.scale, mod.zero_point = _io_params(rng, t)
        h, w = (int(v) for v in rng.integers(k * d, 15, 2))
        x = rng.integers(0, 256, (2, c, h, w)).astype(np.uint8)
        y = mod(torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), sx, zx))
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        yield mod, x_nhwc, sx, zx, y.int_repr().numpy().transpose(0, 2, 3, 1)


def _sweep_conv(torch, rng, kind, relu):
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    k = int(rng.choice([1, 3, 5, 7]))
    if kind == "depthwise":  # every channel count class and multipliers 1-3
        c = int(rng.integers(1, 33))
        g, o = c, c * int(rng.integers(1, 4))
    elif kind == "grouped":
        g = int(rng.integers(2, 5))
        c, o = g * int(rng.integers(1, 5)), g * int(rng.integers(1, 5))
    else:
        g, c, o = 1, int(rng.integers(1, 20)), int(rng.integers(1, 40))
    s, p, d = int(rng.integers(1, 4)), int(rng.integers(0, k)), int(rng.integers(1, 3))
    h, w = (int(v) for v in rng.integers(k * d, k * d + 8, 2))
    mod = (nniq.ConvReLU2d if relu else nnq.Conv2d)(c, o, k, stride=s, padding=p, dilation=d,
                                                     groups=g)
    return mod, (o, c // g, k, k), (2, c, h, w)


def sweep_cases(n, seed):
    """``n`` random layers across the classes parity must hold for: Linear with odd K;
    depthwise (any channel count, multiplier 1-3), grouped and dense convs, 1x1 to 7x7,
    strided, dilated, padded; per-tensor and per-channel weights, fused ReLU, activations
    over all of [0, 255], output scales from 0.01 to 10, and every 17th one so tiny
    (1e-9 .. 1e-7) that requantized values pass 2^31 (compared with ``overflow="wrap"``).
    Yields ``(kind, module, x, sx, zx, y_torch, overflow)``."""
    import torch
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(seed)
    for t in range(n):
        kind = ("linear", "depthwise", "grouped", "dense", "dense")[t % 5]
        tiny, relu = t % 17 == 0, t % 3 == 0
        sx, zx = float(rng.uniform(1e-3, 0.1)), int(rng.integers(0, 256))
        out_scale = float(10 ** rng.uniform(-9, -7) if tiny else 10 ** rng.uniform(-2, 1))
        if kind == "linear":
            k, n_out, m = (int(v) for v in rng.integers(1, [400, 50, 10]))
            mod = nniq.LinearReLU(k, n_out) if relu else nnq.Linear(k, n_out)
            w_shape, x_shape = (n_out, k), (m, k)
        else:
            mod, w_shape, x_shape = _sweep_conv(torch, rng, kind, relu)
        bias = torch.from_numpy(rng.standard_normal(w_shape[0]).astype(np.float32))
        mod.set_weight_bias(_weight(torch, rng, w_shape, t % 2 == 1, False), bias)
        mod.scale, mod.zero_point = out_scale, int(rng.integers(0, 256))
        x = rng.integers(0, 256, x_shape).astype(np.uint8)
        y = mod(torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), sx, zx))
        y = y.int_repr().numpy()
        if x.ndim == 4:
            x, y = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), y.transpose(0, 2, 3, 1)
        yield kind + ("-tiny" if tiny else ""), mod, x, sx, zx, y, "wrap" if tiny else "saturate"


def sweep(n=1000, seed=123) -> dict:
    """Layers, outputs and mismatches per kind of `sweep_cases` (each layer's own path)."""
    import torch

    from qkit.engine.fbgemm import from_torch

    torch.backends.quantized.engine = "fbgemm"
    report = {}
    for kind, mod, x, sx, zx, y_torch, overflow in sweep_cases(n, seed):
        y = from_torch(mod, "fbgemm")(x, sx, zx, "auto", overflow)
        row = report.setdefault(kind, {"layers": 0, "outputs": 0, "mismatches": 0})
        row["layers"] += 1
        row["outputs"] += y.size
        row["mismatches"] += int((y != y_torch).sum())
    return report


def compare(accumulation, n_linear=60, n_conv=40, seed=0, engine="fbgemm", n_depthwise=36):
    """Layers, outputs and mismatching outputs of qkit vs torch, per kind."""
    import torch

    from qkit.engine.fbgemm import from_torch

    torch.backends.quantized.engine = engine
    report = {}
    kinds = [("linear", linear_cases(n_linear, seed)), ("conv2d", conv_cases(n_conv, seed))]
    if engine == "fbgemm":  # the x86 engine runs convs on oneDNN (docs/semantics.md)
        kinds.append(("depthwise", depthwise_cases(n_depthwise, seed)))
    for kind, cases in kinds:
        layers = outputs = mismatches = 0
        for mod, x, sx, zx, y_torch in cases:
            y = from_torch(mod, engine)(x, sx, zx, accumulation)
            layers += 1
            outputs += y.size
            mismatches += int((y != y_torch).sum())
        report[kind] = {"layers": layers, "outputs": outputs, "mismatches": mismatches}
    return report


if __name__ == "__main__":
    if sys.argv[1:] == ["sweep"]:
        print(json.dumps(sweep()))
    else:
        print(json.dumps({acc: compare(acc) for acc in sys.argv[1:]}))
