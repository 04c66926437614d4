"""Precomputed results: the heavy work behind the notebooks, cached in ``data/results/``.

QAT runs, layer-sensitivity sweeps and MobileNetV2 / MiniLM evaluations take minutes, too
long for a notebook that must open in seconds. ``python -m qkit precompute NAME`` recomputes
one of them (with a progress bar) and writes ``data/results/NAME.json`` plus its sha256 in
``data/results/SHA256SUMS``; `load` checks that sha256 and says how to rebuild a missing or
corrupted file. Every value in these files was measured by the producer named in
`PRODUCERS`; none is typed in by hand.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

from qkit.data import DATA_DIR, DataError, sha256, verified_file

RESULTS_DIR = DATA_DIR / "results"
SUMS = RESULTS_DIR / "SHA256SUMS"

# name -> "module:function" returning a JSON-able dict (``progress`` turns the bar on/off)
PRODUCERS = {
    "qat": "qkit.studies.qat:precompute",
    "nonuniform": "qkit.studies.nonuniform:precompute",
    "sensitivity": "qkit.studies.sensitivity:precompute",
    "models": "qkit.studies.eval:precompute",
    "transformer": "qkit.studies.transformer:precompute",
    "formats": "qkit.studies.formats:precompute",
    "llm": "qkit.studies.llm:precompute",
    "llm_salient": "qkit.studies.llm:precompute_salient",
    "llm_rtn": "qkit.studies.llm:precompute_rtn_sweep",
    "llm_kv": "qkit.studies.llm:precompute_kv",
    "llm_eval": "qkit.studies.eval_llm:precompute",
}


def _sums() -> dict[str, str]:
    if not SUMS.is_file():
        return {}
    out = {}
    for line in SUMS.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            out[name] = digest
    return out


def path(name: str, suffix: str = ".json") -> Path:
    if name not in PRODUCERS:
        raise KeyError(f"unknown result {name!r}; known: {', '.join(sorted(PRODUCERS))}")
    return RESULTS_DIR / f"{name}{suffix}"


def verified(name: str, suffix: str = ".json") -> Path:
    """The file of result ``name`` after checking its recorded sha256."""
    p = path(name, suffix)
    restore = f"python -m qkit precompute {name}"
    expected = _sums().get(p.name)
    if expected is None:
        raise DataError(f"{p} has no checksum in {SUMS}. To rebuild it: {restore}")
    return verified_file(p, expected, restore)


def load(name: str) -> dict:
    """The cached result ``name`` (a dict), checksum verified."""
    try:
        return json.loads(verified(name).read_text())
    except json.JSONDecodeError as err:  # cannot happen with a matching checksum, but be clear
        raise DataError(f"{path(name)} is not valid JSON ({err}); rebuild it with "
                        f"python -m qkit precompute {name}") from err


def record(filename: str) -> None:
    """Write the sha256 of ``data/results/filename`` into SHA256SUMS."""
    sums = _sums()
    sums[filename] = sha256(RESULTS_DIR / filename)
    SUMS.write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))


def save(name: str, result: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    p = path(name)
    p.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    record(p.name)
    return p


def precompute(name: str, progress: bool = True) -> Path:
    """Run the producer of ``name`` and store its result (and checksum)."""
    module, func = PRODUCERS[name].split(":")
    result = getattr(import_module(module), func)(progress=progress)
    return save(name, result)


def main(argv: list[str]) -> int:
    names = list(PRODUCERS) if argv == ["all"] else argv
    if not names or any(n not in PRODUCERS for n in names):
        print(f"usage: python -m qkit precompute {{{','.join(PRODUCERS)},all}} ...")
        return 2
    for n in names:
        print(f"{n}: wrote {precompute(n)}")
    return 0
