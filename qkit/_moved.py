"""Where modules of the flat 0.1 layout live now (``import qkit.widgets`` still works).

Importing an old name gives the module at its new home, the same object; nothing is
copied. New code should import the new names (docs/architecture.md lists the layers).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {f"qkit.{old}": f"qkit.{new}" for old, new in {
    "_checks": "core.checks", "qparams": "core.qparams", "rounding": "core.rounding",
    "fixedpoint": "core.fixedpoint", "observers": "core.observers", "metrics": "core.metrics",
    "nonuniform": "formats.nonuniform", "fbgemm": "engine.fbgemm",
    "mapping": "topics.mapping", "noise": "topics.noise", "compare": "topics.compare",
    "energy": "topics.energy", "mixed": "topics.mixed", "qat": "topics.qat",
    "smoothquant": "topics.smoothquant",
    "bench": "studies.bench", "eval": "studies.eval", "speed": "studies.speed",
    "results": "studies.results",
    "widgets": "lab.widgets", "plots": "lab.plots", "exercises": "lab.exercises",
}.items()}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and loads it as the module at its new home."""

    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass  # already executed at its new home


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())


def attribute(name: str):
    """``qkit.<name>`` for an old module name (the package's ``__getattr__``)."""
    full = f"qkit.{name}"
    if full not in MOVED:
        raise AttributeError(f"module 'qkit' has no attribute {name!r}")
    return importlib.import_module(full)
