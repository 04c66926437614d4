"""The LLVM-IR building blocks of every micro-kernel, written once.

numba has no vector types, so qkit's fast kernels emit LLVM IR through
``numba.extending.intrinsic``: a kernel's ``codegen`` receives an IR builder and its
arguments, and calls these blocks. Each block opens with the Python it stands for.

    splat(b, q, V)             V([q] * lanes)            broadcast one scalar
    vector_at(b, data, i, V)   &data[i] as a V*          an unaligned vector pointer
    loop(b, n, carried, body)  for i in range(n): carried = body(i, carried)
    store_rows(...)            out[row + r, col:col + lanes] = vectors[r]
    RequantizeF32              clamp(rne(f32(f32(acc + off) + bias) * mult) + zp, qmin, qmax)

The x86 instructions are declared by their LLVM names (`instruction`); the NumPy model of
what each one computes is `qkit.reference.simd`, and a test checks one IR tile against it.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types

I8, I16, I32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
F32 = ir.FloatType()
V16I32 = ir.VectorType(I32, 16)  # one zmm of int32
V8I32 = ir.VectorType(I32, 8)  # one ymm of int32
V16I8 = ir.VectorType(I8, 16)
V64I8 = ir.VectorType(I8, 64)
V16F32 = ir.VectorType(F32, 16)

# LLVM name -> (result, operands) of the x86 instructions qkit uses
_INSTRUCTIONS = {
    "llvm.x86.avx512.vpdpbusd.512": (V16I32, [V16I32] * 3),  # vpdpbusd zmm
    "llvm.x86.avx2.pmadd.wd": (V8I32, [ir.VectorType(I16, 16)] * 2),  # vpmaddwd ymm
    "llvm.x86.avx2.pmadd.ub.sw": (ir.VectorType(I16, 16), [ir.VectorType(I8, 32)] * 2),
    "llvm.x86.avx512.max.ps.512": (V16F32, [V16F32, V16F32, I32]),
    "llvm.x86.avx512.min.ps.512": (V16F32, [V16F32, V16F32, I32]),
    "llvm.x86.avx512.mask.cvtps2dq.512": (V16I32, [V16F32, V16I32, I16, I32]),
    "llvm.x86.avx512.packssdw.512": (ir.VectorType(I16, 32), [V16I32, V16I32]),
    "llvm.x86.avx512.packsswb.512": (V64I8, [ir.VectorType(I16, 32)] * 2),
    "llvm.x86.avx512.packuswb.512": (V64I8, [ir.VectorType(I16, 32)] * 2),
}


def instruction(builder, name: str):
    """The declared intrinsic ``name`` (a key of ``_INSTRUCTIONS``) in the builder's module."""
    result, operands = _INSTRUCTIONS[name]
    return builder.module.declare_intrinsic(name, fnty=ir.FunctionType(result, operands))


def vpdpbusd(builder):
    """``acc[i] += sum_j u8(a[4i + j]) * s8(b[4i + j])`` on 16 int32 lanes, exact."""
    return instruction(builder, "llvm.x86.avx512.vpdpbusd.512")


def arguments(context, builder, signature, args) -> list:
    """An intrinsic's arguments as IR values: arrays as numba array structs (``.data``,
    ``.shape``), tuples as lists of the same, scalars as they are."""
    return [_value(context, builder, t, v) for t, v in zip(signature.args, args, strict=True)]


def _value(context, builder, typ, value):
    if isinstance(typ, types.BaseTuple):
        return [_value(context, builder, t, builder.extract_value(value, i))
                for i, t in enumerate(typ.types)]
    if isinstance(typ, types.Array):
        return context.make_array(typ)(context, builder, value)
    return value


def splat(builder, scalar, vtype: ir.VectorType):
    """``vtype([scalar] * lanes)``: insert into lane 0, then shuffle lane 0 everywhere."""
    lanes = vtype.count
    first = builder.insert_element(ir.Constant(vtype, None), scalar, I32(0))
    return builder.shuffle_vector(first, ir.Constant(vtype, None),
                                  ir.Constant(ir.VectorType(I32, lanes), [0] * lanes))


def vector_at(builder, data, index, vtype: ir.VectorType):
    """Pointer to the ``vtype`` vector starting at element ``index`` of an array's data."""
    ptr = builder.gep(builder.bitcast(data, vtype.element.as_pointer()), [index])
    return builder.bitcast(ptr, vtype.as_pointer())


def zeros(vtype: ir.VectorType):
    return ir.Constant(vtype, None)


def loop(builder, count, carried: list, body, name: str, *, start=None, step=None,
         rolled: bool = False, guarded: bool = False) -> list:
    """``i = start; while True: carried = body(i, carried); i += step; if i >= count: break``.

    A do-while loop (``count > start`` is assumed) unless ``guarded``, which skips it when
    ``count <= start``. ``carried`` are the values the loop updates (accumulators), given
    their initial values; the result is their values after the loop. ``rolled`` keeps LLVM
    from unrolling it (`keep_rolled`).
    """
    index_type = count.type
    start = index_type(0) if start is None else start
    step = index_type(1) if step is None else step
    entry = builder.block
    head = builder.append_basic_block(name)
    done = builder.append_basic_block(name + "_done")
    if guarded:
        builder.cbranch(builder.icmp_signed("<", start, count), head, done)
    else:
        builder.branch(head)
    builder.position_at_end(head)
    i = builder.phi(index_type)
    phis = [builder.phi(v.type) for v in carried]
    i.add_incoming(start, entry)
    for phi, v in zip(phis, carried, strict=True):
        phi.add_incoming(v, entry)
    new = body(i, phis)
    latch = builder.block  # the body may have added blocks of its own
    i_next = builder.add(i, step)
    i.add_incoming(i_next, latch)
    for phi, v in zip(phis, new, strict=True):
        phi.add_incoming(v, latch)
    back = builder.cbranch(builder.icmp_signed("<", i_next, count), head, done)
    if rolled:
        keep_rolled(builder, back, name)
    builder.position_at_end(done)
    if not guarded:
        return list(new)
    results = []
    for v0, v in zip(carried, new, strict=True):
        merged = builder.phi(v.type)
        merged.add_incoming(v0, entry)
        merged.add_incoming(v, latch)
        results.append(merged)
    return results


