"""Claims of notebook 03 (integer arithmetic): zero points, the int32 bound, fixed point,
PyTorch's float requantization and its AVX2 accumulation."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.lab.claims import claim, measured


@cache
def _sweeps():
    """300 random (m, acc) over the explorer's slider ranges: the largest difference from exact
    rounding, and the largest distance to a tie of a differing output, in units of the first
    rounding's half step 2^(shift - 1)."""
    from qkit.topics.arithmetic import requant_sweep

    rng = np.random.default_rng(0)
    largest, nearest, differing = 0, 0.0, 0
    for _ in range(300):
        s = requant_sweep(10 ** rng.uniform(-6, 0.5), int(rng.integers(-200_000, 200_001)))
        largest = max(largest, s["max_diff"])
        d = s["difference"] != 0
        differing += int(d.sum())
        if d.any():
            v = s["acc"][d] * s["m"]
            dist = np.abs(v - np.floor(v) - 0.5) / 2.0 ** (min(s["shift"], 0) - 1)
            nearest = max(nearest, float(dist.max()))
    return largest, nearest, differing


@cache
def _torch_linear():
    from qkit.engine import fbgemm

    module, x_q, sx, zx, y = fbgemm.random_torch_linear(k=256, n=64, m=32)
    layer = fbgemm.from_torch(module)
    return {a: int((layer(x_q, sx, zx, a) != y).sum()) for a in ("exact", "pairs16")}, y.size


@claim("03", "move log10 m and the accumulator. The fixed-point result differs from exact "
             "rounding by at most 1, and only near ties (its first rounding rounds ties toward "
             "$+\\infty$, the second away from zero).")
def _fixed_point():
    from qkit.core import fixedpoint

    largest, nearest, differing = _sweeps()
    # ties: a * 2^30 / 2^31 = a / 2 (srdhm doubles), then x / 2 (rounding_divide_by_pot)
    odd = np.array([-5, -3, -1, 1, 3, 5])
    first = fixedpoint.srdhm(odd, 2**30).tolist()
    second = fixedpoint.rounding_divide_by_pot(odd, 1).tolist()
    ties = first == [-2, -1, 0, 1, 2, 3] and second == [-3, -2, -1, 1, 2, 3]
    return measured(largest == 1 and nearest <= 1.0 and differing > 0 and ties,
                    f"largest difference {largest} over 300 x 4001 accumulators; {differing} "
                    f"differ, all within {nearest:.3f} half steps of a tie; -2.5..2.5 -> {first} "
                    f"(first), {second} (second)")


@claim("03", "Zero points cost a few sums, precomputed for weights; symmetric weights make them "
             "vanish.")
def _zero_points():
    from qkit import reference

    rng = np.random.default_rng(0)
    ok = 0
    for _ in range(200):
        k = int(rng.integers(1, 300))
        x = rng.integers(0, 256, (1, k)).astype(np.uint8)
        w = rng.integers(-128, 128, (1, k)).astype(np.int8)
        zx, zw = int(rng.integers(0, 256)), int(rng.integers(-128, 128))
        xi, wi = x.astype(np.int64), w.astype(np.int64)
        direct = int(((xi - zx) * (wi - zw)).sum())
        acc = int(reference.gemm(x, w)[0, 0])
        expanded = acc - zw * int(xi.sum()) - zx * int(wi.sum()) + k * zx * zw
        symmetric = int((((xi - zx) * wi).sum())) == acc - zx * int(wi.sum())
        ok += direct == expanded and symmetric
    return measured(ok == 200, f"the expansion is exact on {ok} of 200 random dot products")


@claim("03", "int32 is safe up to K = 65,793 for u8 x s8; qkit checks the bound from the data and "
             "refuses beyond it.")
def _bound():
    from qkit import kernels
    from qkit.core.checks import AccumulatorOverflowError

    k = (2**31 - 1) // (255 * 128)
    worst = kernels.gemm(np.full((1, k), 255, np.uint8), np.full((1, k), -128, np.int8))
    try:
        kernels.gemm(np.full((1, k + 1), 255, np.uint8), np.full((1, k + 1), -128, np.int8))
        refused = False
    except AccumulatorOverflowError:
        refused = True
    small = kernels.gemm(np.full((1, k + 1), 100, np.uint8), np.full((1, k + 1), -128, np.int8))
    ok = (k == 65_793 and int(worst[0, 0]) == -255 * 128 * k and refused
          and int(small[0, 0]) == -100 * 128 * (k + 1))
    return measured(ok, f"K = {k:,} accepted at the extremes, K + 1 refused: {refused}; "
                        f"K + 1 with activations <= 100 accepted (bound from the data)")


@claim("03", "Fixed-point requantization is integer-only and within 1 of exact rounding; "
             "PyTorch's CPU engine uses float32 instead.")
def _float32():
    from qkit.engine import fbgemm

    largest = _sweeps()[0]
    differ, size = _torch_linear()
    native = differ[fbgemm.default_accumulation()]
    return measured(largest <= 1 and native == 0,
                    f"fixed point within {largest}; qkit's float32 model of fbgemm: {native} of "
                    f"{size} outputs differ from PyTorch")


