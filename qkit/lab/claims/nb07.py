"""Claims of notebook 07 (QAT): the straight-through estimator, the stored PTQ-vs-QAT study and
the steps LSQ learned."""

from __future__ import annotations

from functools import cache

import numpy as np

from qkit.lab.claims import claim, measured


@cache
def _study():
    from qkit.studies import results

    r = results.load("qat")
    return r, {row["bits"]: row for row in r["rows"]}


def _ratios(bits):
    """Per layer: the median over output channels of learned step / min-max step."""
    row = _study()[1][bits]
    return {k: float(np.median(np.asarray(row["weight_steps"][k])
                               / np.asarray(row["ptq_weight_steps"][k])))
            for k in row["weight_steps"]}


def _below(bits):
    row = _study()[1][bits]
    learned = np.concatenate([np.ravel(row["weight_steps"][k]) for k in row["weight_steps"]])
    ptq = np.concatenate([np.ravel(row["ptq_weight_steps"][k]) for k in row["weight_steps"]])
    return float(np.mean(learned < ptq))


@claim("07", "The STE pretends round is the identity in the backward pass, but keeps the clamp: "
             "where the rounded value falls outside the grid's range the gradient is 0 (a clipped "
             "STE, as PyTorch's FakeQuantize does).")
def _ste():
    import torch

    from qkit.topics.qat import fake_quantize_ste

    x = torch.linspace(-2, 2, 401, dtype=torch.float32, requires_grad=True)
    fake_quantize_ste(x, 0.1, -8, 7).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    torch.fake_quantize_per_tensor_affine(x, 0.1, 0, -8, 7).sum().backward()
    inside = ((torch.round(x / 0.1) >= -8) & (torch.round(x / 0.1) <= 7)).float()
    same = torch.equal(ours, x.grad) and torch.equal(ours, inside)
    return measured(same, f"gradient equals torch.fake_quantize_per_tensor_affine's on 401 points: "
                          f"{same}; zero outside the grid: {int((ours == 0).sum())} points")


@claim("07", "Precomputed by python -m qkit precompute qat (about 70 s on 2 cores; re-run it to "
             "reproduce): for each weight bit width, PTQ (per-channel, min-max) and QAT (3 epochs "
             "of LSQ from the fp32 weights, BN folded first), activations uint8.")
def _stored():
    r, rows = _study()
    seconds = sum(row["seconds"] for row in rows.values())
    epochs = {len(row["curves"]["test_accuracy"]) - 1 for row in rows.values()}
    return measured(50 < seconds < 90 and r["epochs"] == 3 and epochs == {3},
                    f"{seconds:.0f} s of training stored; {r['epochs']} epochs")


@claim("07", "2 bits: PTQ is near chance; how many epochs does QAT need to recover?")
def _two_bits():
    row = _study()[1][2]
    first = row["curves"]["test_accuracy"][1]
    return measured(row["ptq_integer"] < 0.2 and first > 0.95,
                    f"PTQ {row['ptq_integer']:.1%} (chance 10%); QAT after one epoch {first:.1%}")


@claim("07", "Right panel: points below the diagonal mean LSQ chose a smaller step than min-max, "
             "i.e. it clips the largest weights to get finer levels for the rest. Does that "
             "happen more at 2 bits or at 8? (At 8 bits LSQ's steps come out larger: it starts "
             "from $2\\,\\mathrm{mean}|w|/\\sqrt{Q_p}$, several times the min-max step there, and "
             "three epochs do not bring it down.)")
def _diagonal():
    from qkit.engine import trace
    from qkit.models import mnist_cnn

    b2, b8 = _below(2), _below(8)
    init = []
    for op in trace(mnist_cnn.load())[0]:
        if op.kind in ("conv", "linear"):
            w = op.params["weight"].reshape(op.params["weight"].shape[0], -1)
            init.append(float(np.median(2 * np.abs(w).mean(1) / np.sqrt(127)
                                        / (np.abs(w).max(1) / 127))))
    larger8 = all(v > 1 for v in _ratios(8).values())
    return measured(b2 > b8 and larger8 and min(init) > 2,
                    f"channels below the diagonal: {b2:.0%} at 2 bits, {b8:.0%} at 8; LSQ's 8-bit "
                    f"initial step / min-max step: {min(init):.1f}-{max(init):.1f}x")


@claim("07", "Compare the first conv (9 weights per channel) with the classifier (3,136 per row).")
def _shapes():
    from qkit.models import mnist_cnn

    m = mnist_cnn.load()
    first, fc = m.features[0][0].weight, m.classifier[1].weight
    return measured(first[0].numel() == 9 and fc.shape[1] == 3136,
                    f"{first[0].numel()} and {fc.shape[1]:,}")


@claim("07", "The STE is a lie that works: gradients flow through round as if it were not there, "
             "but not through the clamp.")
def _lie():
    return _ste()


@claim("07", "At 8 and 4 bits PTQ is already close to fp32 on this CNN; at 3 bits it loses about "
             "4 points and at 2 bits it collapses, and QAT recovers almost everything (within 1 "
             "point of fp32) in under 30 s of training per bit width.")
def _ptq_vs_qat():
    r, rows = _study()
    fp32 = r["fp32"]
    ok = (all(fp32 - rows[b]["ptq_integer"] <= 0.005 for b in (8, 4))
          and 0.03 < fp32 - rows[3]["ptq_integer"] < 0.06 and rows[2]["ptq_integer"] < 0.2
          and all(fp32 - row["qat_integer"] <= 0.01 and row["seconds"] < 30
                  for row in rows.values()))
    return measured(ok, ", ".join(f"W{b}: PTQ {row['ptq_integer']:.1%}, QAT "
                                  f"{row['qat_integer']:.1%} in {row['seconds']:.0f} s"
                                  for b, row in rows.items())
                    + f" (fp32 {fp32:.1%})")


@claim("07", "At 2 bits LSQ learns smaller steps than min-max for most layers: clipping a few "
             "large weights buys finer levels for the many small ones.")
def _smaller():
    r = _ratios(2)
    smaller = sum(v < 1 for v in r.values())
    return measured(smaller > len(r) / 2, f"{smaller} of {len(r)} layers: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))


@claim("07", "A QAT model is still just integers and scales: the same engine runs it, bit for bit "
             "like a PTQ model.", slow=True)
def _integers():
    from qkit.topics import qat

    run = qat.mnist_run(weight_bits=2, epochs=1, progress=False) if "progress" in \
        qat.mnist_run.__code__.co_varnames else qat.mnist_run(weight_bits=2, epochs=1)
    return measured(run["agreement"] >= 0.99 and abs(run["qat_integer"] - run["qat_fake_quant"])
                    <= 0.01, qat.describe_run(run).replace("\n", "; "))
