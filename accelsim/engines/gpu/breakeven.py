"""Break-even curves of GPU kernels for one GEMM shape: speed-up over dense against density.

Used by `accelsim breakeven` and, per layer, by the engine (`layer_curve`, saved with the
results for reports). For a shape without a trace the zero pattern is
an assumption (`pattern`): `random` (each activation zero independently: blocks, whole
columns and N:M groups then fill up quickly) or `structured` (zeros come in the unit each
kernel skips: the best case). Each kernel's break-even is given both in its own measure of A
(density for csr, block density for bsr, union density for row_skip; see
`accelsim.engines.gpu.kernels.breakeven`) and as the element density at which it ties dense
under the assumed pattern.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from accelsim.engines.gpu.config import Config
from accelsim.engines.gpu.kernels import (
    BsrKernel,
    CsrKernel,
    NmKernel,
    RowSkipKernel,
    available,
    breakeven,
    crossing,
    dense_time,
    eligible,
    own_measure,
    time_at,
)
from accelsim.engines.shared_gemm_operand import (
    GemmDims,
    Operand,
    RandomOperand,
    StructuredOperand,
    gemm_dims,
)
from accelsim.workload.layer import GemmShape, Layer

if TYPE_CHECKING:  # pandas is imported where a table is made (start-up)
    import pandas as pd

PATTERNS = ("random", "structured")
TABLE_DENSITIES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005,
                   0.001)
LAYER_CURVE_DENSITIES = tuple(float(d) for d in np.logspace(-3, 0, 25))
"""Densities of each layer's saved break-even curve (random zeros)."""
MEASURE = {CsrKernel: "density", BsrKernel: "block density", RowSkipKernel: "union density",
           NmKernel: "n:m conformance"}


def shape_dims(M: int, K: int, N: int) -> GemmDims:
    """The dims of one [M, K] x [K, N] product."""
    return gemm_dims(Layer("gemm", "linear", GemmShape(M=M, K=K, N=N)))


def operand(dims: GemmDims, density: float, pattern: str) -> Operand:
    """A at element density `density` under the assumed zero pattern."""
    return RandomOperand(dims, density) if pattern == "random" else StructuredOperand(dims, density)


def _time(arch: Config, name: str, dims: GemmDims, op: Operand) -> tuple[float, bool]:
    """(seconds, allowed) of one kernel on A; (nan, False) when the GPU cannot run it."""
    k = arch.kernels[name]
    mc = arch.machine()
    if not available(k, mc):
        return math.nan, False
    measure = own_measure(k, op)
    return time_at(name, k, dims, measure, mc, arch.dense_kernel).total_s, eligible(k, op)


def curve(arch: Config, dims: GemmDims, densities: Sequence[float], pattern: str) -> pd.DataFrame:
    """Per density: every kernel's time and speed-up over dense, and the fastest allowed kernel.

    `speedup_<kernel>` is NaN where the kernel may not run that activation (N:M data that does
    not conform under `exact`, a static-pattern kernel) or where the GPU lacks it.
    """
    import pandas as pd

    rows = []
    for density in densities:
        op = operand(dims, density, pattern)
        row: dict[str, object] = {"density": density, "sparsity": 1.0 - density}
        times: dict[str, float] = {}
        for name in arch.kernels:
            seconds, allowed = _time(arch, name, dims, op)
            row[f"time_{name}_s"] = seconds
            if allowed:
                times[name] = seconds
        dense_s = times["dense"]
        for name in arch.kernels:
            row[f"speedup_{name}"] = dense_s / times[name] if name in times else math.nan
        best = min(times, key=lambda n: (times[n], n != "dense"))
        row["best_kernel"] = best
        row["best_speedup"] = dense_s / times[best]
        rows.append(row)
    return pd.DataFrame(rows)


def summary(arch: Config, dims: GemmDims, pattern: str) -> pd.DataFrame:
    """Per sparse kernel: its break-even in its own measure and in element density."""
    import pandas as pd

    mc = arch.machine()
    dense = arch.dense_kernel
    dense_s = dense_time(dims, mc, dense).total_s
    rows = []
    for name, k in arch.kernels.items():
        if name == "dense":
            continue
        runs = available(k, mc)

        def time_at_density(density: float, name: str = name) -> float:
            seconds, allowed = _time(arch, name, dims, operand(dims, density, pattern))
            return seconds if allowed else math.inf

        own = breakeven(name, k, dims, mc, dense, dense_s) if runs else math.nan
        element = crossing(time_at_density, dense_s) if runs else math.nan
        rows.append({
            "kernel": name,
            "type": k.type,
            "measure": MEASURE[type(k)],
            "breakeven_measure": own,
            "breakeven_density": element,
            "breakeven_sparsity": 1.0 - element,
            "chosen_for_activations": getattr(k, "conversion", "per_call") != "none",
            "source": k.source,
        })
    return pd.DataFrame(rows)


def layer_curve(arch: Config, layer: Layer, density: float) -> pd.DataFrame:
    """`curve` of the layer's shape at `LAYER_CURVE_DENSITIES` (random zeros), plus one row at
    the layer's own activation density, the one with `at_layer_density` true. The curve of a
    shape is computed once per GPU (decode replays one shape many times)."""
    import pandas as pd

    dims = gemm_dims(layer)
    key = (arch.config_hash(), dims)
    line = _CURVES.get(key)
    if line is None:
        line = _CURVES[key] = curve(arch, dims, LAYER_CURVE_DENSITIES, "random")
        while len(_CURVES) > _CURVE_SHAPES:
            _CURVES.pop(next(iter(_CURVES)))
    df = pd.concat([line, curve(arch, dims, [density], "random")], ignore_index=True)
    df["at_layer_density"] = [False] * len(LAYER_CURVE_DENSITIES) + [True]
    return df


_CURVES: dict[tuple[str, GemmDims], pd.DataFrame] = {}
_CURVE_SHAPES = 256
