"""Widget explorers, one line in a notebook each: `signals` (notebooks 00-03), `models`
(notebooks 04-10), `formats` (notebook 11) and `language` (notebook 12). Each wires its
controls to a pure function of `qkit.topics` and a figure of `qkit.lab.plots`;
`qkit.lab.explorer.Explorer` does the redrawing."""

from qkit.lab.explorer import Explorer
from qkit.lab.widgets.formats import block_explorer, float_bits_explorer, rotation_explorer
from qkit.lab.widgets.language import (
    channel_explorer,
    generation_explorer,
    gguf_block_explorer,
    rtn_sweep_explorer,
)
from qkit.lab.widgets.models import (
    budget_explorer,
    energy_explorer,
    grid_explorer,
    ptq_explorer,
    qat_explorer,
    smoothquant_explorer,
    speed_explorer,
)
from qkit.lab.widgets.signals import (
    bits_explorer,
    granularity_explorer,
    image_explorer,
    noise_explorer,
    observer_explorer,
    range_explorer,
    requant_explorer,
)
from qkit.topics.mapping import observer_ranges

__all__ = ["Explorer", "bits_explorer", "block_explorer", "float_bits_explorer",
           "rotation_explorer", "channel_explorer", "gguf_block_explorer",
           "generation_explorer", "rtn_sweep_explorer", "budget_explorer", "energy_explorer",
           "grid_explorer",
           "granularity_explorer", "image_explorer", "noise_explorer", "observer_explorer",
           "observer_ranges", "ptq_explorer", "qat_explorer", "range_explorer",
           "requant_explorer", "smoothquant_explorer", "speed_explorer"]
