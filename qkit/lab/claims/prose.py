"""The statements of a notebook's prose that must be backed by a measurement.

A *statement* is one sentence of a markdown cell that does one of three things:

- ``try``: a "Things to try" item (the student is told what the widget will show);
- ``takeaway``: an item of the Takeaways list;
- ``number``: any other sentence that states a measured quantity (dB, %, x, GOP/s, ms, s,
  bytes, pJ ...) or a direction (helps, wins, falls, beats ...).

Headings, formulas on their own line, exercise questions, source lists and the
"reference answers" note are not statements. The rules are deliberately mechanical: the test
that ties statements to claims (`qkit.lab.claims`) cannot be argued with, only satisfied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"

_QUANTITY = re.compile(
    r"(\d[\d,.]*\s*(?:dB|%|x\b|×|GOP/s|GB/s|ms\b|s\b|minutes?|seconds?|bytes|pJ|nJ|µJ|uJ)"
    r"|~\s*\d|about \d|\d+x\b)")
_DIRECTION = re.compile(
    r"\b(helps?|wins?|beats?|falls?|climbs?|rises?|drops?|grows?|shrinks?|fades?|faster|slower|"
    r"better|worse|collapses?|recovers?|best|dominates?|smaller|larger)\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z*(`$\"'])")


@dataclass(frozen=True)
class Statement:
    notebook: str  # "05"
    cell: int
    kind: str  # try / takeaway / number
    text: str


def normalize(text: str) -> str:
    """Markdown emphasis and line breaks removed, spaces collapsed: what claims match on."""
    text = re.sub(r"[*`]", "", text)
    return re.sub(r"\s+", " ", text).strip()


def notebook_path(number: str) -> Path:
    found = sorted(NOTEBOOKS.glob(f"{number}_*.ipynb"))
    if len(found) != 1:
        raise ValueError(f"notebook {number!r}: expected one notebooks/{number}_*.ipynb, "
                         f"found {len(found)}")
    return found[0]


def markdown(number: str) -> list[tuple[int, str]]:
    """(cell index, source) of every markdown cell of notebook ``number``."""
    nb = json.loads(notebook_path(number).read_text())
    return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "markdown"]


def _blocks(source: str):
    """(section, block) pairs: a block is a bullet item or a paragraph."""
    section, block = "", []
    for line in source.splitlines() + [""]:
        stripped = line.strip()
        new_bullet = bool(re.match(r"^(- |\d+\. )", stripped))
        if stripped.startswith("#"):
            yield section, " ".join(block)
            block = []
            section = stripped.lstrip("#").strip().lower()
            continue
        if not stripped or new_bullet or stripped.startswith("**Things to try**"):
            yield section, " ".join(block)
            block = []
            if stripped.startswith("**Things to try**"):
                section = "things to try"
                stripped = stripped[len("**Things to try**"):].lstrip(": ")
        if stripped:
            block.append(stripped)
    yield section, " ".join(block)


def _skip(block: str, section: str) -> bool:
    return (not block or block.startswith(("$$", "|", "**Sources", "*Reference answers",
                                           "*The cells above", "Each checker"))
            or re.match(r"^\*\*\d+\.\*\*", block) is not None  # an exercise question
            or section.startswith(("exercises", "map of the series")))


def paragraphs(number: str) -> list[str]:
    """Every bullet item and paragraph of notebook ``number``'s markdown, normalized."""
    return [normalize(re.sub(r"^(- |\d+\. )", "", block))
            for _, source in markdown(number) for _, block in _blocks(source) if block]


def statements(number: str) -> list[Statement]:
    """Every statement of notebook ``number`` that needs a claim behind it."""
    out = []
    for cell, source in markdown(number):
        for section, block in _blocks(source):
            if _skip(block, section):
                continue
            kind = ("try" if section == "things to try" else
                    "takeaway" if section == "takeaways" else None)
            text = re.sub(r"^(- |\d+\. )", "", block)
            for sentence in _SENTENCE.split(text) if kind is None else [text]:
                plain = normalize(sentence)
                if kind or _QUANTITY.search(plain) or _DIRECTION.search(plain):
                    out.append(Statement(number, cell, kind or "number", plain))
    return out
