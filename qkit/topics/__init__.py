"""What the lessons compute: one module per topic, pure functions the notebooks and the lab
widgets call (range mapping, noise, scheme comparisons, energy, mixed precision, QAT,
SmoothQuant). Nothing here draws or times; drawing is `qkit.lab`, timing `qkit.studies`.
"""
