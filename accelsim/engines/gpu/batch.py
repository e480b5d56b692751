"""`simulate_batch` of the GPU engine: every kernel's time for one layer on many GPUs at once,
as arrays over the design points.

Points whose descriptions differ only in the machine's numbers (`MACHINE_FIELDS`: SMs, clock,
peaks, DRAM bandwidth, launch overhead, board power) form a group; per group each kernel's time
model of `accelsim.engines.gpu.kernels` runs once with the machine as arrays (tiled-GEMM
candidates as a points x candidates array), the same arithmetic element by element, and the
fastest allowed kernel is picked per point as `count.kernel_times` picks it. Groups of one
point, and any group whose description the time models refuse, run point by point through
`count` (which raises the engine's own error). `tests/test_batch.py` holds the two paths equal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from accelsim.engines.batch import LayerBatch, layer_memo, merged
from accelsim.engines.counts import ceil_div
from accelsim.engines.gpu.config import SIMT_FLOP, TENSOR_FLOP, Config
from accelsim.engines.gpu.count import _MEASURE_COLUMN, _count, choice_warnings
from accelsim.engines.gpu.kernels import (
    DTYPE_BITS,
    BsrKernel,
    CsrKernel,
    DenseKernel,
    KernelTime,
    Machine,
    NmKernel,
    RowSkipKernel,
    _candidates,
    _efficiency,
    _tile_shapes,
    available,
    eligible,
    own_measure,
)
from accelsim.engines.shared_gemm_operand import (
    GemmDims,
    Operand,
    compressed_fraction,
    operand_for,
)
from accelsim.errors import AccelsimError
from accelsim.workload.layer import Layer

MACHINE_FIELDS = ("name", "num_sms", "clock_mhz", "peak_tflops", "sparse_peak_tflops",
                  "simt_peak_tflops", "memory", "launch_overhead_s", "board_power_w",
                  "split_k_max", "sources", "notes")
"""Fields a group's points may differ in (the rest of the description is the group's)."""


@dataclass(frozen=True)
class Machines:
    """`kernels.Machine` of P GPUs: numbers as arrays over the points, the rest shared. The
    tiled-GEMM candidates are those of the largest `split_k_max`; a point's larger splits are
    refused (infinite time), which keeps its own candidates in their order."""

    element_bytes: float
    tensor_flops_per_s: np.ndarray
    sparse_flops_per_s: np.ndarray | None
    simt_flops_per_s: np.ndarray
    dram_bytes_per_s: np.ndarray
    launch_s: np.ndarray
    sms: np.ndarray
    tiles: tuple[tuple[int, int, float], ...]
    split_k_max: np.ndarray
    """Largest split-K factor of each point."""
    split_k_cap: int
    """Largest split-K factor of all points (the candidates' range)."""
    first: Machine
    """The first point's `kernels.Machine` (what `kernels.available` reads is the group's)."""
    clock_hz: np.ndarray
    tensor_peak_tflops: np.ndarray
    """Each point's `peak_tflops` at its dtype, TFLOP/s."""
    simt_peak_tflops: np.ndarray
    """Each point's `simt_peak_tflops` at its dtype, TFLOP/s."""
    acc_bytes: float = 4.0
    memo: dict = field(default_factory=dict, compare=False, repr=False)
    """Kernel `Times` of this group by (kernel name, GEMM dims, the measure the kernel reads):
    layers of one shape (and density) timed once."""

    @classmethod
    def of(cls, archs: Sequence[Config]) -> Machines:
        mcs = [a.machine() for a in archs]
        sparse = [m.sparse_flops_per_s for m in mcs]
        return cls(
            element_bytes=mcs[0].element_bytes,
            tensor_flops_per_s=np.array([m.tensor_flops_per_s for m in mcs]),
            sparse_flops_per_s=None if sparse[0] is None else np.array(sparse, dtype=float),
            simt_flops_per_s=np.array([m.simt_flops_per_s for m in mcs]),
            dram_bytes_per_s=np.array([m.dram_bytes_per_s for m in mcs]),
            launch_s=np.array([m.launch_s for m in mcs]),
            sms=np.array([m.num_sms for m in mcs]),
            tiles=mcs[0].tiles, split_k_max=np.array([m.split_k_max for m in mcs]),
            split_k_cap=max(m.split_k_max for m in mcs), first=mcs[0],
            clock_hz=np.array([a.clock_hz for a in archs]),
            tensor_peak_tflops=np.array([a.peak_tflops[a.dtype] for a in archs]),
            simt_peak_tflops=np.array([a.simt_peak_tflops[a.dtype] for a in archs]),
            acc_bytes=mcs[0].acc_bytes)

    def label(self, i: np.ndarray) -> list[str]:
        """The algorithm label (`kernels.Tiled.label`) of candidate i[p] of each point."""
        names = _labels(self.tiles, self.split_k_cap)
        return [names[c] for c in i.tolist()]


@functools.lru_cache(maxsize=64)
def _labels(tiles: tuple[tuple[int, int, float], ...], split_k_max: int) -> tuple[str, ...]:
    tm, tn, _, split = _candidates(tiles, split_k_max)
    return tuple(f"{int(m)}x{int(n)}/split{int(s)}" for m, n, s in zip(tm, tn, split))


@dataclass
class Times:
    """One kernel's `KernelTime` on every point (arrays; FLOPs and MACs are the same on all)."""

    total_s: np.ndarray
    compute_s: np.ndarray
    memory_s: np.ndarray
    overhead_s: np.ndarray
    flops: float
    tensor: np.ndarray
    read_bytes: np.ndarray
    write_bytes: np.ndarray
    macs_done: int
    algorithm: list[str]
    weight_read_bytes: float

    def point(self, i: int) -> KernelTime:
        return KernelTime(float(self.total_s[i]), float(self.compute_s[i]),
                          float(self.memory_s[i]), float(self.overhead_s[i]), self.flops,
                          "tensor" if self.tensor[i] else "simt", float(self.read_bytes[i]),
                          float(self.write_bytes[i]), self.macs_done, self.algorithm[i],
                          self.weight_read_bytes)


def _tiled(M: int, N: int, K: float, groups: int, pm: Machines, flops_per_s: np.ndarray,
           k_half: float) -> tuple[np.ndarray, np.ndarray]:
    """`kernels.tiled_gemm` on every point: (math seconds [points, candidates], workspace)."""
    grid, work, cta_flops, eff, split, workspace = _tile_shapes(
        M, N, K, groups, pm.tiles, pm.split_k_cap, pm.acc_bytes, k_half)
    sms = pm.sms[:, None]
    waves = np.ceil(work / sms)
    cta_s = cta_flops / (flops_per_s[:, None] / sms * eff)
    allowed = ((split == 1) | (grid * split <= sms)) & (split <= pm.split_k_max[:, None])
    return np.where(allowed, waves * cta_s, np.inf), workspace


def _fastest(compute: np.ndarray, memory: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per point, the candidate with the least max(compute, memory): (index, compute, memory)."""
    i = np.argmin(np.maximum(compute, memory), axis=1)
    rows = np.arange(len(i))
    return i, compute[rows, i], memory[rows, i]


def _im2col(d: GemmDims, pm: Machines) -> tuple[np.ndarray | float, float, float]:
    if not d.needs_im2col:
        return 0.0, 0.0, 0.0
    read, write = d.act_elements * pm.element_bytes, d.a_elements * pm.element_bytes
    return (read + write) / pm.dram_bytes_per_s + pm.launch_s, read, write


def _conversion(d: GemmDims, pm: Machines, conversion: str, launches: int, reads_of_a: int,
                written_bytes: float, bandwidth_efficiency: float
                ) -> tuple[np.ndarray | float, float, float]:
    if conversion != "per_call":
        return 0.0, 0.0, 0.0
    im2col_s, im2col_read, im2col_write = _im2col(d, pm)
    read = reads_of_a * d.a_elements * pm.element_bytes
    seconds = (read + written_bytes) / (pm.dram_bytes_per_s * bandwidth_efficiency)
    return (seconds + launches * pm.launch_s + im2col_s, read + im2col_read,
            written_bytes + im2col_write)


def dense_times(d: GemmDims, pm: Machines, k: DenseKernel, dtype: str, name: str) -> Times:
    b = pm.element_bytes
    flops = 2.0 * d.macs
    bandwidth = pm.dram_bytes_per_s * k.bandwidth_efficiency
    read = (min(d.act_elements, d.a_elements) + d.weight_elements) * b
    write = d.out_elements * b
    compute_c, workspace = _tiled(d.M, d.N, d.K, d.groups, pm,
                                  pm.tensor_flops_per_s * _efficiency(k.compute_efficiency, dtype, name),
                                  k.k_half)
    memory_c = (read + write + workspace) / bandwidth[:, None]
    i, compute, memory = _fastest(compute_c, memory_c)
    simt_compute = flops / (pm.simt_flops_per_s * k.gemv_compute_efficiency)
    simt_memory = (read + write) / bandwidth
    tiled = np.maximum(compute, memory) <= np.maximum(simt_compute, simt_memory)
    half = 0.5 * workspace[i]
    labels = pm.label(i)
    return Times(
        total_s=np.where(tiled, np.maximum(compute, memory), np.maximum(simt_compute, simt_memory))
        + pm.launch_s,
        compute_s=np.where(tiled, compute, simt_compute),
        memory_s=np.where(tiled, memory, simt_memory), overhead_s=pm.launch_s, flops=flops,
        tensor=tiled, read_bytes=np.where(tiled, read + half, read),
        write_bytes=np.where(tiled, write + half, write), macs_done=d.macs,
        algorithm=[lab if t else "simt" for lab, t in zip(labels, tiled)],
        weight_read_bytes=d.weight_elements * b)


def csr_times(d: GemmDims, density: float, pm: Machines, k: CsrKernel, dtype: str,
              name: str) -> Times:
    b, idx = pm.element_bytes, k.index_bytes
    nnz = density * d.M * d.K
    per_row = density * d.K
    share = _efficiency(k.compute_efficiency, dtype, name)
    flops = 2.0 * nnz * d.N
    compute = 2.0 * d.M * d.N * (per_row + k.row_nnz_half) / (pm.simt_flops_per_s * share)
    csr_bytes = nnz * (b + idx) + (d.M + 1) * idx
    read = csr_bytes + min(d.K, nnz) * d.N * b
    write = d.M * d.N * b
    memory = (read + write) / (pm.dram_bytes_per_s * k.bandwidth_efficiency)
    conv_s, conv_read, conv_write = _conversion(d, pm, k.conversion, k.conversion_launches, 2,
                                                d.groups * csr_bytes, k.bandwidth_efficiency)
    g = d.groups
    overhead = g * pm.launch_s + conv_s
    n = len(pm.sms)
    return Times(g * np.maximum(compute, memory) + overhead, g * compute, g * memory, overhead,
                 g * flops, np.zeros(n, dtype=bool), np.full(n, g * read + conv_read),
                 np.full(n, g * write + conv_write), round(g * nnz * d.N), [""] * n,
                 g * min(d.K, nnz) * d.N * b)


def bsr_times(d: GemmDims, block_density: float, pm: Machines, k: BsrKernel, dense: DenseKernel,
              dtype: str, name: str) -> Times:
    b, idx = pm.element_bytes, k.index_bytes
    row_blocks, col_blocks = ceil_div(d.M, k.block_rows), ceil_div(d.K, k.block_cols)
    blocks = block_density * row_blocks * col_blocks
    block_elems = blocks * k.block_rows * k.block_cols
    share = _efficiency(dense.compute_efficiency, dtype, name) * k.tile_efficiency
    k_busy = max(float(k.block_cols), block_density * col_blocks * k.block_cols)
    compute_c, workspace = _tiled(d.M, d.N, k_busy, 1, pm, pm.tensor_flops_per_s * share, dense.k_half)
    bsr_bytes = block_elems * b + idx * (blocks + row_blocks + 1)
    read = bsr_bytes + min(d.K, blocks * k.block_cols) * d.N * b
    write = d.M * d.N * b
    memory_c = (read + write + workspace) / (pm.dram_bytes_per_s * k.bandwidth_efficiency)[:, None]
    i, compute, memory = _fastest(compute_c, memory_c)
    half = 0.5 * workspace[i]
    conv_s, conv_read, conv_write = _conversion(d, pm, k.conversion, k.conversion_launches, 2,
                                                d.groups * bsr_bytes, k.bandwidth_efficiency)
    g = d.groups
    overhead = g * pm.launch_s + conv_s
    macs = min(d.macs, round(g * block_elems * d.N))
    return Times(g * np.maximum(compute, memory) + overhead, g * compute, g * memory, overhead,
                 2.0 * macs, np.ones(len(i), dtype=bool), g * (read + half) + conv_read,
                 g * (write + half) + conv_write, macs, pm.label(i),
                 g * min(d.K, blocks * k.block_cols) * d.N * b)


def nm_times(d: GemmDims, pm: Machines, k: NmKernel, dense: DenseKernel, dtype: str,
             name: str) -> Times:
    if pm.sparse_flops_per_s is None:  # `count` raises the engine's error for it
        raise AccelsimError(f"kernel '{name}' needs a sparse tensor-core peak")
    b = pm.element_bytes
    share = _efficiency(k.compute_efficiency, dtype, name)
    dense_share = _efficiency(dense.compute_efficiency, dtype, "dense")
    sparse_c, workspace = _tiled(d.M, d.N, d.K, 1, pm, pm.sparse_flops_per_s * share, k.k_half)
    as_dense_c, _ = _tiled(d.M, d.N, d.K, 1, pm, pm.tensor_flops_per_s * dense_share, dense.k_half)
    compute_c = np.maximum(sparse_c, as_dense_c * k.n / k.m)
    a_bytes = d.M * d.K * b * compressed_fraction(k.n, k.m, k.metadata_bits, 8 * b)
    read = a_bytes + d.K * d.N * b
    write = d.M * d.N * b
    memory_c = (read + write + workspace) / (pm.dram_bytes_per_s * k.bandwidth_efficiency)[:, None]
    i, compute, memory = _fastest(compute_c, memory_c)
    half = 0.5 * workspace[i]
    pruned = d.a_elements * b if k.policy == "prune" else 0.0
    conv_s, conv_read, conv_write = _conversion(d, pm, k.conversion, k.conversion_launches, 2,
                                                d.groups * a_bytes + pruned,
                                                k.bandwidth_efficiency)
    g = d.groups
    overhead = g * pm.launch_s + conv_s
    macs = ceil_div(d.macs * k.n, k.m)
    return Times(g * np.maximum(compute, memory) + overhead, g * compute, g * memory, overhead,
                 2.0 * macs, np.ones(len(i), dtype=bool), g * (read + half) + conv_read,
                 g * (write + half) + conv_write, macs, pm.label(i), g * d.K * d.N * b)


def row_skip_times(d: GemmDims, union_density: float, pm: Machines, k: RowSkipKernel,
                   dtype: str, name: str) -> Times:
    b = pm.element_bytes
    passes = ceil_div(d.M, k.rows_per_pass)
    weight_bytes = passes * union_density * d.K * d.N * b
    read = weight_bytes + d.M * d.K * b
    write = d.M * d.N * b
    macs_per_group = d.M * union_density * d.K * d.N
    flops = 2.0 * macs_per_group
    eff = _efficiency(k.compute_efficiency, dtype, name)
    compute = flops / (pm.simt_flops_per_s * eff) if flops else np.zeros(len(pm.sms))
    memory = (read + write) / (pm.dram_bytes_per_s * k.bandwidth_efficiency)
    im2col_s, im2col_read, im2col_write = _im2col(d, pm)
    g = d.groups
    overhead = g * pm.launch_s + im2col_s
    n = len(pm.sms)
    return Times(g * np.maximum(compute, memory) + overhead, g * compute, g * memory, overhead,
                 g * flops, np.zeros(n, dtype=bool), np.full(n, g * read + im2col_read),
                 np.full(n, g * write + im2col_write), min(d.macs, round(g * macs_per_group)),
                 [""] * n, g * weight_bytes)


_READS_MEASURE = (CsrKernel, BsrKernel, RowSkipKernel)
"""Kernels whose time depends on their own measure of A (`own_measure`)."""


def _times_of(name: str, k: object, d: GemmDims, measure: float, pm: Machines,
              dense: DenseKernel, dtype: str) -> Times:
    """`kernels.time_at` on every point, from the group's memo where this kernel was timed on
    the same dims (and measure, for kernels that read it)."""
    key = (name, d, measure if isinstance(k, _READS_MEASURE) else None)
    hit = pm.memo.get(key)
    if hit is None:
        hit = pm.memo[key] = _timed(name, k, d, measure, pm, dense, dtype)
    return hit


def _timed(name: str, k: object, d: GemmDims, measure: float, pm: Machines,
           dense: DenseKernel, dtype: str) -> Times:
    if isinstance(k, DenseKernel):
        return dense_times(d, pm, k, dtype, name)
    if isinstance(k, CsrKernel):
        return csr_times(d, measure, pm, k, dtype, name)
    if isinstance(k, BsrKernel):
        return bsr_times(d, measure, pm, k, dense, dtype, name)
    if isinstance(k, RowSkipKernel):
        return row_skip_times(d, measure, pm, k, dtype, name)
    assert isinstance(k, NmKernel)
    return nm_times(d, pm, k, dense, dtype, name)


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
        times[name] = _times_of(name, k, op.dims, measure, pm, dense, first.dtype)
        if eligible(k, op):
            allowed.append(name)
    columns["dense_algorithm"] = list(times["dense"].algorithm)
    for name in first.kernels:
        columns[f"time_{name}_s"] = (times[name].total_s.tolist() if name in times
                                     else [math.nan] * n)
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
    columns["weight_read_bytes"] = of_best("weight_read_bytes").tolist()
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
