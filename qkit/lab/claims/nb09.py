"""Claims of notebook 09 (speed, size, energy): the energy estimate, the stored model table and
this machine's GEMV / GEMM / conv measurements."""

from __future__ import annotations

from functools import cache

from qkit.kernels.simd.cpu import vnni_available
from qkit.lab.claims import claim, measured


def _needs_vnni():
    return None if vnni_available() else "needs AVX-512 VNNI (the text names it)"


@cache
def _counts():
    import torch

    from qkit.models import mnist_cnn
    from qkit.models import mobilenet_v2 as mv2
    from qkit.topics import energy

    return {"mobilenet": energy.traced_counts(mv2.load(), torch.zeros(1, 3, 224, 224)),
            "mnist": energy.traced_counts(mnist_cnn.load(), torch.zeros(1, 1, 28, 28)),
            "minilm": energy.transformer_counts(tokens=64)}


def _energy(model, dram_pj=None, on_chip=False):
    from qkit.topics.energy import compare_precisions

    return compare_precisions(_counts()[model], dram_pj, on_chip)


def _ratio(e):
    return e["fp32"]["total_uj"] / e["int8"]["total_uj"]


@cache
def _rows():
    from qkit.studies import results

    return results.load("models")


@cache
def _gemms():
    from qkit.studies import speed

    return speed.memory_vs_compute(rounds=5)


@claim("09", "\"int8 is 4x smaller and faster\" is half true.")
def _half_true():
    rows = _rows()["rows"]
    fp32 = {r["model"]: r for r in rows if r["scheme"] == "fp32"}
    eight = [r for r in rows if r["scheme"] not in ("fp32",) and ("w8" in r["scheme"])]
    smaller = all(0.2 < r["size_bytes"] / fp32[r["model"]]["size_bytes"] < 0.3 for r in eight)
    slower = sorted({f"{r['model']} {r['scheme']}" for r in eight
                     if r["latency_ms"] > fp32[r["model"]]["latency_ms"]})
    return measured(smaller and slower, f"every 8-bit row 20-30% of the fp32 bytes: {smaller}; "
                                        f"8-bit rows slower than fp32: {slower}")


@claim("09", "estimate the energy of one inference in fp32, int8 and int4 from operation and "
             "memory-access counts (Horowitz's 45 nm table), and see which part dominates;")
def _dominates():
    shares = {m: _energy(m)["int8"]["weights_uj"] / _energy(m)["int8"]["total_uj"]
              for m in _counts()}
    return measured(all(v > 0.5 for v in shares.values()),
                    "weights' share of int8 energy: " + ", ".join(f"{m} {v:.0%}"
                                                                 for m, v in shares.items()))


@claim("09", "measure, on this machine, where int8 wins big (compute-bound GEMM with int8 "
             "dot-product instructions), where it wins by moving fewer bytes (batch-1 GEMV) and "
             "where it does not win at all.", slow=True, needs=_needs_vnni)
def _where():
    g = _gemms()
    gemv, gemm = g[(1, 4096, 4096)], g[(256, 1024, 1024)]
    big = gemm["qkit int8"] / gemm["numpy fp32"]
    bytes_ = gemv["qkit int8"] / gemv["numpy fp32"]
    rows = _rows()["rows"]
    fp32 = {r["model"]: r["latency_ms"] for r in rows if r["scheme"] == "fp32"}
    none = sorted({r["scheme"] for r in rows if r["model"] == "mobilenet-v2"
            and r["engine"] == "qkit weight-only" and r["latency_ms"] > 0.7 * fp32["mobilenet-v2"]})
    return measured(big > 3 and bytes_ > 2 and none,
                    f"GEMM int8 {big:.1f}x fp32, GEMV {bytes_:.1f}x; no real win: {none}")


