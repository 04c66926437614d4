"""`Explorer`: controls on top, a figure below, redrawn when a control changes.

Every explorer keeps its latest numbers on ``.result`` and its figure on ``.figure`` so
tests (and curious students) can read them without a browser. The explorers themselves are
in `qkit.lab.widgets`: each wires controls to a pure function of `qkit.topics` and a figure
of `qkit.lab.plots`.
"""

from __future__ import annotations

import io

import ipywidgets as W
import matplotlib.pyplot as plt


class Explorer(W.VBox):
    """Controls on top, a redrawn figure below; ``draw(**values) -> (figure, numbers)``.

    The figure is shown as a PNG in an ``ipywidgets.Image``: updating it is one property
    change. (Capturing ``display(fig)`` in an ``Output`` widget made Voila's executor wait
    forever on some renders; an Image involves no output capture at all.)
    """

    def __init__(self, controls: dict, draw, caption: str = ""):
        self.controls, self.draw = controls, draw
        self.image = W.Image(format="png")
        self.label = W.HTML()
        self.result, self.figure = None, None
        for c in controls.values():
            c.observe(self._update, names="value")
        super().__init__([W.HBox(list(controls.values())), self.label, self.image])
        self.caption = caption
        self._update()

    def _update(self, change=None):
        values = {k: c.value for k, c in self.controls.items()}
        self.figure, self.result = self.draw(**values)
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", bbox_inches="tight")
        # closed for pyplot (the Figure object stays usable): otherwise the inline backend would
        # show it a second time, below the widget, when the cell finishes
        plt.close(self.figure)
        self.label.value = self.caption.format(**self.result) if self.caption else ""
        self.image.value = buf.getvalue()


def figure(rows: int = 1, cols: int = 1, size=(10, 3.2), **kwargs):
    """A new figure and its axes (what every explorer's ``draw`` starts from)."""
    return plt.subplots(rows, cols, figsize=size, **kwargs)


def slider(low: int, high: int, value: int, description: str) -> W.IntSlider:
    """An integer slider that redraws when released (every explorer recomputes on change)."""
    return W.IntSlider(value=value, min=low, max=high, description=description,
                       continuous_update=False)
