"""Exercises of notebook 11 (low-bit floats and block scales): checkers, and their reference
solutions."""

from __future__ import annotations

from qkit.lab.exercises.feedback import Feedback, checker, report

NVFP4_4096 = 4096 * 4096 // 2 + 4096 * 4096 // 16 + 4


@checker
def e4m3_by_hand(value: float) -> Feedback:
    """Exercise 1: the value of the FP8 E4M3 byte 0xB5 (bias 7)."""
    want = -(2.0 ** (6 - 7)) * (1 + 5 / 8)
    if abs(value - want) < 1e-9:
        return report(Feedback(True, "1.0110.101: sign 1, exponent 6 - 7 = -1, mantissa "
                                     "1 + 5/8: -0.8125"))
    if abs(value + want) < 1e-9:
        return report(Feedback(False, "the leftmost bit is the sign"))
    if abs(value - want / 2) < 1e-9 or abs(value - want * 2) < 1e-9:
        return report(Feedback(False, "E4M3's exponent bias is 7: the stored exponent minus 7"))
    if abs(value + 2.0 ** -1 * 5 / 8) < 1e-9:
        return report(Feedback(False, "a normal number has an implicit leading 1 before the "
                                      "mantissa bits"))
    return report(Feedback(False, "split the byte into 1 sign, 4 exponent and 3 mantissa bits"))


@checker
def shared_exponent(x: int) -> Feedback:
    """Exercise 2: the MXFP4 shared exponent X of a block whose largest |value| is 0.3."""
    want = -4
    if x == want:
        return report(Feedback(True, "floor(log2 0.3) = -2, minus E2M1's emax 2: X = -4, "
                                     "scale 1/16, and 0.3 / (1/16) = 4.8 rounds to 4"))
    if x == -2:
        return report(Feedback(False, "subtract the element format's largest exponent (emax), "
                                      "so the block max lands near the element's top"))
    if x == want + 127:
        return report(Feedback(False, "that is the E8M0 byte that stores it; the exponent is "
                                      "the byte minus 127"))
    if x == -1 or x == -3:
        return report(Feedback(False, "the OCP rule takes floor(log2 amax), not ceil"))
    return report(Feedback(False, "X = floor(log2(max |x|)) - emax of the element format"))


@checker
def nvfp4_bytes(count: int) -> Feedback:
    """Exercise 3: bytes of a 4096 x 4096 weight in NVFP4, every scale included."""
    n = 4096 * 4096
    if count == NVFP4_4096:
        return report(Feedback(True, f"{NVFP4_4096:,} bytes: 4.5 bits per weight (the tensor "
                                     "scale adds 2e-6)"))
    if count == n // 2:
        return report(Feedback(False, "plus the E4M3 block scales (and the tensor scale)"))
    if count == n // 2 + n // 16:
        return report(Feedback(False, "plus one float32 scale for the whole tensor"))
    if count == n // 2 + n // 32 + 4 or count == n // 2 + n // 32:
        return report(Feedback(False, "NVFP4's blocks hold 16 elements, not MX's 32"))
    if count == n // 2 + 4 * (n // 16) + 4:
        return report(Feedback(False, "a block scale is one E4M3 byte"))
    return report(Feedback(False, "two FP4 codes per byte, one byte per block scale, and one "
                                  "float32"))


MISTAKES = {
    "e4m3_by_hand": [((0.8125,), "sign"), ((-0.40625,), "bias is 7"), ((-0.3125,), "implicit"),
                     ((3.0,), "split the byte")],
    "shared_exponent": [((-2,), "emax"), ((123,), "E8M0 byte"), ((-3,), "floor"),
                        ((7,), "X = floor")],
    "nvfp4_bytes": [((4096 * 4096 // 2,), "block scales"),
                    ((4096 * 4096 // 2 + 4096 * 4096 // 16,), "float32 scale for the whole"),
                    ((4096 * 4096 // 2 + 4096 * 4096 // 32 + 4,), "16 elements"),
                    ((4096 * 4096 // 2 + 4 * 4096 * 4096 // 16 + 4,), "one E4M3 byte"),
                    ((1,), "two FP4 codes")],
}
ANSWERS = {"e4m3_by_hand": -0.8125, "shared_exponent": -4, "nvfp4_bytes": NVFP4_4096}

SOLUTIONS = {
    "e4m3_by_hand": lambda: e4m3_by_hand(-(2.0 ** (6 - 7)) * (1 + 5 / 8)),
    "shared_exponent": lambda: shared_exponent(-4),
    "nvfp4_bytes": lambda: nvfp4_bytes(4096 * 4096 // 2 + 4096 * 4096 // 16 + 4),
}
