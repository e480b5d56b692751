"""Dense systolic array (TPU-like, Eyeriss-like): SCALE-Sim 3.0.0 compute cycles, exactly, or a
double-buffered array that overlaps one fold's drain with the next fold's fill.

Layer to array mapping (what SCALE-Sim computes for one conv layer, extended to real traces):

* conv2d: one GEMM per group with `pixels = N*E*F` output positions (batch folded into
  pixels), `filters = K/groups`, `window = R*S*C/groups`. E and F include the layer's own
  (possibly asymmetric) padding and dilation, which is what SCALE-Sim sees when given the
  padded IFMAP. Groups run one after another on the whole array, as if each group were a
  separate SCALE-Sim layer; a depthwise layer therefore uses one column of the array.
* linear / matmul [M, K] x [K, N]: pixels = M, filters = N, window = K; `batch` products
  run one after another.

With Sr x Sc mapped onto rows x cols and T streamed, folds = ceil(Sr/rows) * ceil(Sc/cols):
OS: Sr = pixels, Sc = filters, T = window, cycles = folds*(T + rows + cols - 2) - 1;
WS: Sr = window, Sc = filters, T = pixels; IS: Sr = window, Sc = pixels, T = filters;
WS and IS: cycles = folds*(T + 2*rows + cols - 2) - 1.
SCALE-Sim's final "- 1" lets MACs / (PEs x cycles) pass 1 on degenerate layers (a 1 x 1
array); utilisation is capped at 1 there.

`timing: double_buffered` (arrays that load the next fold's stationary operand while the current
fold streams, as TPUv1's double-buffered weight tiles do): all F folds of a layer (groups and
batch products included) run back to back, so the fill/drain skew is paid once and each later
fold costs max(T, rows) (the next stationary tile takes `rows` cycles to shift in):
cycles = load + T + (F - 1) * max(T, rows) + rows + cols - 3, with load = rows for WS and IS
and 0 for OS. One fold gives SCALE-Sim's figure exactly; more folds are never slower.

`group_mapping: packed`: a grouped conv whose per-group product fits the array in one fold runs
k = min(rows // Sr, cols // Sc) groups per fold, block-diagonally (group g's stationary tile at
rows [g Sr, (g+1) Sr) and columns [g Sc, (g+1) Sc); the other PEs of the fold idle). On a WS
array a depthwise 3x3 conv (Sr = 9, Sc = 1) then runs min(rows // 9, cols) channels at a time
instead of one; on OS and IS arrays the pixels usually fill a whole side, so k stays 1 there.
Buffer traffic is that of the groups one after another (the same elements move either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from accelsim.arch.energy import MAC_COMPUTE
from accelsim.arch.pe_storage import PeStorage
from accelsim.arch.schema import ArchBase
from accelsim.engines import traffic
from accelsim.engines.batch import MISSING, LayerBatch, interned
from accelsim.engines.counts import LayerResult, ceil_div
from accelsim.engines.shared_gemm_operand import GemmProblem, gemm_problem
from accelsim.workload.layer import ConvShape, Layer

MAX_ARRAY_SIDE = 2**16
"""Most PE rows (or columns) of an array."""

Dataflow = Literal["os", "ws", "is"]
Timing = Literal["scalesim", "double_buffered"]
GroupMapping = Literal["serial", "packed"]


class Config(ArchBase):
    """A rows x cols array of MACs with an output-, weight- or input-stationary dataflow;
    `timing` and `group_mapping` as in the module docstring."""

    kind: Literal["systolic"]
    rows: int = Field(gt=0, le=MAX_ARRAY_SIDE)
    """PE rows, at most `MAX_ARRAY_SIDE`."""
    cols: int = Field(gt=0, le=MAX_ARRAY_SIDE)
    """PE columns, at most `MAX_ARRAY_SIDE`."""
    dataflow: Dataflow = "ws"
    timing: Timing = "scalesim"
    group_mapping: GroupMapping = "serial"
    tiling: traffic.Tiling = "search"
    """How DRAM traffic is tiled (`accelsim.engines.traffic`): a mapper's search, or
    SCALE-Sim 3.0.0's fixed rules."""
    pe: PeStorage = PeStorage()
    """Registers per PE (`accelsim.arch.pe_storage`)."""

    @model_validator(mode="after")
    def _registers_hold_their_operands(self) -> Config:
        p = self.precision
        self.pe.check_widths(p.act_bits, p.weight_bits, p.acc_bits)
        return self


