"""Explorers of notebook 12 (a language model in 4 bits): one block of the shipped GGUF file
byte by byte, the RTN bits x group size sweep, the activation channels of every linear, and a
prompt continued by the reference and by a quantized model side by side."""

from __future__ import annotations

import html
from collections import OrderedDict

import ipywidgets as W
import numpy as np

from qkit.lab.explorer import Explorer, figure
from qkit.lab.plots import language as P

LINEAR_MENU = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
# the quantized models of the prompt box: name -> how to make it from the reference
VARIANTS = ("rtn int8 per channel sym", "rtn int4 g128 asym", "rtn int4 per channel asym",
            "rtn int3 g128 asym", "rtn int2 g64 asym", "the file's q4_1 on int4 x int8 kernels",
            "gguf q4_0 on int4 x int8 kernels")


def gguf_block_explorer(layer: int = 2) -> Explorer:
    """One 32-weight block of the shipped file: pick the tensor, the row and the block; see
    its bytes, its float16 scale and minimum, its codes and the weights they make."""
    from qkit.models import smollm2
    from qkit.topics.language import file_block

    controls = {
        "layer": W.IntSlider(value=layer, min=0, max=smollm2.LAYERS - 1, description="layer",
                             continuous_update=False),
        "name": W.Dropdown(options=list(LINEAR_MENU) + ["token_embd"], value="attn_q",
                           description="tensor"),
        # every tensor has at least 192 rows of 18 blocks (attn_k / attn_v: 192 x 576)
        "row": W.IntSlider(value=0, min=0, max=191, description="row", continuous_update=False),
        "block": W.IntSlider(value=0, min=0, max=17, description="block",
                             continuous_update=False),
    }

    def draw(layer, name, row, block):
        tensor = name if name == "token_embd" else f"blk.{layer}.{name}"
        view = file_block(f"{tensor}.weight", row, block)
        fig, (a0, a1) = figure(2, 1, (10, 4.6), height_ratios=[1, 3])
        P.block_bytes(view, a0)
        P.block_values(view, a1)
        fig.tight_layout()
        q, w0 = int(view["codes"][0]), float(view["values"][0])
        if view["m"] is not None:
            first = (f"weight 0 = d &middot; {q} + m = {view['d']:.6g} &middot; {q} + "
                     f"({view['m']:.6g}) = {w0:.6g}")
        else:
            first = f"weight 0 = d &middot; {q} = {view['d']:.6g} &middot; {q} = {w0:.6g}"
        return fig, {"tensor": view["tensor"], "fmt": view["fmt"], "row": view["row"],
                     "block": view["block"], "d": view["d"], "first": first,
                     "where": view["where"][0], "bpw": view["bits_per_weight"]}

    caption = ("{tensor} row {row}, block {block} ({fmt}, {bpw:.1f} bits per weight): "
               "d = <b>{d:.6g}</b>; code 0 sits in {where}; <b>{first}</b>")
    return Explorer(controls, draw, caption)


def rtn_sweep_explorer(sweep: dict) -> Explorer:
    """The stored RTN sweep (`qkit.studies.llm.precompute_rtn_sweep`): pick bits, group size
    and symmetry, read perplexity, KL and the stored bits per weight."""
    rows = [r for r in sweep["rows"] if r["name"] != "reference"]
    ref = next(r for r in sweep["rows"] if r["name"] == "reference")
    groups = [("per channel", 0)] + [(f"g{g}", g) for g in sorted(g for g in sweep["groups"] if g)]
    controls = {
        "bits": W.SelectionSlider(options=sweep["bits"], value=4, description="bits",
                                  continuous_update=False),
        "group": W.Dropdown(options=groups, value=128, description="group size"),
        "symmetric": W.Checkbox(value=False, description="symmetric", indent=False),
    }

    def draw(bits, group, symmetric):
        sel = next(r for r in rows if r["bits"] == bits and (r["group_size"] or 0) == group
                   and r["symmetric"] == symmetric)
        fig, axes = figure(1, 2, (12, 3.8))
        P.sweep(rows, sel, axes)
        axes[0].axhline(ref["perplexity"], color="k", lw=0.8, ls="--")
        axes[0].set_title(f"{sel['name']}: perplexity {sel['perplexity']:.2f} "
                          f"(reference {ref['perplexity']:.2f})", fontsize=10)
        axes[1].set_title(f"KL {sel['kl']:.4f} nats per token", fontsize=10)
        fig.tight_layout()
        return fig, {**sel, "ref": ref["perplexity"], "mb": sel["bytes"] / 1e6,
                     "protocol": sweep["protocol"]}

    caption = ("<b>{name}</b>: perplexity <b>{perplexity:.2f}</b> (reference {ref:.2f}), KL "
               "<b>{kl:.4f}</b>, {bits_per_weight:.3f} bits per weight, {mb:.1f} MB of block "
               "linears &nbsp; <i>({protocol})</i>")
    return Explorer(controls, draw, caption)


