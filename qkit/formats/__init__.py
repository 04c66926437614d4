"""Number grids beyond the uniform integer one.

* `qkit.formats.floats`    low-bit float elements (FP8, FP6, FP4, E8M0), bit for bit
  ``ml_dtypes``: ``round_to_format(x, fmt)``, ``encode``, ``decode``, ``code_table``;
* `qkit.formats.blocks`    block formats with shared scales: MXFP8/MXFP6/MXFP4/MXINT8 (OCP
  Microscaling v1.0) and NVFP4, with their packed bytes;
* `qkit.formats.nonuniform` non-uniform codebooks (k-means, power-of-two, NormalFloat) as
  codes + codebook + block scales.
"""

from qkit.formats.floats import FORMATS, code_table, decode, encode, round_to_format

__all__ = ["FORMATS", "code_table", "decode", "encode", "round_to_format"]
