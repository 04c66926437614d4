"""Explorers of notebooks 04-10: GEMM speed, PTQ of a real CNN, non-uniform grids, QAT,
mixed precision, energy, SmoothQuant."""

from __future__ import annotations

import ipywidgets as W

from qkit.lab import plots
from qkit.lab.explorer import Explorer, figure, slider


def speed_explorer(peak_gops: float | None = None) -> Explorer:
    """Choose a GEMM shape; measure every version's GOP/s (timings vary from run to run).

    Every version runs on all cores and on one, and keeps the faster (small problems lose more
    to waking a thread than the second core gives back); a bar says when one thread won. A
    figure above the cores' measured peak is not drawn but named in the caption."""
    from qkit.studies import speed
    from qkit.studies.timing import implausible, threads_now

    controls = {
        "m": W.SelectionSlider(options=[1, 4, 16, 64, 256, 1024], value=256, description="M"),
        "k": W.SelectionSlider(options=[128, 256, 512, 1024, 2048], value=512, description="K"),
        "n": W.SelectionSlider(options=[128, 256, 512, 1024, 2048], value=512, description="N"),
    }
    for c in controls.values():
        c.continuous_update = False
    threads = threads_now()

    def draw(m, k, n):
        timed = speed.gops_and_threads(m, k, n, threads=threads)
        gops = {name: g for name, (g, _) in timed.items()}
        refused = implausible(gops, peak_gops, threads) if peak_gops else {}
        shown = {name: v for name, v in timed.items() if name not in refused}
        fig, ax = figure(size=(9, 3.2))
        plots.speed_bars(shown, (m, k, n), threads, peak_gops, ax)
        best = max(shown, key=lambda name: shown[name][0]) if shown else "none"
        note = ("; not drawn (implausible): " + ", ".join(f"{k_}: {v}" for k_, v in
                                                         refused.items())) if refused else ""
        return fig, {"gops": gops, "threads": {name: t for name, (_, t) in timed.items()},
                     "best": best, "refused": refused, "note": note,
                     "intensity": speed.arithmetic_intensity(m, k, n, 1, 1)}

    return Explorer(controls, draw, "fastest: <b>{best}</b> &nbsp; int8 arithmetic intensity "
                                    "{intensity:.1f} ops/byte{note}")


def ptq_explorer(model, calibration, x_test, y_test, sqnr_images: int = 256) -> Explorer:
    """PTQ of a real CNN on qkit's integer engine: weight bits, observer, granularity and bias
    correction; the SQNR of every layer's output against the float model, and the accuracy."""
    from qkit.engine import Scheme
    from qkit.topics.compare import ptq_report

    controls = {
        "bits": slider(2, 8, 4, "weight bits"),
        "observer": W.Dropdown(options=["minmax", "percentile", "mse", "entropy"],
                               description="observer"),
        "per_channel": W.Checkbox(value=True, description="per-channel weights"),
        "bias_correction": W.Checkbox(value=False, description="bias correction"),
    }

    def draw(bits, observer, per_channel, bias_correction):
        scheme = Scheme(weight_bits=bits, per_channel=per_channel, observer=observer,
                        bias_correction=bias_correction)
        r = ptq_report(model, calibration, x_test, y_test, scheme, sqnr_images)
        fig, ax = figure(size=(10, 3.0))
        plots.layer_sqnr_bars(r["layers"], f"{r['label']}, {observer} activations: error "
                              "accumulates layer by layer", ax)
        return fig, {k: r[k] for k in ("accuracy", "layers", "last_db", "bytes")}

    return Explorer(controls, draw, "accuracy <b>{accuracy:.1%}</b> &nbsp; output SQNR "
                                    "<b>{last_db:.1f} dB</b> &nbsp; {bytes:,} bytes")


def grid_explorer(weights: dict) -> Explorer:
    """One real weight tensor through the uniform, k-means, log and NF grids at b bits: where
    each grid puts its levels, and the SQNR each gets."""
    from qkit.formats import nonuniform

    controls = {
        "bits": slider(2, 6, 3, "bits"),
        "layer": W.Dropdown(options=list(weights), description="weights"),
        "block": W.Dropdown(options=[("per row", 0), ("blocks of 64", 64)], value=0,
                            description="scales"),
    }

    def draw(bits, layer, block):
        grids = nonuniform.compare_grids(weights[layer], bits, block or None)
        numbers = {g: r["sqnr_db"] for g, (r, _) in grids.items()}
        numbers.update({f"{g}_bpw": r["bits_per_weight"] for g, (r, _) in grids.items()})
        fig, axes = figure(1, len(grids), (12, 2.8), sharey=True)
        plots.grid_levels(weights[layer], {g: w_hat for g, (_, w_hat) in grids.items()}, numbers,
                          f"{layer}: weights (grey) and where each {bits}-bit grid puts them "
                          "(red)", axes)
        numbers["best"] = max(nonuniform.GRIDS, key=lambda g: numbers[g])
        return fig, numbers

    caption = ("SQNR: uniform <b>{uniform:.1f}</b>, k-means <b>{kmeans:.1f}</b>, log "
               "<b>{log:.1f}</b>, NF <b>{nf:.1f}</b> dB &nbsp; best: <b>{best}</b> &nbsp; "
               "bits/weight with scales: {uniform_bpw:.2f} (k-means {kmeans_bpw:.2f})")
    return Explorer(controls, draw, caption)


