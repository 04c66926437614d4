"""The math everything else stands on: quantization parameters, rounding, fixed point,
calibration observers, error metrics, and the argument checks every public function uses.

Nothing here imports another qkit layer.
"""