@claim("09", "No CPU here reports its energy, so this is an estimate with its assumptions in the "
             "open (qkit.topics.energy): every multiply-add once (fp32: 3.7 + 0.9 pJ; int8 "
             "multiply + int32 add: 0.2 + 0.1 pJ; int4 costed as int8, an upper bound), every "
             "weight byte read once from DRAM (1.3-2.6 nJ per 64 bits), every activation byte "
             "once from an 8 KB SRAM (10 pJ per 64 bits).")
def _constants():
    from qkit.topics.energy import PJ, estimate

    same = estimate(1000, 0, 0, "int4") == estimate(1000, 0, 0, "int8")
    ok = (PJ["fp32_mul"], PJ["fp32_add"], PJ["int8_mul"], PJ["int32_add"], PJ["sram_64bit"]) == (
        3.7, 0.9, 0.2, 0.1, 10.0) and 1300 <= PJ["dram_64bit"] <= 2600 and same
    return measured(ok, f"{PJ}; int4 arithmetic costed as int8: {same}")


@claim("09", "Move the DRAM cost across its published range: does the fp32/int8 ratio change much?")
def _dram():
    r = {m: (_ratio(_energy(m, 1300)), _ratio(_energy(m, 2600))) for m in _counts()}
    return measured(all(abs(a / b - 1) < 0.2 for a, b in r.values()),
                    "fp32/int8 at 1.3 and 2.6 nJ: " + ", ".join(f"{m} {a:.2f}/{b:.2f}"
                                                               for m, (a, b) in r.items()))


@claim("09", "Tick weights stay on chip: the MNIST CNN (91 k weights) could live in SRAM. What "
             "dominates then, and what is the fp32/int8 ratio now?")
def _on_chip():
    n = _counts()["mnist"]["weights"]
    off, on = _energy("mnist"), _energy("mnist", on_chip=True)
    share = on["int8"]["weights_uj"] / on["int8"]["total_uj"]
    return measured(90_000 < n < 92_000 and share < 0.1 and _ratio(on) > 2 * _ratio(off),
                    f"{n:,} weights; on chip the weights are {share:.0%} of int8's energy, "
                    f"fp32/int8 {_ratio(off):.1f}x -> {_ratio(on):.1f}x")


@claim("09", "Compare MobileNetV2 (many MACs per weight) with MiniLM at 64 tokens.")
def _macs_per_weight():
    c = _counts()
    mv, lm = (c[m]["macs"] / c[m]["weights"] for m in ("mobilenet", "minilm"))
    return measured(mv > lm > 1, f"MACs per weight: MobileNetV2 {mv:.0f}, MiniLM {lm:.0f}")


@claim("09", "A batch-1 GEMV uses each weight once: about 2 operations per weight byte, so the "
             "memory bus sets the speed and int8's 4x fewer bytes (int4's 8x) are what pay.",
       slow=True, needs=_needs_vnni)
def _gemv():
    from qkit.studies.speed import arithmetic_intensity

    g = _gemms()[(1, 4096, 4096)]
    ok = (1.9 < arithmetic_intensity(1, 4096, 4096, 1, 1) < 2.1
          and g["qkit int8"] > 2 * g["numpy fp32"] and g["qkit int4"] > 2 * g["numpy fp32"])
    return measured(ok, f"GEMV 4096: fp32 {g['numpy fp32']:.0f}, int8 {g['qkit int8']:.0f}, int4 "
                        f"{g['qkit int4']:.0f} GOP/s")


@claim("09", "A large GEMM reuses each weight hundreds of times: arithmetic sets the speed, and "
             "how much int8 wins depends on the instructions: several-fold with int8 dot products "
             "(here AVX-512 VNNI vpdpbusd), far less on the AVX2 path (qkit int8 avx2).",
       slow=True, needs=_needs_vnni)