def qat_explorer(result: dict) -> Explorer:
    """The precomputed PTQ-vs-QAT study (`qkit.studies.qat`): training curve at each bit width
    and the step sizes LSQ learned against PTQ's absmax steps."""
    rows = {r["bits"]: r for r in result["rows"]}
    layers = list(next(iter(rows.values()))["weight_steps"])
    controls = {
        "bits": W.SelectionSlider(options=sorted(rows), value=4 if 4 in rows else max(rows),
                                  description="weight bits", continuous_update=False),
        "layer": W.Dropdown(options=layers, description="layer"),
    }

    def draw(bits, layer):
        r = rows[bits]
        fig, ax = figure(1, 2, (11, 3.0))
        numbers = plots.qat_curves(r, result["fp32"], layer, ax)
        return fig, dict(numbers, bits=bits, ptq=r["ptq_integer"], qat=r["qat_integer"])

    caption = ("W{bits}A8 on the integer engine: PTQ <b>{ptq:.1%}</b> &nbsp; QAT <b>{qat:.1%}"
               "</b> &nbsp; median learned / PTQ step: {ratio:.2f} (below 1 = LSQ clips)")
    return Explorer(controls, draw, caption)


def budget_explorer(study: dict, model, calibration, x_test, y_test) -> Explorer:
    """A size budget re-allocates bits per layer (greedy, from measured sensitivities); the
    allocation is then measured on the integer engine and drawn against the Pareto front."""
    from qkit.topics import mixed

    sens = study["sensitivity"]
    front = mixed.pareto_front(study["points"])
    controls = {"budget": W.FloatSlider(value=11.0, min=6.5, max=30.0, step=0.5,
                                        description="budget %", continuous_update=False,
                                        readout_format=".1f")}

    def draw(budget):
        bits = mixed.allocate(sens, budget / 100 * study["fp32_bytes"])
        p = mixed.evaluate_allocation(model, calibration, x_test, y_test, bits, rounds=1)
        fig, ax = figure(1, 2, (11, 3.0))
        plots.allocation(sens["layers"], bits, study["points"], front, p, ax)
        return fig, dict(p, predicted=mixed.predicted_sqnr(sens, bits),
                         fraction=p["bytes"] / study["fp32_bytes"])

    caption = ("<b>{bytes:,}</b> bytes ({fraction:.1%} of fp32) &nbsp; accuracy <b>{accuracy:.1%}"
               "</b> &nbsp; predicted output SQNR {predicted:.1f} dB &nbsp; {latency_ms:.1f} ms "
               "per 256 images")
    return Explorer(controls, draw, caption)


def energy_explorer(counts: dict) -> Explorer:
    """Estimated energy per inference (Horowitz 45 nm) of fp32 / int8 / int4 for each model,
    split into arithmetic, weight traffic and activation traffic."""
    from qkit.topics.energy import compare_precisions

    controls = {
        "dram_pj": W.FloatSlider(value=1950.0, min=1300.0, max=2600.0, step=50.0,
                                 description="DRAM pJ/64b", continuous_update=False),
        "model": W.Dropdown(options=list(counts), description="model"),
        "on_chip": W.Checkbox(value=False, description="weights stay on chip (SRAM)"),
    }

    def draw(dram_pj, model, on_chip):
        e = compare_precisions(counts[model], dram_pj, on_chip)
        fig, ax = figure(size=(9, 2.8))
        plots.energy_bars(e, model, ax)
        return fig, {"fp32": e["fp32"]["total_uj"], "int8": e["int8"]["total_uj"],
                     "int4": e["int4"]["total_uj"],
                     "ratio": e["fp32"]["total_uj"] / e["int8"]["total_uj"],
                     "weights_share": e["int8"]["weights_uj"] / e["int8"]["total_uj"],
                     "note": " &nbsp; (weights on chip: the DRAM cost has no effect)"
                     if on_chip else ""}

    caption = ("fp32 <b>{fp32:,.1f}</b> uJ, int8 <b>{int8:,.1f}</b>, int4 <b>{int4:,.1f}</b> "
               "&nbsp; fp32/int8 = {ratio:.1f}x &nbsp; weights are {weights_share:.0%} of int8"
               "{note}")
    return Explorer(controls, draw, caption)


def smoothquant_explorer(model, stats: dict, texts: list[str], max_len: int = 64) -> Explorer:
    """SmoothQuant's alpha and the activation bit width on MiniLM: per-channel ranges of one
    layer's input and weight before/after smoothing, and embedding cosine to fp32."""
    from qkit.topics.smoothquant import SmoothingStudy

    study = SmoothingStudy(model, stats, texts, max_len)
    controls = {
        "alpha": W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="alpha",
                               continuous_update=False),
        "a_bits": slider(4, 8, 6, "act. bits"),
        "layer": W.Dropdown(options=list(stats), value="1.ffn_in", description="layer"),
    }

    def draw(alpha, a_bits, layer):
        r = study.at(alpha, a_bits, layer)
        fig, ax = figure(1, 2, (11, 3.0), sharex=True)
        plots.channel_smoothing(stats[layer], r["w"], r["s"], layer, ax, a_bits=a_bits)
        return fig, dict({k: r[k] for k in ("plain", "smoothed", "a_bits", "before", "after")},
                         layer=layer)

    caption = ("whole model, W8A{a_bits} embedding cosine to fp32: plain <b>{plain:.4f}</b>, "
               "smoothed <b>{smoothed:.4f}</b> &nbsp; {layer}'s input, max/median channel range: "
               "{before:.1f} -> {after:.1f} (the layer menu changes this and the panels only)")
    return Explorer(controls, draw, caption)
