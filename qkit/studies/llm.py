"""SmolLM2 in low bits: perplexity and KL of RTN, GPTQ and AWQ, and of llama.cpp's block
formats applied to the reference weights, on one stated protocol (`qkit.topics.language`).

``python -m qkit precompute llm`` writes ``data/results/llm.json``; about 25 minutes on two
cores (each GPTQ / AWQ run is a pass over 32 x 512 calibration tokens, each perplexity 16
windows of 512).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from qkit.engine.rtn import WeightScheme
from qkit.formats import ggml, kquants
from qkit.models import smollm2, smollm2_quant
from qkit.topics import language

SCHEMES = (WeightScheme(4, 128), WeightScheme(3, 128))
GGUF_FORMATS = ("q8_0", "q5_1", "q4_1", "q4_0", "q4_k", "q6_k")


@torch.inference_mode()
def gguf_model(model, fmt: str):
    """A copy of ``model`` whose linears are re-quantized to a GGUF block format by qkit."""

    module = ggml if fmt in ggml.FORMATS else kquants
    out = smollm2.copy_sharing_embedding(model)
    for block in out.blocks:
        for name in smollm2.LINEARS:
            w = getattr(block, name).weight
            pad = -w.shape[1] % (32 if module is ggml else kquants.SUPER)
            if pad:  # K-quants need 256 inputs per super-block: 576 = 2 x 256 + 64 (padded)
                raw = module.quantize(np.pad(w.numpy(), ((0, 0), (0, pad))), fmt)
                w.copy_(torch.from_numpy(module.dequantize(raw, fmt)[:, :w.shape[1]]))
            else:
                w.copy_(torch.from_numpy(module.dequantize(module.quantize(w.numpy(), fmt), fmt)))
    return out


# weights of the 210 block linears: q and o (576 x 576), k and v (192 x 576), gate, up, down
LINEAR_WEIGHTS = smollm2.LAYERS * (2 * smollm2.WIDTH ** 2 + 2 * smollm2.KV_HEADS * smollm2.HEAD
                                   * smollm2.WIDTH + 3 * smollm2.FFN * smollm2.WIDTH)


def method_table(result: dict) -> str:
    """The stored RTN / GPTQ / AWQ / GGUF table (`precompute`) as text: MB of the block
    linears (codes and scales; GGUF formats at their bits per weight), perplexity, KL."""
    lines = [f"{result['protocol']} | {result['calibration']}",
             f"{'model':<22}{'MB':>7}{'bits/w':>8}{'perplexity':>12}{'KL':>9}"]
    for r in result["rows"]:
        fmt = r["name"].split()[-1]
        if r.get("bytes"):
            nbytes = r["bytes"]
        elif r["name"].startswith("gguf"):
            module = ggml if fmt in ggml.FORMATS else kquants
            nbytes = LINEAR_WEIGHTS * module.bits_per_weight(fmt) / 8
        else:  # the reference: float32
            nbytes = 4 * LINEAR_WEIGHTS
        lines.append(f"{r['name']:<22}{nbytes / 1e6:7.1f}{8 * nbytes / LINEAR_WEIGHTS:8.2f}"
                     f"{r['perplexity']:12.2f}{r['kl']:9.4f}")
    return "\n".join(lines)


def file_q4_1_agreement(model) -> dict:
    """Re-quantizing the reference's linears to Q4_1: how many of the file's bytes come back."""
    raw = smollm2.raw_tensors()
    same = total = 0
    for i, block in enumerate(model.blocks):
        for name in smollm2.LINEARS:
            ours = ggml.quantize(getattr(block, name).weight.numpy(), "q4_1")
            theirs = raw[f"blk.{i}.{name}.weight"][1]
            same += int((ours == theirs).sum())
            total += ours.size
    return {"bytes": total, "identical": same}


def precompute(progress: bool = True, windows: int = 32) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    reference = smollm2.load()
    protocol = language.Protocol()
    variants, rows = {"reference": (reference, None)}, []
    for scheme in SCHEMES:
        for method in smollm2_quant.METHODS:
            start = time.perf_counter()
            m, w = smollm2_quant.quantize(reference, method, scheme, windows=windows,
                                          progress=progress)
            variants[f"{method} {scheme.describe()}"] = (m, {
                "method": method, "bits": scheme.bits, "group_size": scheme.group_size,
                "symmetric": scheme.symmetric, "bytes": smollm2_quant.weight_bytes(w),
                "quantize_s": round(time.perf_counter() - start, 1)})
    for fmt in GGUF_FORMATS:
        variants[f"gguf {fmt}"] = (gguf_model(reference, fmt), {"method": "gguf " + fmt})
    scores = language.evaluate({k: v[0] for k, v in variants.items()}, protocol,
                               reference="reference", progress=progress)
    for name, (_, info) in variants.items():
        rows.append({"name": name, **(info or {"method": "reference"}), **scores[name]})
    return {"rows": rows, "protocol": protocol.describe(),
            "calibration": f"{windows} x 512 tokens of the Wikipedia calibration split",
            "q4_1_file_agreement": file_q4_1_agreement(reference)}


def precompute_salient(progress: bool = True, fraction: float = 0.01) -> dict:
    """AWQ's motivating experiment: int3 g128 RTN with 1 % of every linear's input channels
    kept in float, the most active ones vs a random 1 %, and RTN alone."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    reference = smollm2.load()
    scheme = WeightScheme(3, 128)
    means = smollm2_quant.activation_means(reference)
    variants = {"reference": reference,
                "rtn": smollm2_quant.keep_float_channels(reference, scheme, means, 0.0)}
    for rule in ("salient", "random"):
        variants[f"rtn, {rule} 1% float"] = smollm2_quant.keep_float_channels(
            reference, scheme, means, fraction, rule)
    scores = language.evaluate(variants, language.Protocol(), reference="reference",
                               progress=progress)
    return {"rows": [{"name": k, **v} for k, v in scores.items()], "scheme": scheme.describe(),
            "fraction": fraction, "protocol": language.Protocol().describe(),
            "activation_statistics": "mean |x| per input channel, 4 x 512 calibration tokens"}


