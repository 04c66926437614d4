"""This CPU's arithmetic peak, measured: a loop of independent multiply-adds in registers.

The benchmark reports qkit's GOP/s as a share of these numbers. Each loop
keeps 12 independent accumulators (enough to hide the instruction's
latency), touches no memory, and counts a multiply-add as two operations.
"""

from __future__ import annotations

import time

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from qkit.kernels.vnni import vnni_available

CHAINS = 12


def _throughput_loop(name: str, vec: ir.VectorType, n_args: int):
    """An intrinsic running ``iters`` rounds of CHAINS independent ``name`` calls."""

    @intrinsic
    def loop(typingctx, iters):
        sig = types.int64(iters)

        def codegen(context, builder, signature, args):
            fn = builder.module.declare_intrinsic(name, fnty=ir.FunctionType(vec, [vec] * n_args))
            one = ir.Constant(vec, [1] * vec.count)
            entry = builder.block
            body = builder.append_basic_block("body")
            done = builder.append_basic_block("done")
            builder.branch(body)
            builder.position_at_end(body)
            i = builder.phi(args[0].type)
            i.add_incoming(args[0].type(0), entry)
            accs = [builder.phi(vec) for _ in range(CHAINS)]  # phis first, then the work
            for c, acc in enumerate(accs):
                acc.add_incoming(ir.Constant(vec, [c + 1] * vec.count), entry)
            new = [builder.call(fn, [acc] + [one] * (n_args - 1)) for acc in accs]
            nxt = builder.add(i, i.type(1))
            i.add_incoming(nxt, body)
            for acc, v in zip(accs, new, strict=False):
                acc.add_incoming(v, body)
            builder.cbranch(builder.icmp_signed("<", nxt, args[0]), body, done)
            builder.position_at_end(done)
            total = new[0]
            for v in new[1:]:
                total = builder.add(total, v)
            lane = builder.extract_element(total, ir.IntType(32)(0))
            return builder.sext(lane, ir.IntType(64))

        return sig, codegen

    return loop


_I32 = ir.IntType(32)
_vpdpbusd = _throughput_loop("llvm.x86.avx512.vpdpbusd.512", ir.VectorType(_I32, 16), 3)


@intrinsic
def _vpmaddwd_loop(typingctx, iters):
    """AVX2 exact int8 path: ``vpmaddwd`` (16 int16 products, pairwise added) + ``vpaddd``."""
    sig = types.int64(iters)

    def codegen(context, builder, signature, args):
        v8, v16 = ir.VectorType(_I32, 8), ir.VectorType(ir.IntType(16), 16)
        fn = builder.module.declare_intrinsic("llvm.x86.avx2.pmadd.wd",
                                              fnty=ir.FunctionType(v8, [v16, v16]))
        entry = builder.block
        body = builder.append_basic_block("body")
        done = builder.append_basic_block("done")
        builder.branch(body)
        builder.position_at_end(body)
        i = builder.phi(args[0].type)
        i.add_incoming(args[0].type(0), entry)
        accs = [builder.phi(v8) for _ in range(CHAINS)]
        new = []
        for c, acc in enumerate(accs):
            acc.add_incoming(ir.Constant(v8, [c] * 8), entry)
            x = builder.bitcast(acc, v16)  # depends on the chain, so nothing is hoisted
            new.append(builder.add(acc, builder.call(fn, [x, x])))
        nxt = builder.add(i, i.type(1))
        i.add_incoming(nxt, body)
        for acc, v in zip(accs, new, strict=False):
            acc.add_incoming(v, body)
        builder.cbranch(builder.icmp_signed("<", nxt, args[0]), body, done)
        builder.position_at_end(done)
        return builder.sext(builder.extract_element(new[0], _I32(0)), ir.IntType(64))

    return sig, codegen


@njit(cache=True)
def _run_vpdpbusd(iters):
    return _vpdpbusd(iters)


@njit(cache=True)
def _run_vpmaddwd(iters):
    return _vpmaddwd_loop(iters)


def int8_peak_gops(seconds: float = 0.2) -> tuple[float, str]:
    """Measured single-core int8 GOP/s of the exact path qkit uses, and that path's name."""
    if vnni_available():
        run, ops, name = _run_vpdpbusd, CHAINS * 64 * 2, "vpdpbusd zmm (AVX-512 VNNI)"
    else:
        run, ops, name = _run_vpmaddwd, CHAINS * 16 * 2, "vpmaddwd + vpaddd ymm (AVX2)"
    run(10)
    iters = 1000
    while True:
        t0 = time.perf_counter()
        run(iters)
        dt = time.perf_counter() - t0
        if dt > seconds / 5:
            break
        iters *= 4
    best = min(_timed(run, iters) for _ in range(5))
    return float(iters * ops / best / 1e9), name


def _timed(run, iters):
    t0 = time.perf_counter()
    run(iters)
    return time.perf_counter() - t0
