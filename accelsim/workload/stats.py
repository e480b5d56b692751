"""Per-layer sparsity statistics of a workload."""

from __future__ import annotations

import pandas as pd

from accelsim.workload.layer import ConvShape, Layer, Workload


def shape_text(layer: Layer) -> str:
    """Compact human-readable shape, e.g. `N1 C16 H28 W28 -> K32 3x3 s1 p1 g1`."""
    s = layer.shape
    if isinstance(s, ConvShape):
        pad = s.padding[0] if len(set(s.padding)) == 1 else list(s.padding)
        stride = s.stride[0] if s.stride[0] == s.stride[1] else list(s.stride)
        text = f"N{s.N} C{s.C} H{s.H} W{s.W} -> K{s.K} {s.R}x{s.S} s{stride} p{pad}"
        if s.groups > 1:
            text += f" g{s.groups}"
        if s.dilation != (1, 1):
            text += f" d{s.dilation[0]}"
        return text
    text = f"M{s.M} K{s.K} N{s.N}"
    return text if s.batch == 1 else f"B{s.batch} " + text


def layer_summary(workload: Workload) -> pd.DataFrame:
    """One row per layer: op, shape, dense MACs, exact-zero fraction and density."""
    rows = []
    for layer in workload.layers:
        density = layer.act_density
        rows.append({
            "layer": layer.name,
            "op": layer.op,
            "shape": shape_text(layer),
            "macs_dense": layer.macs,
            "zero_fraction": 1.0 - density,
            "act_density": density,
            "weight_density": layer.weight_density,
            "mode": "trace" if layer.has_trace else "statistical",
            "alias_of": layer.alias_of or "",
        })
    return pd.DataFrame(rows)
