"""Quantize one tensor several ways and tabulate size and error."""

from __future__ import annotations

import numpy as np

from qkit import kernels
from qkit.core.metrics import quantized_bytes, sqnr_db
from qkit.core.qparams import qparams_from_tensor

GRANULARITIES = {"per-tensor": {}, "per-channel": {"axis": 0},
                 "per-group (64)": {"axis": 1, "group_size": 64}}


def quantize_report(w, bits: int = 8, granularity: str = "per-channel",
                    symmetric: bool = True) -> dict:
    """Fake-quantize ``w`` (out_features, in_features) and measure it.

    Weights are signed; symmetric uses the narrow range ``[-(2^(b-1)-1), 2^(b-1)-1]``.

    >>> w = np.random.default_rng(0).standard_normal((8, 128)).astype(np.float32)
    >>> r = quantize_report(w, bits=8)
    >>> r["bytes"], r["fp32_bytes"], r["sqnr_db"] > 35
    (1056, 4096, True)
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {list(GRANULARITIES)}, got {granularity!r}")
    kw = dict(GRANULARITIES[granularity])
    if "group_size" in kw and np.shape(w)[1] % kw["group_size"]:
        kw["group_size"] = np.shape(w)[1]  # fall back to one group per row
    qp = qparams_from_tensor(w, bits=bits, signed=True, symmetric=symmetric,
                             narrow_range=symmetric, **kw)
    w_hat = kernels.fake_quantize(w, qp)
    err = np.asarray(w, np.float64) - w_hat
    return {
        "bits": bits, "granularity": granularity, "symmetric": symmetric,
        "bytes": quantized_bytes(np.size(w), bits, qp.scale.size, zero_points=not symmetric),
        "fp32_bytes": 4 * np.size(w),
        "sqnr_db": sqnr_db(w, w_hat),
        "max_abs_error": float(np.abs(err).max()),
        "error": err, "qparams": qp, "w_hat": w_hat,
    }


def compare_schemes(w, schemes) -> list[dict]:
    """`quantize_report` for each ``(bits, granularity)``; rows without the arrays."""
    rows = []
    for bits, granularity in schemes:
        r = quantize_report(w, bits, granularity)
        rows.append({k: r[k] for k in ("bits", "granularity", "bytes", "sqnr_db",
                                       "max_abs_error")} | {"ratio": r["bytes"] / r["fp32_bytes"]})
    return rows


def format_rows(rows: list[dict]) -> str:
    """A fixed-width text table (stable under nbval)."""
    head = (f"{'bits':>4}  {'granularity':<15}{'bytes':>10}{'of fp32':>9}{'SQNR dB':>9}"
            f"{'max err':>10}")
    lines = [head]
    for r in rows:
        lines.append(f"{r['bits']:>4}  {r['granularity']:<15}{r['bytes']:>10,}{r['ratio']:>8.1%}"
                     f"{r['sqnr_db']:>9.2f}{r['max_abs_error']:>10.5f}")
    return "\n".join(lines)


def layer_sqnr(im, x, ops_kinds=("conv", "linear", "add")) -> list[tuple[str, float]]:
    """SQNR (dB) of every layer's integer output against the float model, in execution order:
    how the error of an integer model (`qkit.engine.IntegerModel`) grows through the network.
    ``x`` is a float NCHW batch."""
    from qkit.core.metrics import sqnr_db
    from qkit.engine.floatrun import run_float

    ref = run_float(im.ops, x, keep=True)
    got = im.run(im.quantize_input(x), keep=True)
    out = []
    for op in im.ops:
        if op.kind not in ops_kinds:
            continue
        scale, zp = im.act[op.name]
        y = (got[op.name].astype(np.float32) - zp) * scale
        if y.ndim == 4:
            y = y.transpose(0, 3, 1, 2)  # NHWC -> NCHW
        out.append((op.name, sqnr_db(ref[op.name].numpy(), y)))
    return out


def ptq_report(model, calibration, x_test, y_test, scheme, sqnr_images: int = 256) -> dict:
    """A float model quantized with ``scheme`` on qkit's integer engine: test accuracy, the
    SQNR of every layer's output on the first ``sqnr_images`` test images, and the bytes."""
    from qkit.engine import IntegerModel

    im = IntegerModel.from_float(model, calibration, scheme)
    layers = layer_sqnr(im, x_test[:sqnr_images])
    return {"accuracy": float((im(x_test).argmax(1) == y_test).mean()), "layers": layers,
            "last_db": layers[-1][1], "bytes": im.size_bytes(), "label": im.scheme.label}


def layer_sqnr_by_scheme(model, calibration, x, schemes, batch: int = 256) -> dict:
    """`layer_sqnr` of ``model`` quantized with each named scheme of `qkit.engine.SCHEMES`
    (calibrated ``batch`` images at a time): ``{scheme: [(layer, dB), ...]}``."""
    from qkit.engine import SCHEMES, IntegerModel

    return {name: layer_sqnr(IntegerModel.from_float(model, calibration, SCHEMES[name],
                                                     batch=batch), x) for name in schemes}
