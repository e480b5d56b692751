"""The count step of a GPU: every kernel's time for a layer, the fastest allowed one, the FLOPs
and DRAM bytes it moves, the layer's break-even curve (its `breakeven` table), and a warning
where the chosen kernel does something a user would not expect of a faster kernel (more DRAM
bytes or more energy than dense, lossy pruning)."""

from __future__ import annotations

import math

from accelsim.arch.energy import action_energy_pj
from accelsim.engines.counts import LayerResult
from accelsim.engines.gpu.breakeven import layer_curve
from accelsim.engines.gpu.config import SIMT_FLOP, TENSOR_FLOP, Config
from accelsim.engines.gpu.kernels import (
    BsrKernel,
    CsrKernel,
    KernelTime,
    NmKernel,
    RowSkipKernel,
    available,
    breakeven,
    eligible,
    own_measure,
    time_at,
)
from accelsim.engines.shared_gemm_operand import Operand, operand_for
from accelsim.workload.layer import Layer

_MEASURE_COLUMN = {CsrKernel: None, BsrKernel: "block_density", RowSkipKernel: "union_density",
                   NmKernel: "nm_conformance"}


def kernel_times(layer: Layer, arch: Config, op: Operand | None = None,
                 memo: dict | None = None) -> tuple[dict[str, KernelTime], dict[str, object]]:
    """Every kernel's time for a layer, and the per-kernel result columns. `op` is the layer's
    operand statistics (`operand_for(layer)`) where the caller keeps them for many archs;
    with `memo` (a dict the caller keeps for one layer) a kernel timed before on the same
    machine is not timed again, and the break-even columns (`breakeven_density_*`, which no
    total needs) are left out."""
    op = operand_for(layer) if op is None else op
    if memo is None:
        mc = arch.machine()
    else:
        if ("machine", id(arch)) not in memo:
            memo["machine", id(arch)] = arch.machine()
        mc = memo["machine", id(arch)]
    dense = arch.dense_kernel
    times: dict[str, KernelTime] = {}
    columns: dict[str, object] = {"a_density": op.density}
    allowed: list[str] = []
    for name, k in arch.kernels.items():
        measure = own_measure(k, op)
        column = _MEASURE_COLUMN.get(type(k))
        if column:
            columns[f"{column}_{name}"] = measure
        if not available(k, mc):
            continue
        if memo is None:
            times[name] = time_at(name, k, op.dims, measure, mc, dense)
        else:
            key = (name, id(k), mc, measure, id(dense))  # the archs outlive the memo
            if key not in memo:
                memo[key] = time_at(name, k, op.dims, measure, mc, dense)
            times[name] = memo[key]
        if eligible(k, op):
            allowed.append(name)
    dense_s = times["dense"].total_s
    columns["dense_algorithm"] = times["dense"].algorithm
    for name, k in arch.kernels.items():
        runs = name in times
        columns[f"time_{name}_s"] = times[name].total_s if runs else math.nan
        if name != "dense" and memo is None:
            columns[f"breakeven_density_{name}"] = (
                breakeven(name, k, op.dims, mc, dense, dense_s) if runs else math.nan)
    columns["best_kernel"] = min(allowed, key=lambda n: (times[n].total_s, n != "dense"))
    return times, columns


def _actions(t: KernelTime, arch: Config) -> dict[str, float]:
    """The action counts of one kernel choice (FLOPs on its unit, DRAM bytes)."""
    dram = arch.dram().name
    return {TENSOR_FLOP if t.unit == "tensor" else SIMT_FLOP: t.flops,
            f"{dram}.read_bytes": t.read_bytes, f"{dram}.write_bytes": t.write_bytes}


def choice_warnings(arch: Config, times: dict[str, KernelTime], columns: dict[str, object]) -> list[str]:
    """Short, numeric notes on a chosen sparse kernel a user would not expect: faster than dense
    but moving more DRAM bytes or using more energy (priced as the cost step prices them), or
    an N:M kernel that prunes A (lossy)."""
    name = str(columns["best_kernel"])
    if name == "dense":
        return []
    best, dense = times[name], times["dense"]
    prices = action_energy_pj(arch)

    def energy_pj(t: KernelTime) -> float:
        return sum(count * prices[action] for action, count in _actions(t, arch).items())

    speedup = dense.total_s / best.total_s
    more_bytes = (best.read_bytes + best.write_bytes) / (dense.read_bytes + dense.write_bytes)
    more_energy = energy_pj(best) / energy_pj(dense)
    found = []
    if more_bytes > 1:
        note = f" (energy saving {1 / more_energy:.2f})" if more_energy > 1 else ""
        found.append(f"{name} is {speedup:.3g}x faster but moves {more_bytes:.3g}x dense's DRAM "
                     f"bytes{note}")
    elif more_energy > 1:
        found.append(f"{name} is {speedup:.3g}x faster but uses {more_energy:.3g}x dense's energy "
                     f"({best.unit} FLOPs at board power / peak of that unit)")
    k = arch.kernels[name]
    if isinstance(k, NmKernel) and k.policy == "prune":
        conforming = float(columns[f"nm_conformance_{name}"])
        found.append(f"{name} prunes A to {k.n}:{k.m} (lossy): {1 - conforming:.3g} of its groups "
                     f"of {k.m} lose non-zeros")
    return found


def simulate(layer: Layer, arch: Config) -> LayerResult:
    """Time every kernel choice for one layer; the result is the fastest allowed one."""
    return _count(layer, arch, operand_for(layer), None)


def _count(layer: Layer, arch: Config, op: Operand, memo: dict | None) -> LayerResult:
    """`simulate` with the operand statistics given; with a `memo` (`kernel_times`), batch
    mode: no break-even columns and no break-even table."""
    times, columns = kernel_times(layer, arch, op, memo)
    best = times[str(columns["best_kernel"])]
    clock = arch.clock_hz
    macs_dense = layer.macs
    peak = (arch.peak_tflops[arch.dtype] if best.unit == "tensor"
            else arch.simt_peak_tflops[arch.dtype]) * 1e12
    cycles = best.total_s * clock
    compute_cycles = best.compute_s * clock
    return LayerResult(
        cycles=cycles,
        compute_cycles=compute_cycles,
        stall_cycles=max(0.0, cycles - compute_cycles),
        macs_dense=macs_dense,
        macs_done=best.macs_done,
        macs_skipped=macs_dense - best.macs_done,
        dram_bytes=best.read_bytes + best.write_bytes,
        bound=best.bound,
        engine_mode="trace" if layer.has_trace else "statistical",
        utilization=min(1.0, best.flops / (best.total_s * peak)) if best.total_s else 0.0,
        actions=_actions(best, arch),
        columns={**columns, "weight_read_bytes": best.weight_read_bytes},
        tables={} if memo is not None else {
            "breakeven": layer_curve(arch, layer, float(columns["a_density"]))},
        warnings=choice_warnings(arch, times, columns),
    )
