"""How to quantize a model: `Scheme` (weight bits and granularity, the activation observer,
the calibration methods) and the named schemes of the evaluation table, `SCHEMES`."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

from qkit.core.observers import OBSERVERS

ROUNDINGS = ("nearest", "adaptive")
RANGE_LOSSES = ("kl", "mse")


def _pairs(layer_bits) -> list:
    try:
        pairs = [(str(name), bits) for name, bits in layer_bits]
    except (TypeError, ValueError):
        raise TypeError(f"layer_bits must be ((op name, weight bits), ...), got "
                        f"{layer_bits!r}") from None
    return pairs


@dataclass(frozen=True)
class Scheme:
    """How to quantize: weight bits and granularity, and the activation observer.

    Everything after ``weight_bits`` is keyword-only (``Scheme(4, per_channel=False)``): a
    positional run of flags once switched the wrong one on.
    """

    weight_bits: int = 8
    _: KW_ONLY
    per_channel: bool = True
    observer: str = "minmax"  # a qkit.core.observers name, or "loss_aware" (qkit.engine.ranges)
    range_loss: str = "kl"  # what "loss_aware" minimises at the output: "kl" or "mse"
    bias_correction: bool = False  # Nagel et al. 2019, empirical: see IntegerModel._weights
    equalize: bool = False  # cross-layer equalization first (qkit.engine.equalize)
    layer_bits: tuple = ()  # mixed precision: ((op name, weight bits), ...) overrides
    rounding: str = "nearest"  # or "adaptive": qkit.engine.adaround (AdaRound's local loss)

    def __post_init__(self):
        for name, bits in (("weight_bits", self.weight_bits),
                           *((f"layer_bits[{n!r}]", b) for n, b in _pairs(self.layer_bits))):
            if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
                raise ValueError(f"{name} must be an integer from 2 to 8 (weights are stored "
                                 f"in int8), got {bits!r}")
        for name, value, allowed in (
                ("observer", self.observer, (*sorted(OBSERVERS), "loss_aware")),
                ("range_loss", self.range_loss, RANGE_LOSSES),
                ("rounding", self.rounding, ROUNDINGS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
        for name in ("per_channel", "bias_correction", "equalize"):
            if not isinstance(getattr(self, name), bool | int):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def bits_for(self, name: str) -> int:
        return dict(self.layer_bits).get(name, self.weight_bits)

    @property
    def label(self) -> str:
        extra = (" + CLE" if self.equalize else "") + (
            " + loss-aware ranges" if self.observer == "loss_aware" else "") + (
            " + adaptive rounding" if self.rounding == "adaptive" else "") + (
            " + bias correction" if self.bias_correction else "")
        return f"W{self.weight_bits}A8 {'per-channel' if self.per_channel else 'per-tensor'}{extra}"


SCHEMES = {
    "w8a8-per-tensor": Scheme(8, per_channel=False),
    "w8a8-per-channel": Scheme(8, per_channel=True),
    "w4a8-per-channel": Scheme(4, per_channel=True),
    "w8a8-per-tensor-bc": Scheme(8, per_channel=False, bias_correction=True),
    "w8a8-per-tensor-cle-bc": Scheme(8, per_channel=False, bias_correction=True, equalize=True),
    "w8a8-per-channel-pct-bc": Scheme(8, per_channel=True, observer="percentile",
                                      bias_correction=True),
    "w4a8-per-channel-bc": Scheme(4, per_channel=True, bias_correction=True),
    "w8a8-per-channel-ada": Scheme(8, per_channel=True, rounding="adaptive"),
    "w8a8-per-channel-pct-ada-bc": Scheme(8, per_channel=True, observer="percentile",
                                          bias_correction=True, rounding="adaptive"),
    "w4a8-per-channel-ada-bc": Scheme(4, per_channel=True, bias_correction=True,
                                      rounding="adaptive"),
    "w8a8-per-channel-la-ada-bc": Scheme(8, per_channel=True, observer="loss_aware",
                                         bias_correction=True, rounding="adaptive"),
    "w8a8-per-tensor-cle-la-ada-bc": Scheme(8, per_channel=False, observer="loss_aware",
                                            bias_correction=True, equalize=True,
                                            rounding="adaptive"),
}


_SUFFIXES = {"cle": "CLE", "pct": "percentile ranges", "la": "loss-aware ranges",
             "ada": "adaptive rounding", "bc": "bias correction"}


def scheme_parts(name: str) -> dict:
    """A scheme name of the evaluation table split into what it means: ``engine`` ("qkit" or
    "PyTorch"), ``weights`` ("8-bit per channel"), ``activations`` ("8-bit", "float",
    "8-bit dynamic") and ``methods`` (CLE, percentile ranges, ...)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a scheme name (str), got {type(name).__name__}")
    if name == "fp32":
        return {"engine": "PyTorch", "weights": "float32", "activations": "float32",
                "methods": []}
    parts = name.split("-")
    engine = "qkit"
    if parts[0] == "torch":
        engine, parts = "PyTorch", parts[1:]
        if parts[:1] == ["ptq"]:
            parts = parts[1:]
    dynamic = parts[:1] == ["dynamic"]
    parts = parts[1:] if dynamic else parts
    head = parts[0] if parts else ""
    w_bits, _, a_bits = head[1:].partition("a")
    if not (head.startswith("w") and w_bits.isdigit() and a_bits.isdigit()):
        raise ValueError(f"name must look like w8a8-per-channel[-cle][-pct][-la][-ada][-bc], "
                         f"got {name!r}")
    rest, grain = parts[1:], " per channel" if dynamic else ""
    if rest[:1] == ["per"] and len(rest) > 1 and rest[1] in ("tensor", "channel"):
        grain, rest = f" per {rest[1]}", rest[2:]
    elif rest and rest[0][:1] == "g" and rest[0][1:].isdigit():
        grain, rest = f" in groups of {rest[0][1:]}", rest[1:]
    unknown = [p for p in rest if p not in _SUFFIXES]
    if unknown:
        raise ValueError(f"name {name!r}: unknown part(s) {unknown}; suffixes are "
                         f"{', '.join(f'-{k} ({v})' for k, v in _SUFFIXES.items())}")
    acts = "float" if a_bits == "16" else f"{a_bits}-bit" + (" dynamic" if dynamic else "")
    return {"engine": engine, "weights": f"{w_bits}-bit{grain}", "activations": acts,
            "methods": [_SUFFIXES[p] for p in rest]}


def describe(name: str) -> str:
    """A scheme name of the evaluation table in words: ``"w8a8-per-tensor-cle-bc"`` ->
    ``"8-bit weights per tensor, 8-bit activations + CLE + bias correction"``.

    >>> describe("w4a16-per-channel-ada")
    '4-bit weights per channel, float activations + adaptive rounding'
    >>> describe("torch-dynamic-w8a8")
    'PyTorch: 8-bit weights per channel, 8-bit dynamic activations'
    """
    p = scheme_parts(name)
    if name == "fp32":
        return "float32 (the reference)"
    engine = "PyTorch: " if p["engine"] == "PyTorch" else ""
    extra = "".join(f" + {m}" for m in p["methods"])
    bits, _, grain = p["weights"].partition(" ")
    weights = f"{bits} weights" + (f" {grain}" if grain else "")
    return f"{engine}{weights}, {p['activations']} activations{extra}"
