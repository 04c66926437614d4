"""The integer-only inference engine: trace a float model, calibrate, run on integers."""

from qkit.engine.floatrun import run_float
from qkit.engine.graph import Op, UnsupportedLayer, summary, trace
from qkit.engine.model import IntegerModel
from qkit.engine.scheme import SCHEMES, Scheme, describe

__all__ = ["SCHEMES", "IntegerModel", "Op", "Scheme", "UnsupportedLayer", "describe", "run_float",
           "summary", "trace"]
