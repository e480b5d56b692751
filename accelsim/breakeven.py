"""GPU kernels against dense across densities for one GEMM shape: what `accelsim breakeven`
asks of a `kind: gpu` description (curves in `accelsim.engines.gpu.breakeven`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from accelsim.engines.gpu import Config as GpuConfig
from accelsim.engines.gpu.breakeven import PATTERNS, TABLE_DENSITIES, curve, shape_dims, summary
from accelsim.engines.gpu.kernels import DTYPES
from accelsim.errors import AccelsimError

__all__ = ["DTYPES", "PATTERNS", "Breakeven", "breakeven"]

PLOT_DENSITIES = 160
"""Densities (log-spaced over 1e-3..1) of the curves drawn by `--plot`."""


@dataclass
class Breakeven:
    """`curve`: per density of `TABLE_DENSITIES`, every kernel's time and speed-up over dense and
    the fastest allowed kernel; `summary`: per sparse kernel, its break-even in its own measure
    and in element density; `plot`: the PNG written, if asked for."""

    arch: GpuConfig
    shape: tuple[int, int, int]
    pattern: str
    curve: pd.DataFrame
    summary: pd.DataFrame
    plot: Path | None = None


def breakeven(arch_path: str | Path, shape: tuple[int, int, int], dtype: str | None = None,
              pattern: str = "random", plot: str | Path | None = None) -> Breakeven:
    """Break-even of every kernel of the GPU at `arch_path` for [M, K] x [K, N] (`shape`), in
    `dtype` (default: the arch's), with zeros placed by `pattern`; draws the curves to the
    PNG `plot` when given."""
    from accelsim.kinds import load_arch

    arch = load_arch(arch_path)
    if not isinstance(arch, GpuConfig):
        raise AccelsimError(
            f"{arch_path}: `breakeven` compares GPU kernels and needs an architecture of kind "
            f"'gpu', this one is '{arch.kind}'. Use e.g. arch_configs/a100.yaml."
        )
    if dtype:
        arch = arch.with_dtype(dtype)
    dims = shape_dims(*shape)
    result = Breakeven(arch, shape, pattern, curve(arch, dims, TABLE_DENSITIES, pattern),
                       summary(arch, dims, pattern))
    if plot is not None:
        result.plot = _write_plot(result, Path(plot))
    return result


def _write_plot(result: Breakeven, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from accelsim.report.figures import kernel_curves

    arch, (m, k, n) = result.arch, result.shape
    fine = curve(arch, shape_dims(m, k, n), np.logspace(-3, 0, PLOT_DENSITIES), result.pattern)
    fig = kernel_curves(fine, result.summary,
                        f"{arch.name} {arch.dtype}: [{m}, {k}] x [{k}, {n}], {result.pattern} zeros")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
