"""Per-layer sparsity statistics of a workload (what `accelsim inspect` prints).

All statistics are taken on the layer's input activation (padding zeros excluded, as stored)
through its 2-D reduction view `[rows, row_length]` (see `accelsim.workload.reduction`):
rows are tokens (linear, matmul) or input pixels (conv2d), a row is the vector the layer
reduces over, a channel is a column.

* `zero_fraction`: share of elements exactly zero.
* `near_zero_tensor[t]`: share of elements with |x| <= t * max|x| over the whole tensor;
  `near_zero_row[t]`: share with |x| <= t * max|x| of the element's own row (an all-zero row
  counts as near-zero). Compared in float64 on the stored float16 values.
* `hoyer`: Hoyer's sparsity measure (sqrt(n) - ||x||_1 / ||x||_2) / (sqrt(n) - 1) of the
  flattened tensor, 0 for equal magnitudes, 1 for a single non-zero (Hoyer, JMLR 2004);
  `hoyer_row_mean`: its mean over rows with at least one non-zero. Undefined (None) for an
  all-zero tensor or n = 1.
* `nm_conformance[N:M]`: N:M conformance, the one definition shared with the engines
  (`layer_nm_conformance`): the share of groups of M consecutive elements along the layer's
  N:M segments (a token's K-vector; for conv2d the C/groups channels of one conv group at each
  input pixel that a window reads, each pixel once, padding positions not counted; see
  `accelsim.workload.reduction`) holding at most N non-zeros. Groups start at each segment's
  first element; a trailing partial group is padded with zeros. None where a segment is
  shorter than M (C/groups < M, e.g. a one-channel input or a depthwise conv; K < M): N:M does
  not apply. `nm_excess[N:M]`: on the same groups, the share of their non-zeros that forcing
  N:M would drop (those beyond the N largest of each group), 0 when there are no non-zeros,
  None where N:M does not apply.
* `dead_channels`: columns (input channels) zero in every row of the trace, with their ids.
* `row_density_percentiles`: percentiles (numpy linear interpolation) of the per-row
  density across rows.
* `block_density[BHxBW]`: share of non-empty blocks when the view is cut into blocks of BH
  rows x BW consecutive row elements from the top-left corner; edge blocks are partial and
  count like whole ones. `1x4` is a 4-wide vector along the reduction axis, `16x1` one
  channel over 16 consecutive rows (tokens or pixels in raster order).

Value statistics (`max_abs`, near-zero fractions, Hoyer) need values: for a mask-only trace
they are None, the pattern statistics are computed from the mask. A shapes-only layer has
only its declared density; everything else is None.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from accelsim.errors import WorkloadError
from accelsim.workload.layer import ConvShape, Layer, Shape, Workload
from accelsim.workload.reduction import ROW_DEFINITION, nm_segments, reduction_view, segment_length

if TYPE_CHECKING:  # pandas is imported where a table is made (start-up)
    import pandas as pd

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1)
"""Near-zero thresholds, relative to the tensor's (or row's) max |x|."""
NM_PATTERNS: tuple[tuple[int, int], ...] = ((1, 4), (2, 4), (2, 8))
BLOCK_SHAPES: tuple[tuple[int, int], ...] = ((1, 4), (4, 4), (16, 1))
"""Blocks as (rows, consecutive row elements) of the reduction view."""
PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)


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


def _summary_row(layer: Layer) -> dict:
    density = layer.act_density
    return {
        "layer": layer.name,
        "op": layer.op,
        "shape": shape_text(layer),
        "macs_dense": layer.macs,
        "zero_fraction": 1.0 - density,
        "act_density": density,
        "weight_density": layer.weight_density,
        "mode": "trace" if layer.has_trace else "statistical",
        "alias_of": layer.alias_of or "",
    }


def layer_summary(workload: Workload) -> pd.DataFrame:
    """One row per layer: op, shape, dense MACs, exact-zero fraction and density."""
    import pandas as pd

    return pd.DataFrame([_summary_row(layer) for layer in workload.layers])


def threshold_key(t: float) -> str:
    """JSON key / column suffix of a relative threshold, e.g. 0.01 -> '0.01'."""
    return f"{t:g}"


def group_nonzeros(mask: np.ndarray, m: int) -> np.ndarray:
    """Non-zeros per group of `m` consecutive row elements of a 2-D mask (groups start at column
    0, a trailing partial group padded with zeros): int array [rows, ceil(cols/m)]."""
    rows, cols = mask.shape
    groups = -(-cols // m)
    padded = np.zeros((rows, groups * m), dtype=bool)
    padded[:, :cols] = mask
    return padded.reshape(rows, groups, m).sum(axis=2)


def nm_conformance(mask: np.ndarray, n: int, m: int) -> float:
    """Share of the m-groups along the rows of a 2-D mask (`group_nonzeros`) holding at most n
    non-zeros. The building block of `layer_nm_conformance`, which applies it to a layer's
    segments; on its own it takes any rows as given."""
    return float(np.mean(group_nonzeros(mask, m) <= n))


def nm_excess(mask: np.ndarray, n: int, m: int) -> float:
    """Share of the non-zeros of a 2-D mask beyond the n allowed per m-group along its rows
    (what N:M pruning drops); 0 when there are no non-zeros."""
    total = int(np.count_nonzero(mask))
    if total == 0:
        return 0.0
    return float(np.maximum(group_nonzeros(mask, m) - n, 0).sum()) / total


def layer_nm_conformance(view: np.ndarray, shape: Shape, n: int, m: int) -> float | None:
    """N:M conformance of a layer, the definition `inspect` and the engines share.

    `view` is the layer's non-zero map as its reduction view (`reduction_view(nonzero,
    shape)`). The share of m-groups along the layer's N:M segments (`nm_segments`: a token's
    K-vector; the C/groups channels of one conv group at each input pixel a window reads,
    each pixel once, padding positions left out) that hold at most n non-zeros: what an N:M
    sparse tensor core compresses, and all of them must conform for a lossless N:M run. None
    when a segment is shorter than m (N:M does not apply); 1.0 when no pixel is read at all.
    """
    if segment_length(shape) < m:
        return None
    segments = nm_segments(view, shape)
    return nm_conformance(segments, n, m) if segments.shape[0] else 1.0


def layer_nm_excess(view: np.ndarray, shape: Shape, n: int, m: int) -> float | None:
    """Share of the non-zeros in a layer's N:M segments that N:M pruning drops (those beyond the
    n largest of each m-group, on the groups of `layer_nm_conformance`); 0 without non-zeros,
    None when a segment is shorter than m."""
    if segment_length(shape) < m:
        return None
    return nm_excess(nm_segments(view, shape), n, m)


def block_density(mask: np.ndarray, block_rows: int, block_cols: int) -> float:
    """Share of non-empty `block_rows x block_cols` blocks (edge blocks partial)."""
    rows, cols = mask.shape
    br, bc = -(-rows // block_rows), -(-cols // block_cols)
    padded = np.zeros((br * block_rows, bc * block_cols), dtype=bool)
    padded[:rows, :cols] = mask
    return float(padded.reshape(br, block_rows, bc, block_cols).any(axis=(1, 3)).mean())


def hoyer(values: np.ndarray) -> float | None:
    """Hoyer sparsity of a vector (any shape, flattened); None when undefined."""
    a = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    l2 = math.sqrt(float(np.sum(a * a)))
    if a.size < 2 or l2 == 0.0:
        return None
    root_n = math.sqrt(a.size)
    return (root_n - float(a.sum()) / l2) / (root_n - 1.0)


def hoyer_rows(abs_view: np.ndarray) -> np.ndarray:
    """Hoyer sparsity of each row of a [rows, cols] |x| array; NaN for all-zero rows."""
    cols = abs_view.shape[1]
    if cols < 2:
        return np.full(abs_view.shape[0], np.nan)
    l1 = abs_view.sum(axis=1)
    l2 = np.sqrt(np.einsum("ij,ij->i", abs_view, abs_view))
    root_n = math.sqrt(cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(l2 > 0, (root_n - l1 / l2) / (root_n - 1.0), np.nan)


def _value_stats(view: np.ndarray, thresholds: Sequence[float]) -> dict:
    a = np.abs(view.astype(np.float64))
    max_abs = float(a.max())
    row_max = a.max(axis=1, keepdims=True)
    per_row = hoyer_rows(a)
    valid = per_row[~np.isnan(per_row)]
    return {
        "max_abs": max_abs,
        "near_zero_tensor": {threshold_key(t): float(np.mean(a <= t * max_abs)) for t in thresholds},
        "near_zero_row": {threshold_key(t): float(np.mean(a <= t * row_max)) for t in thresholds},
        "hoyer": hoyer(a),
        "hoyer_row_mean": float(valid.mean()) if valid.size else None,
    }


def _pattern_stats(mask: np.ndarray, shape: Shape) -> dict:
    dead = np.flatnonzero(~mask.any(axis=0))
    row_density = mask.mean(axis=1)
    return {
        "nm_conformance": {f"{n}:{m}": layer_nm_conformance(mask, shape, n, m)
                           for n, m in NM_PATTERNS},
        "nm_excess": {f"{n}:{m}": layer_nm_excess(mask, shape, n, m) for n, m in NM_PATTERNS},
        "dead_channels": int(dead.size),
        "dead_channel_fraction": dead.size / mask.shape[1],
        "dead_channel_ids": [int(c) for c in dead],
        "row_density_percentiles": {
            f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(row_density, PERCENTILES))
        },
        "block_density": {f"{r}x{c}": block_density(mask, r, c) for r, c in BLOCK_SHAPES},
    }


def _empty_stats(thresholds: Sequence[float]) -> dict:
    none_t = {threshold_key(t): None for t in thresholds}
    return {
        "max_abs": None, "near_zero_tensor": dict(none_t), "near_zero_row": dict(none_t),
        "hoyer": None, "hoyer_row_mean": None,
        "nm_conformance": {f"{n}:{m}": None for n, m in NM_PATTERNS},
        "nm_excess": {f"{n}:{m}": None for n, m in NM_PATTERNS},
        "dead_channels": None, "dead_channel_fraction": None, "dead_channel_ids": None,
        "row_density_percentiles": {f"p{p}": None for p in PERCENTILES},
        "block_density": {f"{r}x{c}": None for r, c in BLOCK_SHAPES},
    }


def layer_stats(layer: Layer, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict:
    """All statistics of one layer as a JSON-ready nested dict; None where unavailable."""
    stats = _summary_row(layer)
    if layer.act is not None:
        content = "values"
    elif layer.act_mask is not None:
        content = "mask"
    else:
        content = "shapes-only"
    stats["content"] = content
    stats.update(_empty_stats(thresholds))
    stats["rows"] = stats["row_length"] = None
    stats["row_definition"] = ROW_DEFINITION[layer.op]
    if content == "shapes-only":
        return stats
    mask = reduction_view(layer.nonzero(), layer.shape)
    stats["rows"], stats["row_length"] = int(mask.shape[0]), int(mask.shape[1])
    stats.update(_pattern_stats(mask, layer.shape))
    if content == "values":
        stats.update(_value_stats(reduction_view(layer.act, layer.shape), thresholds))
    return stats


def select_layers(workload: Workload, patterns: Sequence[str] | None) -> list[Layer]:
    """Layers whose names match any of the glob patterns (all when None), in order."""
    if not patterns:
        return list(workload.layers)
    names = [layer.name for layer in workload.layers]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise WorkloadError(
                f"layer pattern {pattern!r} matches no layer of '{workload.model}'. Layers: "
                f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}."
            )
    return [layer for layer in workload.layers
            if any(fnmatch.fnmatchcase(layer.name, p) for p in patterns)]


def workload_stats(
    workload: Workload,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    layers: Sequence[str] | None = None,
    on_layer: Callable[[str], None] | None = None,
) -> list[dict]:
    """`layer_stats` of every layer (or those matching the `layers` globs), in order; an
    aliased layer reuses its target's numbers. `on_layer(name)` is called after each layer."""
    by_name: dict[str, dict] = {}
    out = []
    for layer in select_layers(workload, layers):
        if layer.alias_of is not None and layer.alias_of in by_name:
            stats = {**by_name[layer.alias_of], **_summary_row(layer)}
        else:
            stats = layer_stats(layer, thresholds)
        by_name[layer.name] = stats
        out.append(stats)
        if on_layer is not None:
            on_layer(layer.name)
    return out


def flatten_stats(stats: Sequence[dict]) -> pd.DataFrame:
    """A flat DataFrame of `workload_stats` output: nested keys become `name@key` columns.

    Unavailable values are NaN; the channel id lists are left out.
    """
    rows = []
    for entry in stats:
        row: dict = {}
        for key, value in entry.items():
            if key == "dead_channel_ids":
                continue
            if isinstance(value, dict):
                for sub, v in value.items():
                    row[f"{key}@{sub}"] = np.nan if v is None else v
            else:
                row[key] = np.nan if value is None else value
        rows.append(row)
    import pandas as pd

    return pd.DataFrame(rows)


def model_totals(workload: Workload) -> dict:
    """Whole-model figures: dense MACs, MAC-weighted activation density, and the zero fraction
    over all stored elements (each aliased tensor counted once)."""
    macs = sum(layer.macs for layer in workload.layers)
    weighted = sum(layer.macs * layer.act_density for layer in workload.layers)
    elements = zeros = 0
    for layer in workload.layers:
        if layer.alias_of is None and layer.has_trace:
            nz = layer.nonzero()
            elements += nz.size
            zeros += nz.size - int(np.count_nonzero(nz))
    return {
        "layers": len(workload.layers),
        "macs_dense": macs,
        "act_density_mac_weighted": weighted / macs if macs else None,
        "traced_elements": elements,
        "zero_fraction_elements": zeros / elements if elements else None,
    }