def keep_rolled(builder, branch, name: str) -> None:
    """Mark ``branch`` (a loop's back edge) ``llvm.loop.unroll.disable``: unrolled by two, the
    8-row VNNI tiles need more than 32 zmm registers and spill accumulators inside the loop."""
    module = builder.module
    flag = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    unique = ir.MetaDataString(module, f"qkit.{name}.{len(module.metadata)}")
    loop_id = module.add_metadata([unique])
    loop_id.operands = (loop_id, flag)  # a loop ID refers to itself (LLVM LangRef, llvm.loop)
    branch.set_metadata("llvm.loop", loop_id)


def store_rows(builder, vectors: list, out_data, out_row, ldc, col0, rows: int, *,
               last_if_inside: bool = False) -> None:
    """``out[out_row + r, col0 + lanes * j : ...] = vectors[per_row * r + j]`` for each row.

    ``ldc`` is the output's row length. With ``last_if_inside`` the last vector of each row
    is stored only where the row has room for it (``col0 + per_row * lanes <= ldc``), so an
    output whose width is a multiple of one vector needs no padded copy.
    """
    per_row = len(vectors) // rows
    vtype = vectors[0].type
    lanes = vtype.count

    def store(r, j):
        base = builder.add(builder.mul(builder.add(out_row, out_row.type(r)), ldc), col0)
        index = builder.add(base, base.type(lanes * j))
        builder.store(vectors[per_row * r + j], vector_at(builder, out_data, index, vtype),
                      align=1)

    full = per_row - 1 if last_if_inside else per_row
    for r in range(rows):
        for j in range(full):
            store(r, j)
    if last_if_inside:
        end = builder.add(col0, col0.type(per_row * lanes))
        with builder.if_then(builder.icmp_signed("<=", end, ldc)):
            for r in range(rows):
                store(r, per_row - 1)


class RequantizeF32:
    """``y = clamp(rne(f32(f32(acc + col_off) + bias) * mult) + zp, qmin, qmax)``, 16 int32
    sums at a time: fbgemm's float32 requantization, in zmm registers.

    Clamping to ``[qmin - zp, qmax - zp]`` before rounding gives the same result (the bounds
    are integers) and keeps the conversion in range; the x86 instructions are used as they
    are (``vmaxps``, ``vminps``, ``vcvtps2dq`` with round-to-nearest-even embedded) because
    LLVM's generic ``maxnum`` adds NaN handling that cannot occur here (the sum is an
    integer, bias and multiplier are checked finite).

    ``epilogue`` is the kernel's epilogue argument unpacked by `arguments`:
    ``[col_off (int32), bias (float32), mult (float32), zp, qmin, qmax]``.
    """

    def __init__(self, builder, epilogue):
        col_off, bias, mult, zp, qmin, qmax = epilogue
        self.b = builder
        self.per_column = [(col_off.data, V16I32), (bias.data, V16F32), (mult.data, V16F32)]
        self.max = instruction(builder, "llvm.x86.avx512.max.ps.512")
        self.min = instruction(builder, "llvm.x86.avx512.min.ps.512")
        self.to_int = instruction(builder, "llvm.x86.avx512.mask.cvtps2dq.512")
        zp_f, qmin_f, qmax_f = (builder.sitofp(v, F32) for v in (zp, qmin, qmax))
        self.low = splat(builder, builder.fsub(qmin_f, zp_f), V16F32)
        self.high = splat(builder, builder.fsub(qmax_f, zp_f), V16F32)
        self.zp = splat(builder, builder.trunc(zp, I32), V16I32)

    def columns(self, col):
        """The per-column vectors (offsets, biases, multipliers) of columns ``col .. + 15``."""
        return [self.b.load(vector_at(self.b, data, col, vtype), align=1)
                for data, vtype in self.per_column]

    def words(self, acc, col_off, bias, mult):
        """16 sums -> the 16 results as int32, each in [qmin, qmax]."""
        b = self.b
        current, nearest_even = I32(4), I32(8)  # max/min do not round; {rn-sae}
        y = b.fmul(b.fadd(b.sitofp(b.add(acc, col_off), V16F32), bias), mult)
        y = b.call(self.min, [b.call(self.max, [y, self.low, current]), self.high, current])
        q = b.call(self.to_int, [y, zeros(V16I32), I16(-1), nearest_even])
        return b.add(q, self.zp)

    def __call__(self, acc, col_off, bias, mult):
        """16 sums -> 16 bytes (<16 x i8>)."""
        return self.b.trunc(self.words(acc, col_off, bias, mult), V16I8)


def data_pointer(builder, data, element: ir.Type = I8):
    """An array's data as a pointer to ``element``."""
    return builder.bitcast(data, element.as_pointer())