def pe_register_words(arch: Config) -> tuple[int, int]:
    """Words of the dataflow's stationary operand's PE register and of the output's."""
    pe = arch.pe
    return pe.register(traffic.STATIONARY[arch.dataflow]).words, pe.register("out").words


def latency_split(p: GemmProblem, arch: Config, stall: float,
                  actions: dict[str, float]) -> dict[str, object]:
    """Cycles of a layer by cause (columns `cycles_compute`, `_fill_drain`, `_load`, `_stall`,
    summing to `cycles`): MACs streaming through the folds, pipeline fill and drain (skew),
    shifting stationary tiles into the array where it is not overlapped, and memory stalls.
    `cycles_dram_load` / `cycles_dram_offload`: DRAM read / write time at its bandwidth,
    overlapped with compute except for what shows as stall."""
    sr, sc, t = operand_dims(p, arch.dataflow)
    folds = p.repeat * ceil_div(sr, arch.rows) * ceil_div(sc, arch.cols)
    rows, cols = arch.rows, arch.cols
    total = compute_cycles(p, rows, cols, arch.dataflow, arch.timing)
    stationary_load = 0 if arch.dataflow == "os" else rows
    if arch.timing == "double_buffered":
        load = stationary_load + (folds - 1) * max(0, rows - t)
    else:
        load = folds * stationary_load
    compute = folds * t
    # SCALE-Sim's count ends one cycle early per product ("- 1"); on an array one PE wide that
    # can exceed the skew, and what is left comes off the loads, then off compute
    fill_drain = total - compute - load
    if fill_drain < 0:
        load, fill_drain = load + fill_drain, 0
        if load < 0:
            compute, load = compute + load, 0
    dram_load, dram_offload = dram_cycles(arch, actions)
    return {"cycles_compute": compute, "cycles_fill_drain": fill_drain,
            "cycles_load": load, "cycles_stall": stall,
            "cycles_dram_load": dram_load, "cycles_dram_offload": dram_offload}


def dram_cycles(arch: ArchBase, actions: dict[str, float]) -> tuple[float, float]:
    """(`cycles_dram_load`, `cycles_dram_offload`): the bytes read from and written to the DRAM
    level (data and, for compressed operands, metadata) at its bandwidth; 0 without DRAM."""
    dram = arch.dram()
    if dram is None:
        return 0.0, 0.0
    name = dram.name
    load = ((actions.get(f"{name}.read_bytes", 0.0)
             + actions.get(f"{name}.metadata_read_bytes", 0.0))
            / dram.read_bandwidth_bytes_per_cycle)
    offload = ((actions.get(f"{name}.write_bytes", 0.0)
                + actions.get(f"{name}.metadata_write_bytes", 0.0)) / dram.write_bandwidth)
    return load, offload


operand_dims = traffic.operand_dims
"""(Sr, Sc, T) of a product: extents mapped on rows, on columns, and streamed in time."""


def _larger(a: int | np.ndarray, b: int | np.ndarray) -> int | np.ndarray:
    """max(a, b), element-wise where either is an array of design points."""
    return np.maximum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else max(a, b)


def compute_cycles(p: GemmProblem, rows: int | np.ndarray, cols: int | np.ndarray,
                   dataflow: Dataflow, timing: Timing = "scalesim") -> int | np.ndarray:
    """Compute cycles of all `repeat` products, no memory stalls: SCALE-Sim 3.0.0's, or those of
    a double-buffered array (see the module docstring). `rows` and `cols` may be integer
    arrays (one entry per design point); the cycles are then an array too."""
    sr, sc, t = operand_dims(p, dataflow)
    folds = ceil_div(sr, rows) * ceil_div(sc, cols)
    if timing == "double_buffered":
        load = 0 if dataflow == "os" else rows
        return load + t + (p.repeat * folds - 1) * _larger(t, rows) + rows + cols - 3
    fill = rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2
    return p.repeat * (folds * (t + fill) - 1)


