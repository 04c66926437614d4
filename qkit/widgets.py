"""Widget explorers: controls around the pure functions of `qkit.compare` and `qkit.plots`.

Every explorer keeps its latest numbers on ``.result`` and its figure on
``.figure`` so tests (and curious students) can read them without a browser.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from qkit.compare import GRANULARITIES, quantize_report
from qkit.plots import weights_and_error


class Explorer(W.VBox):
    """Controls on top, a redrawn figure below; ``draw(**values) -> (figure, numbers)``."""

    def __init__(self, controls: dict, draw, caption: str = ""):
        self.controls, self.draw = controls, draw
        self.out = W.Output()
        self.label = W.HTML()
        self.result, self.figure = None, None
        for c in controls.values():
            c.observe(self._update, names="value")
        super().__init__([W.HBox(list(controls.values())), self.label, self.out])
        self.caption = caption
        self._update()

    def _update(self, change=None):
        values = {k: c.value for k, c in self.controls.items()}
        if self.figure is not None:
            plt.close(self.figure)
        self.figure, self.result = self.draw(**values)
        self.label.value = self.caption.format(**self.result) if self.caption else ""
        with self.out:
            self.out.clear_output(wait=True)
            display(self.figure)


def bits_explorer(w) -> Explorer:
    """Bits, granularity and symmetry of a weight matrix's int grid: size and error, live."""
    controls = {
        "bits": W.IntSlider(value=8, min=2, max=8, description="bits", continuous_update=False),
        "granularity": W.ToggleButtons(options=list(GRANULARITIES), value="per-tensor"),
        "symmetric": W.Checkbox(value=True, description="symmetric"),
    }

    def draw(bits, granularity, symmetric):
        report = quantize_report(w, bits, granularity, symmetric)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        numbers = weights_and_error(report, w, axes)
        numbers.update(bytes=report["bytes"], fp32_bytes=report["fp32_bytes"])
        return fig, numbers

    caption = ("<b>{bytes:,}</b> bytes (fp32: {fp32_bytes:,}) &nbsp; SQNR <b>{sqnr_db:.1f} dB</b>"
               " &nbsp; max |error| {max_abs_error:.4f}")
    return Explorer(controls, draw, caption)
