"""Benchmark harness: qkit's integer GEMM against NumPy and PyTorch, measured in one run.

Every implementation is checked for the right answer first, warmed up, then
timed in interleaved rounds (A B C A B C ...) so that a noisy neighbour or
frequency change hits all of them alike; the table reports medians.

    python -m qkit bench                 # table
    python -m qkit bench --json          # one JSON object per line
    python -m qkit bench --quick         # small shapes, few rounds (smoke test)
    python -m qkit bench --llm           # SmolLM2 decode / prompt tokens/s (qkit.studies.bench_llm)
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from qkit import kernels
from qkit.kernels import loops
from qkit.kernels.avx2 import gemm_avx2
from qkit.kernels.simd.cpu import avx2_available
from qkit.studies.timing import int8_peak_gops, measure, set_threads

SHAPES = [(1024, 1024, 1024), (128, 384, 1536), (1, 4096, 4096)]
QUICK_SHAPES = [(64, 128, 96), (1, 256, 512)]
# conv layers as (name, batch, H, W, C_in, C_out, kernel, stride, groups): a small MNIST CNN at
# batch 256 (NHWC) and a MobileNetV2-style depthwise layer
CONV_LAYERS = [("cnn conv1 1->16", 256, 28, 28, 1, 16, 3, 1, 1),
               ("cnn conv2 16->32", 256, 28, 28, 16, 32, 3, 1, 1),
               ("cnn conv3 32->64", 256, 14, 14, 32, 64, 3, 1, 1),
               ("mbv2 dw 3x3 96", 16, 56, 56, 96, 96, 3, 1, 96)]
QUICK_CONV_LAYERS = [("tiny conv 4->8", 4, 8, 8, 4, 8, 3, 1, 1)]


@dataclass
class Result:
    op: str
    shape: tuple
    impl: str
    threads: int
    seconds: float  # median over rounds
    ratio_numpy: float = float("nan")  # GOP/s relative to NumPy fp32 (same shape, threads)
    peak_gops: float = float("nan")  # measured int8 peak of one core, times threads

    ops: float = 0.0  # multiply-adds x 2 per call

    @property
    def gops(self) -> float:
        return self.ops / self.seconds / 1e9

    def as_dict(self) -> dict:
        return {"op": self.op, "shape": list(self.shape), "impl": self.impl,
                "threads": self.threads, "gops": round(self.gops, 3),
                "ms": round(self.seconds * 1e3, 4), "ratio_numpy_fp32": round(self.ratio_numpy, 3),
                "pct_of_int8_peak": round(100 * self.gops / self.peak_gops, 1)}


def gemm_impls(m: int, k: int, n: int, seed: int = 0) -> dict[str, Callable[[], object]]:
    """Zero-argument callables computing one (M,K) x (K,N) product each, checked for agreement."""
    rng = np.random.default_rng(seed)
    a_q = rng.integers(0, 128, (m, k), dtype=np.uint8)
    w_q = rng.integers(-127, 128, (n, k), dtype=np.int8)
    a_f, w_f = a_q.astype(np.float32), w_q.astype(np.float32)
    wt_f = np.ascontiguousarray(w_f.T)
    exact = kernels.gemm(a_q, w_q)
    packed = kernels.pack_weights(w_q)  # once, as torch's Linear prepacks its weights
    impls = {
        "qkit int8": lambda: kernels.gemm_packed(a_q, packed),
        "qkit int8 plain": lambda: loops.gemm_plain(a_q, w_q),
        "numpy fp32": lambda: a_f @ wt_f,
    }
    w4 = np.clip(w_q // 16, -8, 7).astype(np.int8)
    if m <= 16:  # weight-bound shapes: int4 weights move half the bytes
        packed4 = kernels.pack_weights_int4(w4)
        impls["qkit int4"] = lambda: kernels.gemm_packed(a_q, packed4)
    if avx2_available():  # the kernels CPUs without VNNI use (qkit.kernels.avx2), timed here too
        impls["qkit int8 avx2"] = lambda: gemm_avx2(a_q, packed, "int32")
        packed4x = kernels.pack_weights(w4)
        # int16 sums: exact for 4-bit weights and these 7-bit activations (int16_steps = 16)
        impls["qkit int4 avx2 int16"] = lambda: gemm_avx2(a_q, packed4x, "int16")
    mult = np.float32(127.0 / max(float(np.abs(exact).max()), 1.0))
    bias = np.zeros(n, np.float32)
    # a layer as a model runs it: weights packed and arguments bound once (as PyTorch's
    # quantized Linear module holds them)
    layer = packed.bind(a_q, 0, mult, 128, 0, 255, bias)
    impls["qkit int8 + requant"] = lambda: layer(a_q)
    impls.update(_torch_impls(a_f, w_f, exact))
    expected = {"qkit int4": kernels.gemm(a_q, w4),
                "qkit int8 + requant": kernels.requantize_float(exact, mult, 128, 0, 255, bias)}
    for name, f in impls.items():  # validate before timing
        _check(name, f(), next((v for k, v in expected.items() if name.startswith(k)), exact))
    return impls


def _check(name: str, out, exact: np.ndarray) -> None:
    """Integer impls must be exact; float and torch int8 ones within their rounding."""
    if hasattr(out, "dequantize"):
        out = out.dequantize()
    out = np.asarray(out, dtype=np.float64)
    if name.startswith(("qkit int8", "qkit int4")):
        ok = np.array_equal(out, exact)
    else:
        err = np.abs(out - exact).max() / max(np.abs(exact).max(), 1)
        ok = err < (1e-5 if "fp32" in name else 2e-2)
    if not ok:
        raise AssertionError(f"{name} gives wrong results; refusing to time it")


def _has_torch() -> bool:
    try:
        import torch.ao.nn.quantized  # noqa: F401
    except ImportError:
        return False
    return True


def _torch_impls(a_f, w_f, exact) -> dict:
    try:
        import torch
        import torch.ao.nn.quantized as nnq
        import torch.ao.nn.quantized.dynamic as nnqd
    except ImportError:
        return {}
    warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
    x, w = torch.from_numpy(a_f), torch.from_numpy(w_f)
    impls = {"torch fp32": lambda: torch.nn.functional.linear(x, w)}
    n, k = w_f.shape
    wq = torch.quantize_per_tensor(w, 1.0, 0, torch.qint8)
    dyn = nnqd.Linear(k, n, bias_=False)
    dyn.set_weight_bias(wq, None)
    impls["torch int8 dynamic"] = lambda: dyn(x)
    static = nnq.Linear(k, n, bias_=False)
    static.set_weight_bias(wq, None)
    static.scale, static.zero_point = 2 * float(np.abs(exact).max()) / 255 + 1e-3, 128
    xq = torch.quantize_per_tensor(x, 1.0, 0, torch.quint8)
    impls["torch int8 static"] = lambda: static(xq)
    return impls


def run(shapes=None, threads=(1, 2), rounds: int = 7, progress=None,
        peak: float = float("nan")) -> list[Result]:
    results = []
    for shape in shapes or SHAPES:
        impls = gemm_impls(*shape)
        for t in threads:
            set_threads(t)
            med = measure(impls, rounds)
            base = med.get("numpy fp32")
            for name, sec in med.items():
                r = Result("gemm", shape, name, t, sec, peak_gops=peak * t,
                           ops=2.0 * shape[0] * shape[1] * shape[2])
                r.ratio_numpy = base / sec if base else float("nan")
                results.append(r)
            if progress:
                progress(shape, t)
    return results


def conv_impls(layer, seed: int = 0) -> tuple[dict, float]:
    """qkit's fused int8 conv running PyTorch's quantized layer, against PyTorch; and the op count.

    Where fbgemm sums in exact int32 (VNNI) qkit's output, with PyTorch's path for the layer
    modelled (its depthwise kernel sums saturating int16 pairs even there:
    `FbgemmLayer.accumulation`), must agree with PyTorch's. The random layers of
    tests/engine/test_fbgemm_parity.py agree exactly; on the large dense layers here fbgemm
    has differed by 1 in rare outputs within ~1e-6 of a rounding tie (19 of 6.4 million for
    conv2; cause not yet found), so at most 1 output in 10^4 may differ, and by at most 1.
    The timed qkit row is qkit's own exact int32 kernel on VNNI CPUs.
    """
    import torch
    import torch.ao.nn.quantized as nnq

    from qkit.engine.fbgemm import default_accumulation, from_torch

    warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
    _, n, h, w, c, o, k, s, g = layer
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.uniform(0, 4, (n, c, h, w)).astype(np.float32))
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.random.fork_rng():  # seeded initial weights, the caller's generator untouched
        torch.manual_seed(seed)
        conv_f = torch.nn.Conv2d(c, o, k, s, k // 2, groups=g).eval()
    q = nnq.Conv2d(c, o, k, s, k // 2, groups=g)
    wq = torch.quantize_per_channel(conv_f.weight.detach(), conv_f.weight.detach().abs()
                                    .amax(dim=(1, 2, 3)).double() / 127 + 1e-8,
                                    torch.zeros(o, dtype=torch.long), 0, torch.qint8)
    q.set_weight_bias(wq, conv_f.bias.detach())
    q.scale, q.zero_point = 0.05, 64
    xq = torch.quantize_per_tensor(x, 4 / 255, 0, torch.quint8)
    layer_q = from_torch(q)
    x_nhwc = np.ascontiguousarray(xq.int_repr().permute(0, 2, 3, 1).numpy())
    y_torch = q(xq).int_repr().permute(0, 2, 3, 1).numpy()
    if default_accumulation() == "exact":
        diff = np.abs(layer_q(x_nhwc, 4 / 255, 0).astype(int) - y_torch)
        if diff.max() > 1 or (diff > 0).mean() > 1e-4:
            raise AssertionError("qkit's conv differs from PyTorch's; refusing to time it")
    own = "exact" if default_accumulation() == "exact" else "auto"  # auto: fbgemm's pairs
    impls = {"qkit int8 (fused)": lambda: layer_q(x_nhwc, 4 / 255, 0, own),
             "torch int8 fbgemm": lambda: q(xq),
             "torch fp32": lambda: conv_f(x)}
    if default_accumulation() != "exact":
        # this fbgemm saturates int16 pairs (AVX2), so the row above reproduces that; qkit's
        # own engine sums exactly in int32 (kernels.qconv2d), timed here as well
        mult, bias_q = layer_q.requant_params(4 / 255)
        cv = layer_q.conv
        impls["qkit int8 exact"] = lambda: kernels.qconv2d(
            x_nhwc, layer_q.w, 0, mult, layer_q.out_zero_point, 0, 255, bias=bias_q,
            stride=cv["stride"], padding=cv["padding"], dilation=cv["dilation"],
            groups=cv["groups"])
    oh = (h + 2 * (k // 2) - k) // s + 1
    ops = 2.0 * n * oh * oh * o * k * k * (c // g)
    return impls, ops


def run_conv(layers, threads, rounds, peak, progress=None) -> list[Result]:
    import torch

    results = []
    with torch.no_grad():
        for layer in layers:
            impls, ops = conv_impls(layer)
            for t in threads:
                set_threads(t)
                med = measure(impls, rounds)
                base = med["torch int8 fbgemm"]
                for name, sec in med.items():
                    r = Result("conv2d", (layer[0],), name, t, sec, peak_gops=peak * t, ops=ops)
                    r.ratio_numpy = base / sec  # here: relative to torch's int8 conv
                    results.append(r)
                if progress:
                    progress(layer[0], t)
    return results


def compile_times() -> dict[str, float]:
    """Seconds for `kernels.warmup` in fresh processes: cold (empty numba cache), then warm."""
    import subprocess
    import sys
    import tempfile

    code = ("import time; t0 = time.perf_counter(); import qkit.kernels as k; "
            "t1 = time.perf_counter(); k.warmup(); print(t1 - t0, time.perf_counter() - t1)")
    times = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()
            times[f"import_{label}_s"], times[f"warmup_{label}_s"] = float(out[0]), float(out[1])
    return times


def format_table(results: list[Result], shape_title="shape (M,K,N)", ratio_title="vs numpy"
                 ) -> str:
    head = (f"{shape_title:<18}{'impl':<20}{'threads':>7}{'ms':>10}{'GOP/s':>9}"
            f"{ratio_title:>10}{'% peak':>8}")
    lines = [head, "-" * len(head)]
    for r in results:
        shape = "x".join(map(str, r.shape))
        lines.append(f"{shape:<18}{r.impl:<20}{r.threads:>7}{r.seconds * 1e3:>10.3f}"
                     f"{r.gops:>9.1f}{r.ratio_numpy:>9.2f}x{100 * r.gops / r.peak_gops:>7.0f}%")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m qkit bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--quick", action="store_true", help="small shapes, 3 rounds")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--formats", action="store_true",
                   help="only the format encoders and the Walsh-Hadamard transform")
    p.add_argument("--llm", action="store_true",
                   help="only SmolLM2 decode and prompt tokens/s (qkit int4 vs PyTorch)")
    args = p.parse_args(argv)
    if args.formats:
        return _formats(args)
    if args.llm:
        return _llm(args)
    from tqdm.auto import tqdm

    kernels.warmup()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    layers = (QUICK_CONV_LAYERS if args.quick else CONV_LAYERS) if _has_torch() else []
    rounds = 3 if args.quick else args.rounds
    steps = 1 + (len(shapes) + len(layers)) * len(args.threads) + (0 if args.quick else 1)
    bar = tqdm(total=steps, desc="bench", disable=args.no_progress)

    def done(what, t):
        bar.set_postfix_str(f"{what}, {t} thread{'s' if t > 1 else ''}")
        bar.update(1)

    peak, path = int8_peak_gops()
    done("int8 peak", 1)
    results = run(shapes, tuple(args.threads), rounds, progress=done, peak=peak)
    conv_results = run_conv(layers, tuple(args.threads), rounds, peak, progress=done)
    compile_info = {} if args.quick else compile_times()
    if compile_info:
        done("compile times (fresh processes)", 1)
    bar.close()
    if args.json:
        for r in results + conv_results:
            print(json.dumps(r.as_dict()))
        print(json.dumps({"op": "peak", "shape": [], "impl": path, "threads": 1,
                          "gops": round(peak, 1)}))
        if compile_info:
            print(json.dumps({"op": "compile", "shape": [], "impl": "qkit kernels.warmup",
                              "threads": 0, "gops": None, **compile_info}))
    else:
        print(format_table(results))
        if conv_results:
            print("\n" + format_table(conv_results, "conv layer", "vs torch8"))
        print(f"\nint8 peak of one core, measured: {peak:.1f} GOP/s ({path}); "
              "% peak = GOP/s / (peak x threads)")
        if compile_info:
            print("kernels.warmup() in a fresh process: cold cache {warmup_cold_s:.1f} s, warm "
                  "cache {warmup_warm_s:.2f} s (import qkit.kernels: {import_cold_s:.1f} s / "
                  "{import_warm_s:.1f} s)".format(**compile_info))
    sys.stdout.flush()
    return 0


def _formats(args) -> int:
    from qkit.studies import bench_formats

    rows = bench_formats.run(3 if args.quick else args.rounds)
    for r in rows if args.json else []:
        print(json.dumps(r))
    if not args.json:
        print(bench_formats.format_table(rows))
    return 0


def _llm(args) -> int:
    from qkit.studies import bench_llm

    kernels.warmup()
    quick = dict(new=8, prompt=64, rounds=1) if args.quick else dict(rounds=min(args.rounds, 3))
    rows = bench_llm.run(tuple(args.threads), **quick)
    for r in rows if args.json else []:
        print(json.dumps(r))
    if not args.json:
        print(bench_llm.format_table(rows))
    return 0