SWEEP_BITS = (2, 3, 4, 6, 8)
SWEEP_GROUPS = (32, 64, 128, None)


def precompute_rtn_sweep(progress: bool = True, batch: int = 10) -> dict:
    """RTN at every bits x group size x (a)symmetry of `SWEEP_BITS` x `SWEEP_GROUPS`: perplexity,
    KL to the reference and stored bits per weight of the block linears. Models are scored
    ``batch`` at a time next to the reference (memory: one float copy each)."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    reference = smollm2.load()
    protocol = language.Protocol()
    schemes = [WeightScheme(b, g, s) for b in SWEEP_BITS for g in SWEEP_GROUPS
               for s in (False, True)]
    rows = []
    for start in range(0, len(schemes), batch):
        part = schemes[start:start + batch]
        variants = {"reference": reference}
        info = {}
        for scheme in part:
            m, w = smollm2_quant.quantize(reference, "rtn", scheme)
            variants[scheme.describe()] = m
            info[scheme.describe()] = {"bits": scheme.bits, "group_size": scheme.group_size,
                                       "symmetric": scheme.symmetric,
                                       "bytes": smollm2_quant.weight_bytes(w),
                                       "bits_per_weight": 8 * smollm2_quant.weight_bytes(w)
                                       / sum(q.codes.size for q in w.values())}
        if progress:
            print(f"schemes {start + 1}-{start + len(part)} of {len(schemes)}", flush=True)
        scores = language.evaluate(variants, protocol, reference="reference", progress=progress)
        rows += [{"name": k, **v, **scores[k]} for k, v in info.items()]
        if start == 0:
            rows.insert(0, {"name": "reference", **scores["reference"]})
        del variants
    return {"rows": rows, "protocol": protocol.describe(), "bits": list(SWEEP_BITS),
            "groups": [g or 0 for g in SWEEP_GROUPS]}


def kv_schemes():
    from qkit.models.smollm2_kv import KVScheme

    return {"K8 V8": KVScheme(8, 8), "K4 V4": KVScheme(4, 4), "K2 V2": KVScheme(2, 2),
            "K4 V2": KVScheme(4, 2), "K2 V4": KVScheme(2, 4),
            "K2 V2, no float tokens": KVScheme(2, 2, residual=0),
            "K2 V2, 128 float tokens": KVScheme(2, 2, residual=128),
            "K4 V4, keys per token": KVScheme(4, 4, keys="token"),
            "K2 V2, keys per token": KVScheme(2, 2, keys="token")}


def precompute_kv(progress: bool = True) -> dict:
    """The KV cache quantized as KIVI does (`qkit.models.smollm2_kv`), the weights left as
    the reference's: perplexity, KL and the cache's bytes per token for each setting."""
    from qkit.models.smollm2_kv import QuantizedKVCache

    torch.manual_seed(0)
    torch.set_num_threads(2)
    reference = smollm2.load()
    schemes = kv_schemes()

    def with_cache(scheme):
        return lambda ids: reference(ids, QuantizedKVCache(scheme))

    models = {"float32 cache": reference, **{k: with_cache(s) for k, s in schemes.items()}}
    scores = language.evaluate(models, language.Protocol(), reference="float32 cache",
                               progress=progress)
    rows = [{"name": "float32 cache", **scores["float32 cache"],
             "bytes_per_token": smollm2.KVCache().bytes_per_token()}]
    for k, s in schemes.items():
        rows.append({"name": k, **scores[k], "key_bits": s.key_bits, "value_bits": s.value_bits,
                     "group": s.group, "residual": s.residual, "keys": s.keys,
                     "describe": s.describe(), "bytes_per_token": s.bytes_per_token()})
    return {"rows": rows, "protocol": language.Protocol().describe(),
            "weights": "the reference's (the dequantized GGUF file), float32"}
