"""Command line: ``python -m qkit <command>``.

    bench              measure qkit's integer kernels against NumPy and PyTorch (qkit.studies.bench)
    claims [NN]        measure the notebooks' claims, say whether each holds (qkit.lab.claims)
    doctor             the CPU, its SIMD features, the kernel family chosen and why
                       (QKIT_ISA=avx512vnni|avx2|plain overrides it; qkit.studies.doctor)
    eval               accuracy / size / latency table of real models (qkit.studies.eval_cli)
    exercises          run every exercise checker against its reference solution
    grade DIR [--csv F]  tabulate submitted notebooks / result files (qkit.lab.grading)
    instructor-pages   write docs/instructors/NN.md from the notebooks and checkers
                       (qkit.lab.instructors)
    precompute NAME    recompute a cached notebook result into data/results/ (qkit.studies.results)
    student-edition D  write every notebook with its answers blanked to D (qkit.lab.editions)
    train mnist-cnn    train the MNIST CNN from its seed and write data/mnist_cnn.npz
    warmup             compile the numba kernels once into the on-disk cache, and set up
                       JupyterLab and Voila to run with no network (qkit.lab.jupyter)
"""

from __future__ import annotations

import sys

COMMANDS = {"bench": "qkit.studies.bench", "claims": "qkit.lab.claims",
            "doctor": "qkit.studies.doctor",
            "eval": "qkit.studies.eval_cli", "grade": "qkit.lab.grading",
            "instructor-pages": "qkit.lab.instructors", "precompute": "qkit.studies.results",
            "student-edition": "qkit.lab.editions"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd in COMMANDS:  # each takes the rest of the command line and returns the exit status
        from importlib import import_module

        return import_module(COMMANDS[cmd]).main(rest)
    if cmd == "exercises":
        from qkit.lab.exercises import check_all

        return 1 if check_all() else 0
    if cmd == "train":
        if rest != ["mnist-cnn"]:
            print("usage: python -m qkit train mnist-cnn", file=sys.stderr)
            return 2
        from qkit.models.mnist_cnn import main as train_main

        return train_main()
    if cmd == "warmup":
        import time

        from qkit.kernels import warmup
        from qkit.lab import jupyter

        t0 = time.perf_counter()
        warmup(progress=True)
        print(f"qkit kernels ready in {time.perf_counter() - t0:.1f} s")
        for path in jupyter.install():
            print(f"offline set-up: {path}")
        return 0
    print(f"unknown command {cmd!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
