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


def _alternatives(control) -> list:
    """Values to move a control to from its default: every other option of a menu (at most
    three), the other state of a checkbox, both ends of a slider, another text and none."""
    start = control.value
    if hasattr(control, "options"):
        options = [o[1] if isinstance(o, tuple) else o for o in control.options]
        others = [o for o in options if o != start]
        return others if len(others) <= 3 else [others[0], others[len(others) // 2], others[-1]]
    if isinstance(start, bool):
        return [not start]
    if isinstance(start, str):  # a text box: a different text, and an empty one
        return [start + " and", ""]
    return [v for v in (control.min, control.max) if v != start]


def _titles(fig) -> list[str]:
    out = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) else []
    return out + [ax.get_title() for ax in fig.axes]


def control_effects(explorer: Explorer) -> list[dict]:
    """Move each control alone from its default to each alternative value and record what
    changed on screen: the figure (PNG bytes), the caption, the figure's titles. Each control
    is put back before the next. One row per (control, value), with ``visible``: the figure
    changed and the caption or a title says how."""
    rows = []
    for name, control in explorer.controls.items():
        start = control.value
        before = (explorer.image.value, explorer.label.value, _titles(explorer.figure))
        for value in _alternatives(control):
            control.value = value
            after = (explorer.image.value, explorer.label.value, _titles(explorer.figure))
            row = {"control": name, "value": value, "image": after[0] != before[0],
                   "caption": after[1] != before[1], "titles": after[2] != before[2]}
            row["visible"] = row["image"] and (row["caption"] or row["titles"])
            rows.append(row)
            control.value = start
    return rows
