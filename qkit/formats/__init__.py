"""Number grids beyond the uniform integer one: non-uniform codebooks (k-means,
power-of-two, NormalFloat) as codes + codebook + block scales.
"""
