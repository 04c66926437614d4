"""Every sentence of the notebooks that states a number, a direction or a winner, tied to the
measurement that backs it.

A *claim* is a sentence (or a span of sentences) copied verbatim from a notebook's markdown,
with a function that measures it on the spot and says whether it holds:

    @claim("00", "Drop to 4 bits per-tensor: the error histogram widens 16x ...")
    def _():
        ...
        return measured(24.1 < drop < 24.9, f"SQNR falls {drop:.1f} dB")

`qkit.lab.claims.prose` finds every statement of a notebook that needs one (each "Things to
try" item, each takeaway, each sentence with a quantity or a direction). The test suite then
checks both ways: every statement is covered by a registered claim, every claim's text is
still in its notebook, and every claim holds when measured. Text and measurement cannot
drift apart without a test failing. ``python -m qkit claims [NN]`` prints the table.

A claim that depends on the CPU names its condition (``needs=``): it is measured where the
condition holds and reported as not applicable elsewhere.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Callable

from qkit.lab.claims.prose import normalize, paragraphs, statements

NOTEBOOKS = ("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")


@dataclass(frozen=True)
class Measured:
    holds: bool
    detail: str  # what was measured, in a line


@dataclass(frozen=True)
class Claim:
    notebook: str
    text: str  # normalized (`prose.normalize`)
    check: Callable[[], Measured] = field(compare=False)
    slow: bool = False  # needs a model run of more than a few seconds
    needs: Callable[[], str | None] | None = field(default=None, compare=False)  # -> why not


REGISTRY: list[Claim] = []


def measured(holds, detail: str) -> Measured:
    return Measured(bool(holds), detail)


def claim(notebook: str, text: str, *, slow: bool = False, needs=None):
    """Register the decorated function as the measurement behind ``text`` of ``notebook``."""
    if notebook not in NOTEBOOKS:
        raise ValueError(f"notebook must be one of {NOTEBOOKS}, got {notebook!r}")

    def register(fn):
        REGISTRY.append(Claim(notebook, normalize(text), fn, slow, needs))
        return fn

    return register


def load() -> list[Claim]:
    """Every registered claim (importing the per-notebook modules once)."""
    for nb in NOTEBOOKS:
        importlib.import_module(f"qkit.lab.claims.nb{nb}")
    return list(REGISTRY)


def of(notebook: str) -> list[Claim]:
    return [c for c in load() if c.notebook == notebook]


def uncovered(notebook: str) -> list[str]:
    """Statements of ``notebook`` that no claim's text contains."""
    texts = [c.text for c in of(notebook)]
    return [s.text for s in statements(notebook) if not any(s.text in t for t in texts)]


def missing(notebook: str) -> list[str]:
    """Claims of ``notebook`` whose text is no longer in it (the prose changed)."""
    blocks = paragraphs(notebook)
    return [c.text for c in of(notebook) if not any(c.text in b for b in blocks)]


def verify(c: Claim) -> Measured | None:
    """Measure ``c``; None when its condition (``needs``) does not hold on this machine."""
    if c.needs is not None and c.needs() is not None:
        return None
    return c.check()


def main(argv=None) -> int:
    """``python -m qkit claims [NN ...] [--fast]``: measure every claim and print the table."""
    argv = list(argv or [])
    fast = "--fast" in argv
    wanted = [a for a in argv if a != "--fast"] or list(NOTEBOOKS)
    failed = 0
    for nb in wanted:
        if nb not in NOTEBOOKS:
            print(f"unknown notebook {nb!r}; one of {' '.join(NOTEBOOKS)}")
            return 2
        cs = of(nb)
        print(f"## notebook {nb}: {len(cs)} claims, {len(statements(nb))} statements, "
              f"{len(uncovered(nb))} uncovered, {len(missing(nb))} no longer in the text")
        for c in cs:
            if fast and c.slow:
                print(f"  skip (slow)  {c.text[:70]}")
                continue
            t0 = time.perf_counter()
            m = verify(c)
            dt = time.perf_counter() - t0
            if m is None:
                print(f"  n/a   {c.needs()}: {c.text[:60]}")
                continue
            failed += not m.holds
            print(f"  {'holds' if m.holds else 'FAILS'} {dt:5.1f}s  {c.text[:70]}\n"
                  f"               {m.detail}")
    return 1 if failed else 0