def _gemm():
    g = _gemms()[(256, 1024, 1024)]
    vnni, avx2 = g["qkit int8"] / g["numpy fp32"], g["qkit int8 avx2"] / g["numpy fp32"]
    return measured(vnni > 3 and avx2 < vnni / 2,
                    f"256 x 1024 x 1024 (each weight used 256 times): VNNI {vnni:.1f}x fp32, AVX2 "
                    f"{avx2:.1f}x")


@claim("09", "It keeps up with PyTorch's int8 engine there, but at under a fifth of the int8 peak "
             "(the \"mbv2 dw\" rows of python -m qkit bench), against several times that share for "
             "the MNIST CNN's regular 16- and 32-channel convolutions.",
       slow=True, needs=_needs_vnni)
def _depthwise():
    import torch

    from qkit.studies import bench
    from qkit.studies.timing import int8_peak_gops, measure

    peak = int8_peak_gops()[0]
    out = {}
    for layer in bench.CONV_LAYERS:
        if layer[0].startswith(("mbv2 dw", "cnn conv2", "cnn conv3")):
            impls, ops = bench.conv_impls(layer)
            with torch.no_grad():  # the best of three medians: noise only ever slows a run
                runs = [measure({k: impls[k] for k in ("qkit int8 (fused)", "torch int8 fbgemm")},
                                5, threads=1) for _ in range(3)]
            t = {k: min(r[k] for r in runs) for k in runs[0]}
            out[layer[0]] = (ops / t["qkit int8 (fused)"] / 1e9 / peak,
                             t["torch int8 fbgemm"] / t["qkit int8 (fused)"])
    dw = out["mbv2 dw 3x3 96"]
    regular = [v[0] for k, v in out.items() if k.startswith("cnn")]
    return measured(dw[0] < 0.2 and dw[1] > 0.9 and min(regular) > 3 * dw[0],
                    ", ".join(f"{k}: {f:.0%} of one core's peak, {r:.2f}x PyTorch int8"
                              for k, (f, r) in out.items()))


@claim("09", "Energy follows bytes: one DRAM read costs as much as thousands of int8 "
             "multiply-adds. Smaller weights save energy even where they save no time.")
def _bytes():
    from qkit.topics.energy import PJ

    macs = PJ["dram_64bit"] / (PJ["int8_mul"] + PJ["int32_add"])
    less = all(_energy(m)["int4"]["total_uj"] < _energy(m)["int8"]["total_uj"] for m in _counts())
    return measured(1000 < macs < 10_000 and less,
                    f"one DRAM read = {macs:,.0f} int8 MACs; int4 below int8 for every model: "
                    f"{less}")


@claim("09", "Speed follows the bottleneck: bytes for GEMV-like layers, instructions for "
             "GEMM-like layers.", slow=True, needs=_needs_vnni)
def _bottleneck():
    g = _gemms()
    gemv, gemm = g[(1, 4096, 4096)], g[(256, 1024, 1024)]
    return measured(gemv["qkit int8"] > 2 * gemv["numpy fp32"]
                    and gemm["qkit int8"] > 2 * gemm["qkit int8 avx2"],
                    f"GEMV int8/fp32 {gemv['qkit int8'] / gemv['numpy fp32']:.1f}x (bytes); GEMM "
                    f"VNNI/AVX2 {gemm['qkit int8'] / gemm['qkit int8 avx2']:.1f}x (instructions)")


@claim("09", "Measure on the machine you deploy to: every ratio above is this machine's (the "
             "table names its CPU); a CPU without VNNI, or with a different memory system, gives "
             "different ones.", slow=True, needs=_needs_vnni)
def _machine():
    g = _gemms()[(256, 1024, 1024)]
    cpu = _rows().get("cpu", "")
    return measured(bool(cpu) and g["qkit int8"] / g["qkit int8 avx2"] > 2,
                    f"table measured on {cpu!r}; this CPU's int8 GEMM without VNNI: "
                    f"{g['qkit int8 avx2'] / g['qkit int8']:.0%} of the VNNI speed")