@claim("03", "\"The same int8 model\" can give different integers on different CPUs: exactness "
             "needs the accumulation model, not just the formula.")
def _cpus():
    differ, size = _torch_linear()
    return measured(differ["pairs16"] > 0 and min(differ.values()) == 0,
                    f"exact int32 vs AVX2's saturating pairs: {differ} of {size} outputs differ "
                    f"from this CPU's PyTorch")


@claim("03", "and so does qkit's converter (qkit.engine.elementwise.lut_table): at run time the "
             "layer is one table read per value, with no float arithmetic at all. Each entry is "
             "the float function rounded onto the output grid, so it is within half an output "
             "step of the function wherever the grid reaches that far (beyond its ends the "
             "table saturates).")
def _tables():
    from qkit import kernels
    from qkit.engine.functions import FUNCTIONS
    from qkit.topics.arithmetic import activation_table

    worst, ends, reads = 0.0, True, True
    rng = np.random.default_rng(0)
    fns = [f for f in FUNCTIONS if f not in ("scalar", "identity")]
    for fn in fns:
        for in_range in ((-8.0, 8.0), (-3.0, 1.0), (-0.5, 6.0)):
            t = activation_table(fn, in_range=in_range)
            worst = max(worst, t["max_error_steps"])
            s, z = t["out_grid"]
            beyond = t["y_float"] > s * (255 - z)
            below = t["y_float"] < s * (0 - z)
            ends &= bool((t["table"][beyond] == 255).all() and (t["table"][below] == 0).all())
            x = rng.integers(0, 256, (2, 5, 5, 3)).astype(np.uint8)
            reads &= bool((kernels.lut(x, t["table"]) == t["table"][x]).all())
    return measured(worst <= 0.5 and ends and reads,
                    f"{len(fns)} functions x 3 input ranges: largest error {worst:.4f} output "
                    f"steps; saturated entries at 0/255: {ends}; the kernel is a table read: "
                    f"{reads}")


@claim("03", "The table also shows what 8 bits cost here: SiLU's 127 negative input codes share "
             "just 10 outputs, because the function barely moves there while the output grid "
             "must also reach +8.")
def _silu_negative():
    from qkit.topics.arithmetic import activation_table

    t = activation_table("silu", in_range=(-8.0, 8.0))
    z = t["in_grid"][1]
    negative = t["table"][:z]
    spread = float(np.ptp(t["y_float"][:z]))
    return measured(z == 127 and np.unique(negative).size == 10 and spread < 0.3
                    and t["y_float"].max() > 7.9,
                    f"{z} negative codes, {np.unique(negative).size} distinct outputs; SiLU moves "
                    f"{spread:.3f} over them and reaches {t['y_float'].max():.2f}")


@cache
def _onnx():
    """The notebook's cell: calibrate on 256 training images, compare on the next 64."""
    from qkit import data
    from qkit.engine import IntegerModel, export
    from qkit.models import mnist_cnn

    x = mnist_cnn.to_input(data.mnist5k()["x_train"][:320]).numpy()
    im = IntegerModel.from_float(mnist_cnn.load(), x[:256], "w8a8-per-channel")
    return export.compare_onnxruntime(im, x[256:]), export.bias_rounding(im, x[256:])


@claim("03", "with_int32_bias() is the qkit model with ONNX's bias, and ONNX Runtime reproduces "
             "it at every layer of the MNIST CNN:")
def _onnx_layers():
    counts = _onnx()[0]
    differ = sum(b for b, _ in counts.values())
    return measured(differ == 0 and {"conv", "linear", "maxpool"} <= set(counts),
                    "values that differ per layer kind: "
                    + ", ".join(f"{k} {b}/{t}" for k, (b, t) in counts.items()))


@claim("03", "Rounding the bias moves a layer's output by at most one step, and rarely (for "
             "fewer than 1 % of the values here): export.bias_rounding runs each layer both "
             "ways on the same input and counts them.")
def _bias_rounding():
    rows = _onnx()[1]
    largest = max(r[0] for r in rows.values())
    share = max(r[1] / r[2] for r in rows.values())
    return measured(largest <= 1 and 0 < share < 0.01,
                    f"largest difference {largest} step; at most {share:.2%} of a layer's values "
                    f"moved")


@claim("03", "Activations on uint8 are 256-entry tables, each entry within half an output step "
             "of the float function.")
def _tables_takeaway():
    return _tables()


@claim("03", "A converted model leaves qkit as a standard ONNX file; ONNX Runtime computes the "
             "same integers once the bias is rounded to int32, as ONNX defines it.")
def _onnx_takeaway():
    import onnx

    from qkit.engine import IntegerModel
    from qkit.lab.claims.shared import mnist

    model, calib, _, _ = mnist()
    onnx.checker.check_model(IntegerModel.from_float(model, calib[:32]).to_onnx())
    return _onnx_layers()
