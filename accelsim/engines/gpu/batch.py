"""`simulate_batch` of the GPU engine: every kernel's time for one layer on many GPUs at once,
as arrays over the design points.

Points whose descriptions differ only in the machine's numbers (`MACHINE_FIELDS`: SMs, clock,
peaks, DRAM bandwidth, launch overhead, split-K limit, board power) form a group; per group
each kernel's time model of `accelsim.engines.gpu.kernels` runs once on a `kernels.Machine`
whose numbers are arrays over the points (the same formulas the per-point path runs on
floats; tiled-GEMM candidates as a points x candidates array), and the fastest allowed
kernel is picked per point as `count.kernel_times` picks it. A group's kernel times are
memoised by the GEMM dims and the measure of A the kernel reads, so layers of one shape are
timed once. Groups of one point, and any group whose description the time models refuse,
run point by point through `count` (which raises the engine's own error).
`tests/test_batch.py` holds the two paths equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from accelsim.engines.batch import LayerBatch, layer_memo, merged
from accelsim.engines.gpu.config import SIMT_FLOP, TENSOR_FLOP, Config
from accelsim.engines.gpu.count import _MEASURE_COLUMN, _count, choice_warnings
from accelsim.engines.gpu.kernels import (
    DTYPE_BITS,
    BsrKernel,
    CsrKernel,
    DenseKernel,
    Machine,
    RowSkipKernel,
    Times,
    available,
    eligible,
    own_measure,
    times_at,
)
from accelsim.engines.shared_gemm_operand import GemmDims, Operand, operand_for
from accelsim.errors import AccelsimError
from accelsim.workload.layer import Layer

MACHINE_FIELDS = ("name", "num_sms", "clock_mhz", "peak_tflops", "sparse_peak_tflops",
                  "simt_peak_tflops", "memory", "launch_overhead_s", "board_power_w",
                  "split_k_max", "sources", "notes")
"""Fields a group's points may differ in (the rest of the description is the group's)."""


@dataclass(frozen=True)
class Machines:
    """A group of P GPUs: their `kernels.Machine` with the numbers as arrays over the points,
    and what the batch reads of each point besides."""

    machine: Machine
    """Per-GPU numbers as arrays over the points; the rest shared."""
    first: Machine
    """The first point's `kernels.Machine` (what `kernels.available` reads is the group's)."""
    clock_hz: np.ndarray
    tensor_peak_tflops: np.ndarray
    """Each point's `peak_tflops` at its dtype, TFLOP/s."""
    simt_peak_tflops: np.ndarray
    """Each point's `simt_peak_tflops` at its dtype, TFLOP/s."""
    memo: dict = field(default_factory=dict, compare=False, repr=False)
    """Kernel `Times` of this group by (kernel name, GEMM dims, the measure the kernel reads):
    layers of one shape (and density) timed once."""

    @classmethod
    def of(cls, archs: Sequence[Config]) -> Machines:
        mcs = [a.machine() for a in archs]
        sparse = [m.sparse_flops_per_s for m in mcs]
        first = mcs[0]
        machine = Machine(
            dtype=first.dtype, element_bytes=first.element_bytes,
            tensor_flops_per_s=np.array([m.tensor_flops_per_s for m in mcs]),
            sparse_flops_per_s=None if sparse[0] is None else np.array(sparse, dtype=float),
            simt_flops_per_s=np.array([m.simt_flops_per_s for m in mcs]),
            dram_bytes_per_s=np.array([m.dram_bytes_per_s for m in mcs]),
            launch_s=np.array([m.launch_s for m in mcs]),
            num_sms=np.array([m.num_sms for m in mcs]), tiles=first.tiles,
            split_k_max=np.array([m.split_k_max for m in mcs]), acc_bytes=first.acc_bytes)
        return cls(machine=machine, first=first, clock_hz=np.array([a.clock_hz for a in archs]),
                   tensor_peak_tflops=np.array([a.peak_tflops[a.dtype] for a in archs]),
                   simt_peak_tflops=np.array([a.simt_peak_tflops[a.dtype] for a in archs]))


