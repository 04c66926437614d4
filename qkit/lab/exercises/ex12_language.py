"""Exercises of notebook 12 (a language model in 4 bits): checkers, and their reference
solutions."""

from __future__ import annotations

import math

from qkit.lab.exercises.feedback import Feedback, checker, report


def _near(a, b) -> bool:
    return isinstance(a, (int, float)) and math.isfinite(a) and abs(a - b) <= 1e-6 * max(1, abs(b))


@checker
def q4_1_weight(value: float) -> Feedback:
    """Exercise 1: a Q4_1 block stores d = 0.0125 and m = -0.1; weight j has code 11. Its
    value?"""
    d, m, q = 0.0125, -0.1, 11
    if _near(value, d * q + m):
        return report(Feedback(True, "d * q + m = 0.0125 * 11 - 0.1 = 0.0375: code 0 is the "
                                     "block's minimum, each code one step d above it"))
    if _near(value, d * q):
        return report(Feedback(False, "Q4_1 adds the block's minimum m to d * q"))
    if _near(value, d * (q - 8) + m) or _near(value, d * (q - 8)):
        return report(Feedback(False, "that is Q4_0's centred code (q - 8); Q4_1 has a minimum "
                                      "instead: d * q + m"))
    if _near(value, d * q - m):
        return report(Feedback(False, "m is added, and here it is negative"))
    return report(Feedback(False, "value = d * q + m"))


@checker
def q4_1_bits(bits: float) -> Feedback:
    """Exercise 2: bits per weight of Q4_1 (blocks of 32 weights: 4-bit codes, a float16 d
    and a float16 m)."""
    if _near(bits, 5.0):
        return report(Feedback(True, "(32 x 4 + 16 + 16) / 32 = 5.0 bits: the scale and the "
                                     "minimum cost a bit per weight"))
    if _near(bits, 4.0):
        return report(Feedback(False, "count the block's float16 scale and minimum too"))
    if _near(bits, 4.5):
        return report(Feedback(False, "that is Q4_0 (a scale only); Q4_1 also stores m"))
    if _near(bits, 4 + 32 / 32 / 8) or _near(bits, 4 + 2 / 32):
        return report(Feedback(False, "d and m are 16 bits each, shared by 32 weights: "
                                      "32 / 32 = 1 bit per weight"))
    return report(Feedback(False, "bits of one block (codes, d, m) divided by its 32 weights"))


@checker
def perplexity_from_nll(ppl: float) -> Feedback:
    """Exercise 3: the mean negative log-likelihood of the scored tokens is 3.0 nats. The
    perplexity?"""
    if _near(ppl, math.exp(3.0)):
        return report(Feedback(True, "exp(3.0) = 20.09: as unsure, on average, as a uniform "
                                     "choice among 20 tokens"))
    if _near(ppl, 8.0):
        return report(Feedback(False, "nats are natural logarithms: exp, not 2 **"))
    if _near(ppl, math.exp(-3.0)):
        return report(Feedback(False, "the negative log-likelihood is already negated: "
                                      "exp(+3.0)"))
    if _near(ppl, 3.0):
        return report(Feedback(False, "perplexity is exp of the mean negative "
                                      "log-likelihood"))
    return report(Feedback(False, "perplexity = exp(mean negative log-likelihood)"))


MISTAKES = {
    "q4_1_weight": [((0.1375,), "adds the block's minimum"), ((-0.0625,), "Q4_0"),
                    ((0.2375,), "negative"), ((1.0,), "d * q + m")],
    "q4_1_bits": [((4.0,), "float16 scale and minimum"), ((4.5,), "Q4_0"),
                  ((4.0625,), "16 bits each"), ((8.0,), "divided by")],
    "perplexity_from_nll": [((8.0,), "natural"), ((math.exp(-3.0),), "already negated"),
                            ((3.0,), "exp of the mean"), ((1.0,), "perplexity = exp")],
}
ANSWERS = {"q4_1_weight": 0.0125 * 11 - 0.1, "q4_1_bits": 5.0,
           "perplexity_from_nll": math.exp(3.0)}

SOLUTIONS = {
    "q4_1_weight": lambda: q4_1_weight(0.0125 * 11 - 0.1),
    "q4_1_bits": lambda: q4_1_bits((32 * 4 + 16 + 16) / 32),
    "perplexity_from_nll": lambda: perplexity_from_nll(math.exp(3.0)),
}