def packed_problem(p: GemmProblem, rows: int, cols: int, dataflow: Dataflow) -> GemmProblem:
    """`p` with k groups per fold, block-diagonally, where one group fits the array in one fold
    (k = min(rows // Sr, cols // Sc)); `p` itself otherwise."""
    sr, sc, _ = operand_dims(p, dataflow)
    k = min(rows // sr, cols // sc, p.repeat)
    if p.repeat == 1 or k < 2:
        return p
    if dataflow == "os":
        packed = GemmProblem(pixels=k * p.pixels, filters=k * p.filters, window=p.window,
                             repeat=ceil_div(p.repeat, k))
    elif dataflow == "ws":
        packed = GemmProblem(pixels=p.pixels, filters=k * p.filters, window=k * p.window,
                             repeat=ceil_div(p.repeat, k))
    else:
        packed = GemmProblem(pixels=k * p.pixels, filters=p.filters, window=k * p.window,
                             repeat=ceil_div(p.repeat, k))
    return packed


def sram_traffic(p: GemmProblem, rows: int | np.ndarray, cols: int | np.ndarray,
                 dataflow: Dataflow) -> traffic.ArrayTraffic:
    """Buffer reads/writes per operand summed over all of `p`'s products; `*_passes` is how often
    each operand is re-streamed. With integer arrays of `rows` and `cols` (design points), the
    fields that depend on them are arrays."""
    t = traffic.array_traffic(p, rows, cols, dataflow)
    r = p.repeat
    return replace(t, act_reads=t.act_reads * r, weight_reads=t.weight_reads * r,
                   out_writes=t.out_writes * r, out_reads=t.out_reads * r)


def memory_actions(
    layer: Layer, arch: Config, problem: GemmProblem
) -> tuple[dict[str, float], dict[str, float], dict[str, object]]:
    """Bytes read/written per memory level (actions), the cycles each level needs, and the
    per-level, per-operand access columns (`accelsim.engines.traffic`)."""
    t = traffic.layer_traffic(layer, arch, problem, arch.rows, arch.cols, arch.dataflow,
                              arch.tiling, pe_register_words(arch))
    return traffic.level_actions(arch, t)


def _layer_key(layer: Layer) -> tuple:
    """Everything of a layer that `simulate` reads: its shape and whether it has a trace."""
    return layer.shape, layer.has_trace


_LAST: tuple[Config | None, dict[tuple, LayerResult]] = (None, {})
"""The last arch `simulate` counted on and its results by `_layer_key`: a workload's layers of
one shape (a transformer's repeated blocks) are counted once per arch."""


def simulate(layer: Layer, arch: Config) -> LayerResult:
    """Count cycles, MACs and memory traffic of one layer on a dense systolic array."""
    global _LAST
    last = _LAST
    if last[0] is not arch:
        last = _LAST = (arch, {})
    key = _layer_key(layer)
    done = last[1].get(key)
    if done is None:
        done = last[1][key] = _count(layer, arch)
    return replace(done, actions=dict(done.actions), columns=dict(done.columns),
                   warnings=list(done.warnings))


def _count(layer: Layer, arch: Config) -> LayerResult:
    """`simulate` of a layer shape not counted yet on `arch`."""
    problem = gemm_problem(layer)
    timed = (packed_problem(problem, arch.rows, arch.cols, arch.dataflow)
             if arch.group_mapping == "packed" and isinstance(layer.shape, ConvShape) else problem)
    cycles_compute = compute_cycles(timed, arch.rows, arch.cols, arch.dataflow, arch.timing)
    actions, level_cycles, access = memory_actions(layer, arch, problem)
    actions[MAC_COMPUTE] = layer.macs
    memory_cycles = max(level_cycles.values(), default=0.0)
    stall = max(0.0, memory_cycles - cycles_compute) if arch.model_memory_stalls else 0.0
    cycles = cycles_compute + stall
    dram = arch.dram()
    dram_bytes = (actions.get(f"{dram.name}.read_bytes", 0.0)
                  + actions.get(f"{dram.name}.write_bytes", 0.0)) if dram else 0.0
    return LayerResult(
        cycles=cycles,
        compute_cycles=cycles_compute,
        stall_cycles=stall,
        macs_dense=layer.macs,
        macs_done=layer.macs,
        dram_bytes=dram_bytes,
        bound="memory" if stall > 0 else "compute",
        engine_mode="trace" if layer.has_trace else "statistical",
        utilization=min(1.0, layer.macs / (max(cycles, 1.0) * arch.rows * arch.cols)),
        actions=actions,
        columns={"bottleneck": max(level_cycles, key=level_cycles.get)
                 if stall > 0 else "compute",
                 **access, **latency_split(timed, arch, stall, actions)},
    )


def _latency_points(p: GemmProblem, arch: Config, rows: np.ndarray, cols: np.ndarray,
                    stall: np.ndarray, actions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`latency_split` of P arrays that differ only in `rows` and `cols` (integer arrays), the
    same numbers, as arrays over the points."""
    sr, sc, t = operand_dims(p, arch.dataflow)
    folds = p.repeat * ceil_div(sr, rows) * ceil_div(sc, cols)
    total = compute_cycles(p, rows, cols, arch.dataflow, arch.timing)
    stationary_load = 0 if arch.dataflow == "os" else rows
    if arch.timing == "double_buffered":
        load = stationary_load + (folds - 1) * np.maximum(0, rows - t)
    else:
        load = folds * stationary_load
    compute = folds * t
    fill_drain = total - compute - load
    short = np.minimum(fill_drain, 0)  # as `latency_split`: off the loads, then off compute
    load, fill_drain = load + short, fill_drain - short
    short = np.minimum(load, 0)
    compute, load = compute + short, load - short
    n = len(rows)
    dram_load, dram_offload = (np.broadcast_to(c, (n,)) for c in dram_cycles(arch, actions))
    return {"cycles_compute": compute, "cycles_fill_drain": fill_drain,
            "cycles_load": load, "cycles_stall": stall,
            "cycles_dram_load": dram_load, "cycles_dram_offload": dram_offload}


def _one(value: object) -> np.ndarray:
    """A one-point column holding `value` as it is."""
    held = np.empty(1, dtype=object)
    held[0] = value
    return held


def _scattered(parts: list[tuple[np.ndarray, dict[str, np.ndarray]]], n: int
               ) -> dict[str, list | np.ndarray]:
    """One value per point for each column from the columns of groups of points (arrays over
    each group's points; `MISSING` where a point lacks the column), the names in the order the
    points first have them: a number array where every point has a number, else a list."""
    parts = sorted(parts, key=lambda part: int(part[0][0]))
    having: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for idx, cols in parts:
        for c, values in cols.items():
            having.setdefault(c, []).append((idx, values))
    out: dict[str, list] = {}
    for c, held in having.items():
        dtypes = {values.dtype for _, values in held}
        if len(held) == 1 and len(held[0][0]) == n:
            column = held[0][1][np.argsort(held[0][0])]
        elif len(dtypes) == 1 and object not in dtypes and sum(len(i) for i, _ in held) == n:
            column = np.empty(n, dtype=dtypes.pop())
            for idx, values in held:
                column[idx] = values
        else:
            column = np.full(n, MISSING, dtype=object)
            for idx, values in held:
                column[idx] = values.astype(object)
        out[c] = column if column.dtype.kind in "fiu" else column.tolist()
    return out


GEOMETRY = ("rows", "cols")
"""The fields `simulate_batch` vectorises over (points that differ only in these and their
names form one group)."""
UNPRICED_FIELDS = (*GEOMETRY, "dataflow", "timing", "group_mapping", "tiling")
"""Fields the energy of an action does not depend on: points that differ only in these share
their prices (`accelsim.simulate.simulate_totals`)."""


def _geometry_groups(archs: Sequence[Config]) -> list[tuple[Config, np.ndarray]]:
    """Points grouped by everything but `GEOMETRY` and the name: (a member, point indices)."""
    groups: dict[str, list[int]] = {}
    first: dict[str, Config] = {}
    for i, arch in enumerate(archs):
        key = arch.model_dump_json(exclude={"name", *GEOMETRY})
        groups.setdefault(key, []).append(i)
        first.setdefault(key, arch)
    return [(first[k], np.array(v)) for k, v in groups.items()]


_GROUPS: tuple = (None, [], {})
"""The last (archs, groups, batches) `simulate_batch` saw: a sweep batch is one archs sequence
for all of a workload's layers, so the points are grouped once per workload, and layers of one
shape (a transformer's repeated blocks) are counted once (`batches`, by `_layer_key`)."""


def simulate_batch(layer: Layer, archs: Sequence[Config]) -> LayerBatch:
    """`simulate` on many design points at once, the same numbers: compute cycles, stalls,
    utilisation, the tiling traffic model (`accelsim.engines.traffic.points_actions`) and the
    latency split as arrays over the rows and cols of points that share everything else.
    `group_mapping: packed` on a conv layer runs `simulate` point by point."""
    global _GROUPS
    last = _GROUPS
    if last[0] is not archs:
        last = _GROUPS = (archs, _geometry_groups(archs), {})
    key = _layer_key(layer)
    if key not in last[2]:
        last[2][key] = _count_batch(layer, last[1], archs)
    return replace(last[2][key])


def _count_batch(layer: Layer, groups: list[tuple[Config, np.ndarray]],
                 archs: Sequence[Config]) -> LayerBatch:
    """`simulate_batch` of a layer not counted yet on `archs` (`groups`: `_geometry_groups`)."""
    n = len(archs)
    problem = gemm_problem(layer)
    out = {name: np.zeros(n) for name in ("cycles", "compute", "stall", "dram", "util")}
    memory_bound = np.zeros(n, dtype=bool)
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    column_order: list[tuple[str, ...]] = [() for _ in range(n)]
    action_order: list[tuple[str, ...]] = [() for _ in range(n)]
    actions: dict[str, np.ndarray] = {}
    listed: dict[str, np.ndarray] = {}

    def record(name: str, where: np.ndarray | int, value: float | np.ndarray) -> None:
        actions.setdefault(name, np.zeros(n))[where] = value
        listed.setdefault(name, np.zeros(n, dtype=bool))[where] = True

    for arch, idx in groups:
        if arch.group_mapping == "packed" and isinstance(layer.shape, ConvShape):
            for i in idx:
                res = simulate(layer, archs[i])
                out["cycles"][i], out["compute"][i] = res.cycles, res.compute_cycles
                out["stall"][i], out["dram"][i] = res.stall_cycles, res.dram_bytes
                out["util"][i], memory_bound[i] = res.utilization, res.bound == "memory"
                parts.append((np.array([i]), {c: _one(v) for c, v in res.columns.items()}))
                column_order[i], action_order[i] = tuple(res.columns), tuple(res.actions)
                for a, v in res.actions.items():
                    record(a, i, v)
            continue
        rows = np.array([archs[i].rows for i in idx], dtype=np.int64)
        cols = np.array([archs[i].cols for i in idx], dtype=np.int64)
        cycles_compute = compute_cycles(problem, rows, cols, arch.dataflow, arch.timing)
        acts, level_cycles, access = traffic.points_actions(
            layer, arch, problem, rows, cols, arch.dataflow, arch.tiling, pe_register_words(arch))
        acts[MAC_COMPUTE] = layer.macs
        levels = list(level_cycles)
        per_level = np.array([level_cycles[lv] for lv in levels]).reshape(-1, len(idx))
        memory_cycles = per_level.max(axis=0) if levels else np.zeros(len(idx))
        stall = (np.maximum(0.0, memory_cycles - cycles_compute) if arch.model_memory_stalls
                 else np.zeros(len(idx)))
        cycles = cycles_compute + stall
        for a, v in acts.items():
            record(a, idx, v)
        dram = arch.dram()
        dram_bytes = ((acts.get(f"{dram.name}.read_bytes", 0.0)
                       + acts.get(f"{dram.name}.write_bytes", 0.0)) if dram else 0.0)
        out["cycles"][idx], out["compute"][idx], out["stall"][idx] = cycles, cycles_compute, stall
        out["dram"][idx] = dram_bytes
        out["util"][idx] = np.minimum(1.0, layer.macs / (np.maximum(cycles, 1.0) * rows * cols))
        memory_bound[idx] = stall > 0
        worst = per_level.argmax(axis=0) if levels else np.zeros(len(idx), dtype=int)
        names = np.array([*levels, "compute"], dtype=object)
        bottleneck = names[np.where(stall > 0, worst, len(levels))]
        split = _latency_points(problem, arch, rows, cols, stall, acts)
        group_columns = {"bottleneck": bottleneck, **access, **split}
        parts.append((idx, group_columns))
        order, acted = tuple(group_columns), tuple(acts)
        for i in idx.tolist():
            column_order[i], action_order[i] = order, acted
    macs = np.full(n, layer.macs, dtype=np.int64)
    return LayerBatch(
        cycles=out["cycles"], compute_cycles=out["compute"], stall_cycles=out["stall"],
        macs_dense=macs, macs_done=macs, macs_skipped=np.zeros(n, dtype=np.int64),
        macs_gated=np.zeros(n, dtype=np.int64), dram_bytes=out["dram"], utilization=out["util"],
        memory_bound=memory_bound,
        engine_mode=["trace" if layer.has_trace else "statistical"] * n,
        actions=actions, absent={a: ~m for a, m in listed.items() if not m.all()},
        columns=_scattered(parts, n), column_order=interned(column_order),
        action_order=interned(action_order),
        warnings=[[] for _ in range(n)],
    )
