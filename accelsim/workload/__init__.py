"""Workload traces: the in-memory model, the `.npz` format, statistics, sparsify transforms,
capture from torch, importers (SCALE-Sim topologies) and `recipes/` (one module per real model)."""

from typing import Any

from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload

__all__ = ["ConvShape", "GemmShape", "Layer", "Workload", "load_workload", "save_workload"]


def __getattr__(name: str) -> Any:
    """`load_workload` and `save_workload`, from `accelsim.workload.format` when first used (a
    sub-module such as `recipes` or `stats` does not read or write trace files)."""
    if name in ("load_workload", "save_workload"):
        from accelsim.workload import format as trace_format

        return getattr(trace_format, name)
    raise AttributeError(f"module 'accelsim.workload' has no attribute {name!r}")