_READS_MEASURE = (CsrKernel, BsrKernel, RowSkipKernel)
"""Kernels whose time depends on their own measure of A (`own_measure`)."""
_MEMO_SIZE = 4096
"""Most kernel `Times` one group keeps (a group seen on many workloads starts afresh)."""


def _times_of(name: str, k: object, d: GemmDims, measure: float, pm: Machines,
              dense: DenseKernel) -> Times:
    """`kernels.time_at` on every point of the group, from the group's memo where this kernel
    was timed on the same dims (and measure, for kernels that read it)."""
    key = (name, d, measure if isinstance(k, _READS_MEASURE) else None)
    hit = pm.memo.get(key)
    if hit is None:
        if len(pm.memo) >= _MEMO_SIZE:
            pm.memo.clear()
        hit = pm.memo[key] = times_at(name, k, d, measure, pm.machine, dense)
    return hit


def group_batch(layer: Layer, archs: Sequence[Config], op: Operand,
                pm: Machines) -> LayerBatch:
    """One group's points (see module docstring; `pm` their machines), column by column as
    `count._count` gives them in batch mode (no break-even columns, no curves)."""
    first = archs[0]
    n = len(archs)
    dense = first.dense_kernel
    times: dict[str, Times] = {}
    columns: dict[str, list] = {"a_density": [op.density] * n}
    allowed: list[str] = []
    for name, k in first.kernels.items():
        measure = own_measure(k, op)
        column = _MEASURE_COLUMN.get(type(k))
        if column:
            columns[f"{column}_{name}"] = [measure] * n
        if not available(k, pm.first):
            continue
        times[name] = _times_of(name, k, op.dims, measure, pm, dense)
        if eligible(k, op):
            allowed.append(name)
    columns["dense_algorithm"] = times["dense"].algorithms(n)
    for name in first.kernels:
        columns[f"time_{name}_s"] = (np.broadcast_to(times[name].total_s, (n,)).astype(float)
                                     if name in times else np.full(n, math.nan))
    ranked = sorted(allowed, key=lambda a: a != "dense")  # ties go to dense, then list order
    picked = [times[a] for a in ranked]
    pick = np.argmin(np.array([t.total_s for t in picked]), axis=0)
    best_kernel = [ranked[j] for j in pick.tolist()]
    columns["best_kernel"] = best_kernel

    points = np.arange(n)

    def chosen(field: str) -> np.ndarray:
        stacked = np.array([np.broadcast_to(getattr(t, field), (n,)) for t in picked])
        return stacked[pick, points]

    def of_best(field: str, dtype: type = float) -> np.ndarray:
        return np.array([getattr(t, field) for t in picked], dtype=dtype)[pick]

    total_s, compute_s, memory_s = chosen("total_s"), chosen("compute_s"), chosen("memory_s")
    tensor = chosen("tensor")
    read, write = chosen("read_bytes"), chosen("write_bytes")
    flops = of_best("flops")
    macs_done = of_best("macs_done", np.int64)
    columns["weight_read_bytes"] = of_best("weight_read_bytes")
    cycles = total_s * pm.clock_hz
    compute_cycles = compute_s * pm.clock_hz
    peak = np.where(tensor, pm.tensor_peak_tflops, pm.simt_peak_tflops) * 1e12
    with np.errstate(divide="ignore", invalid="ignore"):
        utilization = np.where(total_s != 0, np.minimum(1.0, flops / (total_s * peak)), 0.0)
    dram = first.dram().name
    reads, writes = f"{dram}.read_bytes", f"{dram}.write_bytes"
    warnings: list[list[str]] = [[] for _ in range(n)]
    for i in np.flatnonzero(pick != ranked.index("dense")).tolist():
        point_times = {name: t.point(i) for name, t in times.items()}
        point_columns = {c: v[i] for c, v in columns.items()}
        warnings[i] = choice_warnings(archs[i], point_times, point_columns)
    macs = np.full(n, layer.macs, dtype=np.int64)
    return LayerBatch(
        cycles=cycles, compute_cycles=compute_cycles,
        stall_cycles=np.maximum(0.0, cycles - compute_cycles), macs_dense=macs,
        macs_done=macs_done, macs_skipped=macs - macs_done, macs_gated=np.zeros(n, dtype=np.int64),
        dram_bytes=read + write, utilization=utilization, memory_bound=memory_s > compute_s,
        engine_mode=["trace" if layer.has_trace else "statistical"] * n,
        actions={TENSOR_FLOP: np.where(tensor, flops, 0.0), SIMT_FLOP: np.where(tensor, 0.0, flops),
                 reads: read, writes: write},
        absent={TENSOR_FLOP: ~tensor, SIMT_FLOP: tensor},
        columns=columns, warnings=warnings,
        action_order=_orders(tensor, reads, writes))


