"""Command line: ``python -m qkit <command>``.

    bench              measure qkit's integer kernels against NumPy and PyTorch (qkit.studies.bench)
    claims [NN]        measure the notebooks' claims, say whether each holds (qkit.lab.claims)
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


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "bench":
        from qkit.studies.bench import main as bench_main

        return bench_main(rest)
    if cmd == "claims":
        from qkit.lab.claims import main as claims_main

        return claims_main(rest)
    if cmd == "eval":
        from qkit.studies.eval_cli import main as eval_main

        return eval_main(rest)
    if cmd == "exercises":
        from qkit.lab.exercises import check_all

        return 1 if check_all() else 0
    if cmd == "grade":
        from qkit.lab.grading import main as grade_main

        return grade_main(rest)
    if cmd == "instructor-pages":
        from qkit.lab.instructors import main as pages_main

        return pages_main(rest)
    if cmd == "student-edition":
        from qkit.lab.editions import main as edition_main

        return edition_main(rest)
    if cmd == "precompute":
        from qkit.studies.results import main as precompute_main

        return precompute_main(rest)
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
