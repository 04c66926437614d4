"""``python -m qkit.kernels.versions [N ...] [--all] [--shape M K N]``: check each version
against the reference, then time it (interleaved medians, `qkit.studies.timing`)."""

from __future__ import annotations

import argparse
import sys

from qkit.kernels import versions
from qkit.studies.timing import measure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qkit.kernels.versions")
    parser.add_argument("numbers", nargs="*", type=int, help="versions to run (1-7)")
    parser.add_argument("--all", action="store_true", help="every version this CPU can run")
    parser.add_argument("--shape", nargs=3, type=int, default=(256, 512, 512),
                        metavar=("M", "K", "N"))
    args = parser.parse_args(argv)
    numbers = list(range(1, len(versions.MODULES) + 1)) if args.all else args.numbers
    if not numbers:
        parser.error("name a version (1-7) or --all")
    m, k, n = args.shape
    for number in numbers:
        mod = versions.module(number)
        if not versions.available(number):
            print(f"{number}  {mod.TITLE:<30} not available on this CPU")
            continue
        shape = (m, k, n) if number > 1 else (min(m, 16), min(k, 16), min(n, 16))
        run = versions.checked(number, *versions.operands(number, *shape))
        seconds = measure({"run": run}, rounds=3, min_time=0.02)["run"]
        gops = 2.0 * shape[0] * shape[1] * shape[2] / seconds / 1e9
        print(f"{number}  {mod.TITLE:<30} exact  {gops:9.2f} GOP/s  at {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
