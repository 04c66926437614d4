"""Measurement in one place: timing with controlled threads (`timing`), the kernel benchmark
(`bench`), the GEMM versions of notebook 04 (`speed`), the accuracy / size / latency table
(`eval`), the precompute drivers of the heavy notebook results (one module each) and their
checksummed cache (`results`).
"""
