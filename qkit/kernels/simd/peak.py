"""This CPU's arithmetic peak: a loop of independent multiply-adds in registers.

`qkit.studies.timing.int8_peak_gops` times these loops; the benchmark reports qkit's GOP/s
as a share of the result. Each loop keeps 12 independent accumulators (enough to hide the
instruction's latency), touches no memory, and counts a multiply-add as two operations::

    for i in range(iters):
        for c in range(CHAINS):
            acc[c] = vpdpbusd(acc[c], ones, ones)     # or acc[c] += vpmaddwd(acc[c], acc[c])
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from qkit.kernels.simd import ir as sx

CHAINS = 12


@intrinsic
def _vpdpbusd_loop(typingctx, iters):
    """AVX-512 VNNI: ``vpdpbusd`` zmm, 64 u8 x s8 products into 16 int32 per instruction."""
    sig = types.int64(iters)

    def codegen(context, builder, signature, args):
        dot = sx.vpdpbusd(builder)
        one = ir.Constant(sx.V16I32, [1] * 16)
        start = [ir.Constant(sx.V16I32, [c + 1] * 16) for c in range(CHAINS)]
        accs = sx.loop(builder, args[0], start,
                       lambda i, accs: [builder.call(dot, [a, one, one]) for a in accs], "body")
        total = accs[0]
        for v in accs[1:]:
            total = builder.add(total, v)
        return builder.sext(builder.extract_element(total, sx.I32(0)), ir.IntType(64))

    return sig, codegen


@intrinsic
def _vpmaddwd_loop(typingctx, iters):
    """AVX2 exact int8 path: ``vpmaddwd`` (16 int16 products, pairwise added) + ``vpaddd``."""
    sig = types.int64(iters)

    def codegen(context, builder, signature, args):
        pmadd = sx.instruction(builder, "llvm.x86.avx2.pmadd.wd")
        v16 = ir.VectorType(sx.I16, 16)
        start = [ir.Constant(sx.V8I32, [c] * 8) for c in range(CHAINS)]

        def body(i, accs):  # each input depends on its chain, so nothing is hoisted
            return [builder.add(a, builder.call(pmadd, [builder.bitcast(a, v16)] * 2))
                    for a in accs]

        accs = sx.loop(builder, args[0], start, body, "body")
        return builder.sext(builder.extract_element(accs[0], sx.I32(0)), ir.IntType(64))

    return sig, codegen


@njit(cache=True)
def run_vpdpbusd(iters):
    return _vpdpbusd_loop(iters)


@njit(cache=True)
def run_vpmaddwd(iters):
    return _vpmaddwd_loop(iters)
