"""Claims of notebook 12, the RTN sweep (`python -m qkit precompute llm_rtn`): group sizes,
symmetry, bits. Imported by `qkit.lab.claims.nb12`."""

from __future__ import annotations

import numpy as np

from qkit.lab.claims import claim, measured


def _rows(name: str) -> dict:
    from qkit.studies import results

    return {r["name"]: r for r in results.load(name)["rows"]}


def _sweep(bits: int, group, symmetric: bool = False) -> dict:
    from qkit.studies import results

    return next(r for r in results.load("llm_rtn")["rows"] if r.get("bits") == bits
                and r["group_size"] == group and r["symmetric"] == symmetric)


GROUPS = (None, 128, 64, 32)


@claim("12", "Smaller groups fit each grid closer to its weights and spend more bits on scales; "
             "the explorer's x axis counts them.")
def _groups_cost_and_fit():
    ok, worst = True, ""
    for b in (3, 4, 6):
        for sym in (False, True):
            rows = [_sweep(b, g, sym) for g in GROUPS]
            bpw = [r["bits_per_weight"] for r in rows]
            kl = [r["kl"] for r in rows]
            if not (bpw == sorted(bpw) and len(set(bpw)) == 4 and kl == sorted(kl, reverse=True)):
                ok, worst = False, f"int{b} sym={sym}: bits {bpw}, KL {kl}"
    return measured(ok, worst or "at 3, 4 and 6 bits: bits per weight rise and KL falls from "
                                 "per channel to g128, g64, g32 (both symmetries)")


@claim("12", "At 4 bits asymmetric, go from per channel to g128, g64 and g32: perplexity falls "
             "from 38.0 to 28.0, 26.9 and 26.0, while the cost rises from 4.05 to 5 bits per "
             "weight.")
def _int4_groups():
    rows = [_sweep(4, g) for g in GROUPS]
    p = [round(r["perplexity"], 1) for r in rows]
    b = [r["bits_per_weight"] for r in rows]
    return measured(p == [38.0, 28.0, 26.9, 26.0] and round(b[0], 2) == 4.05 and b[-1] == 5.0,
                    f"perplexity {p}, bits per weight {[round(x, 3) for x in b]}")


@claim("12", "At 3 bits the group size matters most: per channel RTN's perplexity is above 500, "
             "with groups of 32 it is 49.")
def _int3_groups():
    p = {b: [_sweep(b, g)["perplexity"] for g in GROUPS] for b in (3, 4, 6, 8)}
    ratio = {b: v[0] / v[-1] for b, v in p.items()}
    return measured(p[3][0] > 500 and round(p[3][-1]) == 49 and ratio[3] == max(ratio.values()),
                    f"int3: per channel {p[3][0]:.0f}, g32 {p[3][-1]:.1f}; per channel / g32 "
                    "at each bits: " + ", ".join(f"{b}: {r:.2f}" for b, r in ratio.items()))


@claim("12", "Tick symmetric: at 3 and 4 bits it is worse at every group size, even where it "
             "costs the same bits (int4 g32 symmetric and int4 g64 asymmetric both spend 4.5 "
             "bits per weight: 27.9 against 26.9).")
def _symmetric():
    worse = all(_sweep(b, g, True)["perplexity"] > _sweep(b, g)["perplexity"]
                for b in (3, 4) for g in GROUPS)
    s, a = _sweep(4, 32, True), _sweep(4, 64)
    return measured(worse and s["bits_per_weight"] == a["bits_per_weight"] == 4.5
                    and round(s["perplexity"], 1) == 27.9 and round(a["perplexity"], 1) == 26.9,
                    f"symmetric worse at every 3/4-bit group: {worse}; at 4.5 bits "
                    f"{s['perplexity']:.2f} vs {a['perplexity']:.2f}")


@claim("12", "Go to 6 and 8 bits: every setting keeps within 1.0 of the reference's "
             "perplexity, and at 8 bits within 0.1.")
def _high_bits():
    ref = _rows("llm")["reference"]["perplexity"]
    gap = {b: max(_sweep(b, g, s)["perplexity"] - ref for g in GROUPS for s in (False, True))
           for b in (6, 8)}
    return measured(gap[6] < 1.0 and gap[8] < 0.1, f"largest gaps: 6 bits +{gap[6]:.2f}, "
                                                   f"8 bits +{gap[8]:.3f}")


@claim("12", "Go to 2 bits: RTN collapses at every setting, perplexity above 20,000.")
def _two_bits():
    low = min(_sweep(2, g, s)["perplexity"] for g in GROUPS for s in (False, True))
    return measured(low > 20_000, f"lowest 2-bit perplexity {low:,.0f}")


@claim("12", "RTN int4 g32 asymmetric is not the file's Q4_1, although both put 4-bit codes on "
             "blocks of 32: RTN's zero point is an integer code, Q4_1's minimum a float16 "
             "number. At the file's own block size RTN still scores 26.01, where Q4_1 gives the "
             "file back.")
def _rtn_is_not_q4_1():
    from qkit.engine.rtn import WeightScheme

    qp = WeightScheme(4, 32).params(np.linspace(-1, 2, 64, dtype=np.float32).reshape(1, 64))
    integer_zero = np.array_equal(np.asarray(qp.zero_point), np.round(qp.zero_point))
    r = _sweep(4, 32)
    return measured(integer_zero and round(r["perplexity"], 2) == 26.01
                    and _rows("llm")["gguf q4_1"]["kl"] == 0.0,
                    f"RTN zero points are integers: {integer_zero}; int4 g32 asym "
                    f"{r['perplexity']:.2f}; gguf q4_1 KL 0")


@claim("12", "With RTN, smaller groups buy accuracy with bits: at 4 bits, groups of 32 cost a bit "
             "per weight more than a grid per channel and lower the perplexity from 38.0 to "
             "26.0; at 3 bits they are the difference between a working model and a broken "
             "one.")
def _rtn_takeaway():
    a, b = _sweep(4, None), _sweep(4, 32)
    c, d = _sweep(3, None), _sweep(3, 32)
    ref = _rows("llm")["reference"]["perplexity"]
    return measured(0.9 < b["bits_per_weight"] - a["bits_per_weight"] < 1.0
                    and round(a["perplexity"], 1) == 38.0 and round(b["perplexity"], 1) == 26.0
                    and d["perplexity"] < 3 * ref < 20 * ref < c["perplexity"],
                    f"int4: +{b['bits_per_weight'] - a['bits_per_weight']:.2f} bits, "
                    f"{a['perplexity']:.1f} -> {b['perplexity']:.1f}; int3: per channel "
                    f"{c['perplexity']:.0f} ({c['perplexity'] / ref:.0f}x the reference), g32 "
                    f"{d['perplexity']:.1f}")
