"""Workload traces: the in-memory model, the `.npz` format, statistics, sparsify transforms,
capture from torch, importers (SCALE-Sim topologies) and `recipes/` (one module per real model)."""

from accelsim.workload.format import load_workload, save_workload
from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload

__all__ = ["ConvShape", "GemmShape", "Layer", "Workload", "load_workload", "save_workload"]
