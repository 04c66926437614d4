"""The integer-only inference engine: trace a float model, calibrate, run on integers."""

from qkit.engine.graph import Op, UnsupportedLayer, trace
from qkit.engine.model import SCHEMES, IntegerModel, Scheme, run_float

__all__ = ["SCHEMES", "IntegerModel", "Op", "Scheme", "UnsupportedLayer", "run_float", "trace"]