def channel_explorer(means: dict, fraction: float = 0.01) -> Explorer:
    """``mean |x|`` of the input channels of each linear (``means``: "blk.i.name" -> array, as
    `qkit.models.smollm2_quant.activation_means` returns), the top ``fraction`` marked."""
    layers = sorted({int(k.split(".")[1]) for k in means})
    names = [n for n in LINEAR_MENU if f"blk.{layers[0]}.{n}" in means]
    controls = {
        "layer": W.IntSlider(value=layers[min(1, len(layers) - 1)], min=layers[0],
                             max=layers[-1], description="layer", continuous_update=False),
        "name": W.Dropdown(options=names, value=names[0], description="input of"),
    }

    def draw(layer, name):
        m = np.asarray(means[f"blk.{layer}.{name}"], np.float64)
        k = max(1, int(round(fraction * m.size)))
        top = np.argsort(-m)[:k]
        ratio = float(m[top].mean() / np.median(m))
        fig, ax = figure(1, 1, (10, 3.2))
        P.channel_means(m, top, ax, f"blk.{layer}.{name}: the top {k} of {m.size} channels "
                                    f"average {ratio:.1f}x the median")
        fig.tight_layout()
        return fig, {"name": f"blk.{layer}.{name}", "k": k, "n": m.size, "ratio": ratio,
                     "channels": ", ".join(str(int(c)) for c in sorted(top)[:8])}

    caption = ("input of {name}: the top {k} of {n} channels (#{channels}) average <b>{ratio:.1f}x"
               "</b> the median channel's mean |x|")
    return Explorer(controls, draw, caption)


class _Variants:
    """Quantized models made on demand from the reference, the last one kept (they share the
    reference's embedding and norms; their linears hold codes or GGUF bytes: 60-110 MB)."""

    def __init__(self, reference, keep: int = 1):
        self.reference, self.keep, self.cache = reference, keep, OrderedDict()

    def __call__(self, name: str):
        if name not in self.cache:
            self.cache[name] = make_variant(self.reference, name)
            while len(self.cache) > self.keep:
                self.cache.popitem(last=False)
        self.cache.move_to_end(name)
        return self.cache[name]


def make_variant(reference, name: str):
    """The quantized model a `VARIANTS` name describes: RTN as codes
    (`qkit.models.smollm2_quant.rtn_as_codes`), or GGUF Q4 bytes on qkit's block kernels
    (`qkit.models.smollm2_int`: activations rounded to Q8_0 blocks, as llama.cpp does)."""
    from qkit.engine.rtn import WeightScheme
    from qkit.models import smollm2_int, smollm2_quant

    parts = name.split()
    if name not in VARIANTS:
        raise ValueError(f"name must be one of {VARIANTS}, got {name!r}")
    if parts[0] == "the":
        model = smollm2_int.from_file(reference)
    elif parts[0] == "gguf":
        model = smollm2_int.requantized(reference, parts[1])
    else:
        group = None if parts[2] == "per" else int(parts[2][1:])
        scheme = WeightScheme(int(parts[1][3:]), group, parts[-1] == "sym")
        model = smollm2_quant.rtn_as_codes(reference, scheme)  # 110 MB, not 430
    return model


def generation_explorer(reference, prompt: str = "The capital of France is",
                        variant: str = "rtn int3 g128 asym") -> Explorer:
    """A prompt box: the reference and a quantized model continue it (greedy, or sampled with
    the same seed); the figure shows how likely the reference finds each token of the
    quantized model's text."""
    from qkit.topics.language import compare_continuations

    variants = _Variants(reference)
    controls = {
        "tokens": W.IntSlider(value=20, min=4, max=48, step=4, description="new tokens",
                              continuous_update=False),
        "prompt": W.Text(value=prompt, description="prompt", continuous_update=False,
                         layout=W.Layout(width="420px")),
        "variant": W.Dropdown(options=list(VARIANTS), value=variant, description="model"),
        "temperature": W.SelectionSlider(options=[0.0, 0.5, 0.8, 1.0], value=0.0,
                                         description="temperature", continuous_update=False),
        "seed": W.IntSlider(value=0, min=0, max=9, description="seed", continuous_update=False),
    }

    def draw(tokens, prompt, variant, temperature, seed):
        fig, ax = figure(1, 1, (11, 3.0))
        if not prompt.strip():
            ax.set_title("the prompt is empty: type a few words")
            ax.set_axis_off()
            return fig, {"table": "<i>type a prompt</i>", "variant": variant, "how": "",
                         "agree": 0, "n": 0}
        r = compare_continuations(reference, variants(variant), prompt, tokens, temperature,
                                  seed)
        how = ("greedy (the seed matters only when sampling)" if temperature == 0
               else f"sampled at T={temperature}, seed {seed}")
        P.token_probabilities(r["pieces"], r["p_reference"], r["agrees"], ax,
                              f"{variant}, {how.split(' (')[0]}: the reference's probability "
                              "of each token it wrote; red where the reference would have "
                              "written another")
        fig.tight_layout()

        def cell(text):
            return f"<td style='vertical-align:top;width:50%'>{html.escape(text)}</td>"

        table = ("<table style='width:100%'><tr><th>reference</th><th>" + html.escape(variant)
                 + "</th></tr><tr>" + cell(prompt + r["reference"]) + cell(prompt + r["model"])
                 + "</tr></table>")
        return fig, {"table": table, "variant": variant, "how": how,
                     "agree": int(r["agrees"].sum()), "n": r["tokens"],
                     "prefix": r["same_prefix"]}

    caption = ("{table}{variant}, {how}: the reference agrees with <b>{agree} of its {n}</b> "
               "tokens")
    return Explorer(controls, draw, caption)
