"""The count step of a GPU: every kernel's time for a layer, the fastest allowed one, the FLOPs
and DRAM bytes it moves, and the layer's break-even curve (its `breakeven` table)."""

from __future__ import annotations

import math

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
from accelsim.engines.shared_gemm_operand import operand_for
from accelsim.workload.layer import Layer

_MEASURE_COLUMN = {CsrKernel: None, BsrKernel: "block_density", RowSkipKernel: "union_density",
                   NmKernel: "nm_conformance"}


def kernel_times(layer: Layer, arch: Config) -> tuple[dict[str, KernelTime], dict[str, object]]:
    """Every kernel's time for a layer, and the per-kernel result columns."""
    op = operand_for(layer)
    mc = arch.machine()
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
        times[name] = time_at(name, k, op.dims, measure, mc, dense)
        if eligible(k, op):
            allowed.append(name)
    dense_s = times["dense"].total_s
    for name, k in arch.kernels.items():
        runs = name in times
        columns[f"time_{name}_s"] = times[name].total_s if runs else math.nan
        if name != "dense":
            columns[f"breakeven_density_{name}"] = (
                breakeven(name, k, op.dims, mc, dense, dense_s) if runs else math.nan)
    columns["best_kernel"] = min(allowed, key=lambda n: (times[n].total_s, n != "dense"))
    return times, columns


def simulate(layer: Layer, arch: Config) -> LayerResult:
    """Time every kernel choice for one layer; the result is the fastest allowed one."""
    times, columns = kernel_times(layer, arch)
    best = times[str(columns["best_kernel"])]
    clock = arch.clock_hz
    dram = arch.dram()
    op_macs = best.macs_done
    macs_dense = layer.macs
    peak = (arch.peak_tflops[arch.dtype] if best.unit == "tensor"
            else arch.simt_peak_tflops[arch.dtype]) * 1e12
    actions = {
        TENSOR_FLOP if best.unit == "tensor" else SIMT_FLOP: best.flops,
        f"{dram.name}.read_bytes": best.read_bytes,
        f"{dram.name}.write_bytes": best.write_bytes,
    }
    cycles = best.total_s * clock
    compute_cycles = best.compute_s * clock
    return LayerResult(
        cycles=cycles,
        compute_cycles=compute_cycles,
        stall_cycles=max(0.0, cycles - compute_cycles),
        macs_dense=macs_dense,
        macs_done=op_macs,
        macs_skipped=macs_dense - op_macs,
        dram_bytes=best.read_bytes + best.write_bytes,
        bound=best.bound,
        engine_mode="trace" if layer.has_trace else "statistical",
        utilization=min(1.0, best.flops / (best.total_s * peak)) if best.total_s else 0.0,
        actions=actions,
        columns=columns,
        tables={"breakeven": layer_curve(arch, layer, float(columns["a_density"]))},
    )
