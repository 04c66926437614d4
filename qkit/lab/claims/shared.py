"""What several notebooks' claims measure on: loaded once per process."""

from __future__ import annotations

from functools import cache


@cache
def mnist():
    """The kit's MNIST CNN, its 256 calibration images and the 1,000 test images with labels,
    as the notebooks set them up: ``(model, calibration, x_test, y_test)``."""
    from qkit import data
    from qkit.models import mnist_cnn

    split = data.mnist5k()
    return (mnist_cnn.load(), mnist_cnn.to_input(split["x_train"][:256]).numpy(),
            mnist_cnn.to_input(split["x_test"]).numpy(), split["y_test"])


@cache
def stored_rows(model: str, metric: str) -> dict:
    """``{scheme: value}`` of one model and metric in the stored table of `python -m qkit eval`."""
    from qkit.studies import results

    return {r["scheme"]: r["value"] for r in results.load("models")["rows"]
            if r["model"] == model and r["metric"] == metric}


@cache
def smollm2():
    """The SmolLM2 float reference, loaded once (0.5 GB)."""
    from qkit.models import smollm2 as S

    return S.load()
