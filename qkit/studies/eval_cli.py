"""``python -m qkit eval``: the accuracy / size / latency table of real models.

    python -m qkit eval                      # the stored table, at once
    python -m qkit eval --recompute          # measure every model again (about 15 minutes)
    python -m qkit eval --models mnist-cnn   # measure one model again (about a minute)
    python -m qkit eval --json               # one object per line: model, scheme, metric,
                                             # value, fp32_value, size_bytes, latency_ms, engine
    python -m qkit eval --formats            # FP8 / MX / NVFP4 rows too (fake-quantized)
    python -m qkit eval --llm                # SmolLM2 rows too: perplexity / KL per scheme
    python -m qkit eval --models smollm2     # measure SmolLM2's rows again (about 15 minutes)

The format rows (``--formats``; `qkit.studies.formats`) are fake-quantized: the formats' values
in float32 arithmetic, sizes with every scale, latency of the emulation. They are stored in
``data/results/formats.json`` (``python -m qkit precompute formats``) and recomputed with
``--recompute`` like the integer rows.

The SmolLM2 rows (``--llm``; `qkit.studies.eval_llm`) are perplexity and KL divergence to the
float reference on the protocol of `qkit.topics.language`, with bytes of the block linears and
milliseconds per decoded token; stored in ``data/results/llm_eval.json``
(``python -m qkit precompute llm_eval``).

The stored table is ``data/results/models.json`` (checksummed, `qkit.studies.results`), written
by ``python -m qkit precompute models`` with a fingerprint of the code that measured it
(`qkit.studies.eval.fingerprint`); when the code has changed since, ``eval`` says so. A
recomputation shows a progress bar per model naming the step (scheme) it is on.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from qkit.studies.eval import BATCH, MODELS, Row, fingerprint, format_rows
from qkit.studies.formats import MODELS as FORMAT_MODELS

LLM_MODELS = ("smollm2",)


def stored() -> dict:
    """The stored table (``data/results/models.json``, checksum verified)."""
    from qkit.studies import results

    return results.load("models")


def _measure(args) -> tuple[list[Row], str]:
    names = args.models or list(MODELS)
    rows = []
    for name in names:
        kw = {} if args.rounds is None else {"rounds": args.rounds}
        if name in LLM_MODELS:
            from qkit.studies.eval_llm import smollm2_rows

            rows += smollm2_rows(progress=not args.no_progress, **kw)
            continue
        rows += MODELS[name](progress=not args.no_progress, **kw)
        if args.formats:
            rows += FORMAT_MODELS[name](progress=not args.no_progress)
    return rows, f"measured now ({', '.join(names)})"


def _stored_rows(args) -> tuple[list[Row], str]:
    from qkit.studies import results

    table = stored()
    rows = [Row(**r) for r in table["rows"]]
    if args.formats:
        rows += [Row(**r) for r in results.load("formats")["rows"]]
    if args.llm:
        rows += [Row(**r) for r in results.load("llm_eval")["rows"]]
    origin = (f"stored table, measured on {table.get('cpu', 'an unrecorded CPU')} by "
              "python -m qkit precompute models; --recompute measures it again here "
              "(about 15 minutes), --models NAME one model")
    if table.get("fingerprint") != fingerprint():
        origin += ("\nnote: qkit's kernels, engine or models have changed since this table "
                   "was measured" + ("" if table.get("fingerprint") else
                                     " (or it predates fingerprints)") +
                   ": --recompute for numbers of this code")
    return rows, origin


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m qkit eval", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--stored", action="store_true",
                   help="print the stored table (the default)")
    p.add_argument("--recompute", action="store_true",
                   help="measure every model again (about 15 minutes) instead")
    p.add_argument("--models", nargs="+", choices=list(MODELS) + list(LLM_MODELS),
                   help="measure only these models again")
    p.add_argument("--rounds", type=int, default=None,
                   help="timing rounds of a recomputation (default: 7 MNIST, 5 the others)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--formats", action="store_true",
                   help="also the FP8 / MX / NVFP4 rows (fake-quantized, qkit.studies.formats)")
    p.add_argument("--llm", action="store_true",
                   help="also the stored SmolLM2 rows (perplexity, KL; qkit.studies.eval_llm)")
    args = p.parse_args(argv)
    if args.stored and (args.recompute or args.models):
        p.error("--stored prints the stored table; it does not go with --recompute / --models")
    if args.rounds is not None and args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.recompute or args.models:
        rows, origin = _measure(args)
    else:
        rows, origin = _stored_rows(args)
    if args.json:
        for r in rows:
            print(json.dumps(asdict(r)))
        return 0
    print(format_rows(rows))
    print(f"\n{origin}\n"
          f"latency: MNIST batch of {BATCH} test images, MobileNetV2 batch of 16 photos, "
          "MiniLM 16 articles (64 tokens); "
          f"median of interleaved rounds, float in and float out for every engine.\n"
          "MobileNetV2 has no labels offline: values are agreement with fp32 on 96 real "
          "photos and seeded crops (calibrated on the other half of the set's images)."
          + ("\nFormat rows (engine qkit fake-quant): the formats' values in float32 "
             "arithmetic, bytes with every scale, latency of the emulation (no CPU runs them); "
             "MiniLM's bbc_accuracy_fixed_head reads each format's embeddings with the "
             "classifier fitted on fp32's." if args.formats else "")
          + ("\nSmolLM2 rows: perplexity and KL to the float reference (lower is better; "
             "ctx 512, 16 windows, second halves scored, 4,080 tokens of the Wikipedia "
             "evaluation split); latency is ms per decoded token; bytes are the block "
             "linears'." if args.llm or any(r.model.startswith("smollm2") for r in rows)
             else ""))
    return 0
