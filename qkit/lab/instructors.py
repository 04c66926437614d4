"""The instructor pages, ``docs/instructors/NN.md``: ``python -m qkit instructor-pages``.

Each page gives a notebook's learning objectives, prerequisites, a class timing, its three
exercises with the mistakes their checkers recognise, and discussion questions. The mistakes
are not written by hand: each one is a wrong answer registered beside its checker
(``MISTAKES`` in `qkit.lab.exercises`), run through the checker when the page is written, and
the page quotes the hint the checker really gives. A test keeps the committed pages equal to
what this module writes.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import warnings
from pathlib import Path

from qkit.lab import editions

ROOT = Path(__file__).resolve().parents[2]
PAGES_DIR = ROOT / "docs" / "instructors"

# number -> (minutes in class, prerequisites, objectives, discussion questions)
PLAN = {
    0: (10, ["none: this is where the series starts; Python and NumPy at the level of reading "
             "a few lines"],
        ["say what a quantized weight is: an integer code and a float scale",
         "read a size / error trade-off off a measured curve",
         "name the two costs quantization saves (bytes moved, energy per operation) and the "
         "one it adds (error)"],
        ["Where would you rather spend bits: on the weights that are large, or on the ones "
         "that are many?",
         "Why does a model's accuracy barely move when its weights' SQNR is far from "
         "lossless?",
         "Which of size, speed and energy matters most on your phone, and on a data centre "
         "accelerator?"]),
    1: (25, ["notebook 00"],
        ["map a float range onto a uint8 or int8 grid: scale and zero point, by hand and in "
         "code",
         "tell symmetric from asymmetric and per-tensor from per-channel grids, and when each "
         "pays",
         "compare calibration observers (min/max, percentile, MSE) on real activations"],
        ["Why must the real value 0 fall exactly on the grid?",
         "A weight tensor has one channel a hundred times larger than the rest: what does "
         "per-tensor scaling do to the others, and what fixes it?",
         "When would you accept clipping some values to gain resolution on the rest?"]),
    2: (25, ["notebook 01", "variance and decibels"],
        ["derive the uniform-noise model and the 6 dB-per-bit rule, and check them against "
         "measurement",
         "see where the model fails (few bits, signals that do not fill the grid, clipping)",
         "choose a clipping range that trades clipping error against rounding error"],
        ["The noise model assumes the error is uniform and independent of the signal: on "
         "which signals is that false?",
         "Why does the optimal clipping range shrink as the bit width falls?",
         "Is SQNR the right measure of a layer's quantization quality? What would you measure "
         "instead?"]),
    3: (25, ["notebook 01", "integer overflow, two's complement"],
        ["expand the zero-point algebra and say which terms can be precomputed",
         "bound an int32 accumulator and find when it can overflow",
         "requantize with a fixed-point multiplier and a shift, bit-exactly as gemmlowp and "
         "PyTorch do"],
        ["Why do inference engines prefer symmetric weights (zero point 0)?",
         "What goes wrong if requantization rounds differently from the reference engine?",
         "Why does PyTorch's x86 backend keep activations in 7 bits by default?"]),
    4: (30, ["notebook 03", "what a cache and a SIMD register are"],
        ["measure the int8 peak of the machine in front of you",
         "follow one GEMM through seven versions and say what each step buys",
         "tell memory-bound from compute-bound with a roofline, and predict which one a layer "
         "is"],
        ["Why is a batch-1 matrix-vector product limited by memory, whatever the arithmetic?",
         "Which of the seven versions would you keep in a library, and why not the others?",
         "What would change on a laptop without 512-bit vectors?"]),
    5: (30, ["notebooks 01-03", "a CNN's layers (conv, BatchNorm, ReLU)"],
        ["fold BatchNorm into the preceding convolution exactly",
         "calibrate activation ranges on real data and compare observers end to end",
         "explain why MobileNetV2 is hard to quantize per tensor, and what per-channel scales, "
         "cross-layer equalization, bias correction and adaptive rounding each fix"],
        ["Why does a depthwise layer suffer from per-tensor weight scales more than a regular "
         "convolution?",
         "Bias correction and adaptive rounding both use calibration data: what does each one "
         "change, and can they be combined?",
         "How many calibration images are enough, and how would you find out?"]),
    6: (25, ["notebooks 01-02"],
        ["build the NF4 grid and compare uniform, NF4, power-of-two and k-means grids on the "
         "same tensor",
         "count the bits per weight of a codebook format, scales included",
         "see how a lookup-table kernel runs a codebook without dequantizing"],
        ["Why does a grid matched to a normal distribution help weights but not always "
         "activations?",
         "A codebook kernel saves multiplies; what does it spend instead?",
         "When is a non-uniform grid worth losing the integer arithmetic of a uniform one?"]),
    7: (30, ["notebook 05", "backpropagation"],
        ["write the straight-through estimator's gradient and say where it lies",
         "compare PTQ and QAT bit width by bit width on the same model",
         "initialise and scale LSQ's learned step size"],
        ["Why does QAT help most at the lowest bit widths?",
         "The STE's gradient is wrong by construction: why does training work anyway?",
         "What does a learned step size learn that a calibrated one cannot?"]),
    8: (25, ["notebooks 05 and 07"],
        ["measure each layer's sensitivity to lower precision",
         "predict a model's error from its layers' errors (additive noise) and check the "
         "prediction",
         "allocate bit widths under a size budget with a greedy rule"],
        ["When does the additive-noise prediction break down?",
         "Why is the greedy rule not optimal, and when does that matter?",
         "Which layers would you keep at 8 bits in any model, and why?"]),
    9: (25, ["notebooks 04 and 05"],
        ["estimate energy by counting operations and memory traffic (and say why it is an "
         "estimate)",
         "read the real-model table: accuracy, size and latency of each scheme and engine",
         "find the layers and batch sizes where int8 does not win"],
        ["Why does moving a byte from DRAM cost more than many multiply-adds?",
         "A scheme is smaller and as accurate but not faster: what limits it?",
         "What would you measure to turn the energy estimate into a measurement?"]),
    10: (35, ["notebooks 05 and 08", "what attention and a linear layer in a transformer do"],
         ["quantize a transformer's linear layers weight-only and dynamically",
          "find the activation outliers and see why they break per-tensor int8",
          "migrate difficulty from activations to weights with SmoothQuant and choose alpha"],
         ["Why do outliers concentrate in a few channels, and why does that matter for the "
          "choice of granularity?",
          "SmoothQuant moves the problem to the weights: why can the weights take it?",
          "Which of weight-only and W8A8 would you deploy on a CPU for batch-1 text, and "
          "which on a server?"]),
    11: (35, ["notebooks 02, 06 and 10", "binary numbers and powers of two"],
         ["decode and encode FP8, FP6 and FP4 codes by hand, NaN and subnormals included",
          "explain how an MX block's shared exponent and NVFP4's two-level scale are chosen, "
          "and count the bits per element they cost",
          "compare 4-bit formats at equal bits on real tensors, and say when a rotation "
          "against outliers pays"],
         ["Why does a float format suit activations with outliers better than int8 with the "
          "same number of bits?",
          "MXFP4 rounds its scale to a power of two: what does that cost, and what does it buy "
          "the hardware?",
          "A rotation helps per-tensor int8 a lot and NVFP4 not at all: what does each "
          "already do about outliers?"]),
    12: (40, ["notebooks 01, 02 and 10", "what a softmax and a logarithm are"],
         ["read a GGUF Q4_1 or Q8_0 block byte by byte and compute its weights by hand",
          "state a perplexity with its protocol, and say what the KL divergence to a "
          "reference adds",
          "explain why smaller groups, GPTQ's error feedback and AWQ's channel scales each "
          "lower the error of 3- and 4-bit weights, and what each costs"],
         ["The reference model is itself a 4-bit file: which conclusions of this notebook "
          "would change with the original bfloat16 weights, and which would not?",
          "A quantized model's perplexity comes out a hair below the reference's: is it a "
          "better model? What would you measure next?",
          "Keeping 1% of the channels in float nearly halves the int3 perplexity: why does "
          "AWQ scale those channels instead of keeping them in float?"]),
}


def _module(number: int):
    from qkit.lab import grading

    return importlib.import_module(f"qkit.lab.exercises.{grading._module(number)}")


def _notebook(number: int) -> Path:
    return next(editions.NOTEBOOKS.glob(f"{number:02d}_*.ipynb"))


def _exercises(nb: dict) -> list[tuple[str, str]]:
    """(checker name, question) of each exercise, in order: the question is the markdown cell
    before the answer cell."""
    out = []
    for i in editions.answer_cells(nb):
        name = editions._CALL.search("".join(nb["cells"][i + 1]["source"])).group(1)
        out.append((name, " ".join("".join(nb["cells"][i - 1]["source"]).split())))
    return out


def _title(nb: dict) -> str:
    return "".join(nb["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()


def _shown(args) -> str:
    if any(callable(a) for a in args):
        return "a wrong function"
    return "answer " + ", ".join(f"{a:.6g}" if isinstance(a, float) else repr(a) for a in args)


def mistakes(number: int, name: str) -> list[tuple[str, str]]:
    """(the wrong answer, the checker's hint) for each mistake registered for checker ``name``,
    measured now: the checker is run on each wrong answer (nothing recorded, nothing printed)."""
    m = _module(number)
    out = []
    saved = os.environ.get("QKIT_RESULTS")
    os.environ["QKIT_RESULTS"] = ""
    try:
        for args, _ in m.MISTAKES[name]:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # some mistakes divide by zero on purpose
                fb = getattr(m, name)(*args)
            out.append((_shown(args), fb.message))
    finally:
        if saved is None:
            del os.environ["QKIT_RESULTS"]
        else:
            os.environ["QKIT_RESULTS"] = saved
    return out


def page(number: int) -> str:
    """The markdown of ``docs/instructors/NN.md``."""
    path = _notebook(number)
    nb = json.loads(path.read_text())
    title = _title(nb)
    minutes, prerequisites, objectives, questions = PLAN[number]
    sections = [line[3:] for c in nb["cells"] if c["cell_type"] == "markdown"
                for line in "".join(c["source"]).splitlines() if line.startswith("## ")]
    lines = [f"# Instructor notes: {title}", "",
             f"Notebook: [`notebooks/{path.name}`](../../notebooks/{path.name}). "
             f"In class: about {minutes} minutes. Student edition: "
             "`python -m qkit student-edition OUTDIR` (README, \"For instructors\").", "",
             "## Learning objectives", "", "After this notebook a student can:", ""]
    lines += [f"- {o}" for o in objectives]
    lines += ["", "## Prerequisites", ""] + [f"- {p}" for p in prerequisites]
    lines += ["", "## Sections", "", " · ".join(sections), "",
              "## Exercises and the mistakes the checkers recognise", "",
              "Each wrong answer below is registered beside its checker; the hint is what the "
              "checker prints for it (run when this page was written, "
              "`python -m qkit instructor-pages`).", ""]
    for name, question in _exercises(nb):
        lines += [f"### `{name}`", "", question, ""]
        for shown, hint in mistakes(number, name):
            lines.append(f"- {shown}: *{hint}*")
        lines.append("")
    lines += ["## Discussion questions", ""] + [f"{i}. {q}" for i, q in enumerate(questions, 1)]
    return "\n".join(lines) + "\n"


def write(outdir=PAGES_DIR) -> list[Path]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for number in PLAN:
        target = outdir / f"{number:02d}.md"
        target.write_text(page(number))
        written.append(target)
    index = ["# Instructor notes", "",
             "One page per notebook: objectives, prerequisites, timing, the exercises with the "
             "mistakes their checkers recognise, discussion questions. Written by "
             "`python -m qkit instructor-pages` (the mistakes are run through the checkers).",
             ""]
    for number in PLAN:
        title = _title(json.loads(_notebook(number).read_text()))
        index.append(f"- [{title}]({number:02d}.md) — about {PLAN[number][0]} minutes")
    (outdir / "README.md").write_text("\n".join(index) + "\n")
    return [*written, outdir / "README.md"]


def main(argv=None) -> int:
    """``python -m qkit instructor-pages [OUTDIR]``."""
    argv = list(argv or [])
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: python -m qkit instructor-pages [OUTDIR]   (default docs/instructors)")
        return 2
    written = write(argv[0] if argv else PAGES_DIR)
    print(f"wrote {len(written)} pages to {written[0].parent}")
    return 0
