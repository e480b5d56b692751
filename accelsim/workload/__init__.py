"""Workload traces: the in-memory model, the `.npz` format, importers and statistics."""

from accelsim.workload.format import load_workload, save_workload
from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload

__all__ = ["ConvShape", "GemmShape", "Layer", "Workload", "load_workload", "save_workload"]