def _orders(tensor: np.ndarray, reads: str, writes: str) -> list[tuple[str, ...]]:
    """Each point's action order: its FLOP unit's action, then the DRAM reads and writes (one
    tuple object per unit, as `interned` leaves them)."""
    on_tensor, on_simt = (TENSOR_FLOP, reads, writes), (SIMT_FLOP, reads, writes)
    return [on_tensor if t else on_simt for t in tensor.tolist()]


def group_key(arch: Config) -> str:
    """What the points of one group share (see module docstring)."""
    dram = arch.dram()
    return "|".join((arch.model_dump_json(exclude=set(MACHINE_FIELDS)), dram.name,
                     str(arch.dtype in arch.sparse_peak_tflops), str(DTYPE_BITS[arch.dtype])))


def simulate_batch(layer: Layer, archs: Sequence[Config]) -> LayerBatch:
    """`simulate` on many design points, the same counts and totals: the layer's operand
    statistics measured once per workload for all points, every kernel timed on a group of
    points that differ only in machine numbers at once (see the module docstring), and no
    break-even columns or curves (per-layer detail that no total needs). Points of no group
    run one by one, each kernel timed once per distinct machine."""
    stats = layer_memo(layer)
    if "operand" not in stats:
        stats["operand"] = operand_for(layer)
    op = stats["operand"]
    parts: list[tuple[list[int], LayerBatch]] = []
    memo: dict = {}
    for idx, machines in _groups(archs):
        part = None
        if machines is not None:
            try:
                part = group_batch(layer, [archs[i] for i in idx], op, machines)
            except AccelsimError:  # the point-by-point count raises the engine's own error
                part = None
        if part is None:
            part = LayerBatch.from_results([_count(layer, archs[i], op, memo) for i in idx])
        if len(idx) == len(archs):
            return part
        parts.append((idx, part))
    return merged(parts, len(archs))


_GROUPS: dict[int, tuple[Sequence[Config], list]] = {}
"""Groups (`_groups`) of the last few archs sequences a batch saw (a sweep's points and their
dense equivalents, for every layer of a workload)."""


def _groups(archs: Sequence[Config]) -> list[tuple[list[int], object]]:
    """The points in groups of `group_key`, each with its `Machines` (None for a group of one
    point, counted point by point)."""
    hit = _GROUPS.get(id(archs))
    if hit is not None and hit[0] is archs:
        return hit[1]
    keys: dict[str, list[int]] = {}
    for i, arch in enumerate(archs):
        keys.setdefault(group_key(arch), []).append(i)
    found = [(idx, Machines.of([archs[i] for i in idx]) if len(idx) > 1 else None)
             for idx in keys.values()]
    if len(_GROUPS) >= 4:
        _GROUPS.clear()
    _GROUPS[id(archs)] = (archs, found)
    return found
