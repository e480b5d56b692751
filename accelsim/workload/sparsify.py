"""What-if activation sparsification of a captured trace (TEAL, CATS, CHESS, top-k, N:M).

Each method zeroes input activation values of the selected layers and returns a new workload
whose `extra_meta["transforms"]` list gains one record (saved in the trace's `__meta__`).
Rows, channels and the reduction axis are those of the 2-D reduction view
(`accelsim.workload.reduction`): tokens or input pixels x the vector a layer reduces over.

* `threshold`, `target=s`: zero the `round(s * n)` smallest |x| of each layer's tensor, a
  magnitude threshold calibrated on the trace itself (TEAL, Liu et al. ICLR 2025; CATS,
  Lee et al. 2024). With `scope="model"` one threshold is calibrated over all selected
  layers together so that the model-wide share of zeros is `s`; magnitudes are first divided
  by each layer's RMS (`normalize="rms"`, the default, since layer scales differ by orders
  of magnitude) or compared raw (`normalize="none"`).
* `threshold`, `threshold=t`: zero every |x| <= t (a fixed threshold, absolute units).
* `topk`, `k=K` or `keep_fraction=f`: keep the K (or round(f * row length)) largest |x| of
  every row.
* `nm`, `n=N, m=M`: keep the N largest |x| of every group of M consecutive row elements
  (groups start at column 0; a trailing partial group keeps its N largest).
* `channel`, `target=s`: per-channel thresholds (CHESS, Zhang et al. 2024): in every
  channel (column) the share s of smallest |x| is zeroed; counts are rounded per channel
  with largest remainders so the layer also holds exactly round(s * n) zeros.

Ties: when equal magnitudes straddle the cut, the element in the lower position (row-major
order of the view, or the flattened tensor for `threshold`) is kept, so counts are exact.
Elements already zero count towards a target: a layer (for `channel`, a channel) already
sparser than the target is left unchanged, so a ReLU layer with unevenly sparse channels ends
sparser than the target under `channel`. Aliased layers (Q/K/V reading one tensor) share one
transformed tensor; selecting any of them transforms the shared tensor, which every alias reads.
Layers without values (mask-only or shapes-only) cannot be ranked by magnitude: they are
skipped and listed when no `layers` patterns are given, and refused when a pattern names them.

The report's `threshold` is the largest |x| zeroed in the layer (the fixed cut-off for a fixed
threshold; for `channel` the largest of the per-channel cut-offs; NaN for `topk` and `nm`,
whose cut-off differs per row or group).

When the trace holds a layer's weights, the relative output error
||X W - X~ W|| / ||X W|| is reported (see `accelsim.workload.output_error`), next to the
relative input change ||X - X~|| / ||X||.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from accelsim import __version__
from accelsim.errors import AccelsimError
from accelsim.workload.kernels import keep_largest_mask
from accelsim.workload.layer import Layer, Workload
from accelsim.workload.output_error import relative_output_error
from accelsim.workload.reduction import from_reduction_view, reduction_view

METHODS: tuple[str, ...] = ("threshold", "topk", "nm", "channel")
Method = Literal["threshold", "topk", "nm", "channel"]
REPORT_COLUMNS = [
    "layer", "op", "alias_of", "density_before", "density_after", "threshold",
    "rel_act_error", "rel_output_error",
]


class SparsifyError(AccelsimError):
    """Bad parameters for a what-if transform, or layers it cannot transform."""


@dataclasses.dataclass
class SparsifyResult:
    """The transformed workload, a per-layer report, and the record added to its metadata."""

    workload: Workload
    report: pd.DataFrame
    record: dict
    notes: list[str]


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _flag(name: str) -> str:
    """A parameter as the Python keyword and the CLI flag, e.g. keep_fraction (--keep-fraction)."""
    return f"{name} (--{name.replace('_', '-')})"


def _check_fraction(name: str, value: float | None) -> None:
    if value is not None and not (0.0 <= value <= 1.0):
        raise SparsifyError(f"{name} must be a fraction in [0, 1], got {value!r}.")


def _validate(method: str, p: dict) -> dict:
    """Check that the method's parameters are given, in range, and not mixed with others'."""
    if method not in METHODS:
        raise SparsifyError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    allowed = {
        "threshold": {"target", "threshold", "scope", "normalize"},
        "topk": {"k", "keep_fraction"},
        "nm": {"n", "m"},
        "channel": {"target"},
    }[method]
    stray = sorted(k for k, v in p.items() if v is not None and k not in allowed)
    if stray:
        raise SparsifyError(
            f"method '{method}' does not take {', '.join(_flag(k) for k in stray)}; it takes "
            f"{', '.join(_flag(k) for k in sorted(allowed))}."
        )
    _check_fraction("target", p["target"])
    _check_fraction("keep_fraction", p["keep_fraction"])
    if method == "threshold":
        if (p["target"] is None) == (p["threshold"] is None):
            raise SparsifyError(
                "method 'threshold' needs exactly one of target (--target, a sparsity to "
                "calibrate a threshold for, e.g. 0.5) or threshold (--threshold, a fixed |x| "
                "cut-off)."
            )
        if p["threshold"] is not None and not p["threshold"] >= 0:
            raise SparsifyError(f"threshold must be >= 0, got {p['threshold']!r}.")
        if p["scope"] not in (None, "layer", "model"):
            raise SparsifyError(f"scope must be 'layer' or 'model', got {p['scope']!r}.")
        if p["normalize"] not in (None, "rms", "none"):
            raise SparsifyError(f"normalize must be 'rms' or 'none', got {p['normalize']!r}.")
        if p["threshold"] is not None and (p["scope"] or p["normalize"]):
            raise SparsifyError(
                "scope and normalize only apply to a calibrated target; a fixed threshold "
                "is the same cut-off for every selected layer."
            )
        if p["normalize"] and p["scope"] != "model":
            raise SparsifyError("normalize only applies with scope 'model'.")
    elif method == "topk":
        if (p["k"] is None) == (p["keep_fraction"] is None):
            raise SparsifyError(
                "method 'topk' needs exactly one of k (--k, values kept per row) or "
                "keep_fraction (--keep-fraction, share of each row kept)."
            )
        if p["k"] is not None and (isinstance(p["k"], bool) or int(p["k"]) != p["k"] or p["k"] < 0):
            raise SparsifyError(f"k must be an integer >= 0, got {p['k']!r}.")
    elif method == "nm":
        n, m = p["n"], p["m"]
        if n is None or m is None:
            raise SparsifyError("method 'nm' needs both n and m, e.g. --n 2 --m 4 for 2:4.")
        if int(n) != n or int(m) != m or not (1 <= n <= m):
            raise SparsifyError(f"n:m must be integers with 1 <= n <= m, got {n}:{m}.")
    elif p["target"] is None:
        raise SparsifyError(
            "method 'channel' needs target (--target), the share of each channel to zero."
        )
    params = {k: v for k, v in p.items() if v is not None and k != "layers"}
    if method == "threshold" and p["target"] is not None:
        params.setdefault("scope", "layer")
        if params["scope"] == "model":
            params.setdefault("normalize", "rms")
    return params


def _select(workload: Workload, patterns: Sequence[str] | None) -> tuple[list[Layer], list[str]]:
    """Owners of the tensors to transform (alias targets), and notes on what was added."""
    names = [layer.name for layer in workload.layers]
    if patterns:
        picked = []
        for pattern in patterns:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise SparsifyError(
                    f"layer pattern {pattern!r} matches no layer. Layers: "
                    f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}."
                )
            picked.extend(hits)
        picked_set = set(picked)
    else:
        picked_set = set(names)
    notes = []
    owners: list[str] = []
    for layer in workload.layers:
        if layer.name not in picked_set:
            continue
        owner = layer.alias_of or layer.name
        if owner not in picked_set:
            notes.append(f"'{layer.name}' reads the same tensor as '{owner}'; the shared tensor "
                         f"is transformed, so '{owner}' changes too.")
        if owner not in owners:
            owners.append(owner)
    order = {n: i for i, n in enumerate(names)}
    owner_layers = [workload.layer(n) for n in sorted(owners, key=order.__getitem__)]
    usable = []
    for layer in owner_layers:
        if layer.act is not None:
            usable.append(layer)
            continue
        what = "only a non-zero mask" if layer.act_mask is not None else "no activation array"
        if patterns:
            raise SparsifyError(
                f"layer '{layer.name}' has {what}; magnitude-based transforms need values. "
                "Re-capture it with --keep values, or leave it out of --layers."
            )
        notes.append(f"skipped '{layer.name}': it has {what}.")
    if not usable:
        raise SparsifyError(
            "no selected layer holds activation values; capture the trace with --keep values."
        )
    return usable, notes


def _largest_remainder_zeros(rows: int, cols: int, target: float) -> np.ndarray:
    """Zeros per channel: round(target * rows * cols) in all, each within one of target * rows."""
    total = _round_half_up(target * rows * cols)
    base = min(rows, int(math.floor(target * rows)))
    zeros = np.full(cols, base, dtype=np.int64)
    extra = min(cols, max(0, total - base * cols))
    zeros[:extra] += 1
    return np.minimum(zeros, rows)


def _keep_masks(owners: list[Layer], method: str, params: dict) -> tuple[list[np.ndarray], dict]:
    """Keep masks in each owner's reduction view, plus calibration facts for the record."""
    views = [np.abs(reduction_view(layer.act, layer.shape).astype(np.float64)) for layer in owners]
    calibration: dict = {}
    masks = []
    if method == "threshold" and "threshold" in params:
        masks = [a > params["threshold"] for a in views]
    elif method == "threshold" and params["scope"] == "model":
        scales = []
        for a in views:
            rms = math.sqrt(float(np.mean(a * a))) if params["normalize"] == "rms" else 1.0
            scales.append(rms if rms > 0 else 1.0)
        flat = np.concatenate([(a / s).ravel() for a, s in zip(views, scales)])
        zeros = _round_half_up(params["target"] * flat.size)
        keep = keep_largest_mask(flat.reshape(1, -1), flat.size,
                                 np.array([flat.size - zeros], np.int64))[0]
        dropped = flat[~keep]
        calibration["normalized_threshold"] = float(dropped.max()) if dropped.size else 0.0
        start = 0
        for a in views:
            masks.append(keep[start:start + a.size].reshape(a.shape))
            start += a.size
    elif method == "threshold":
        for a in views:
            zeros = _round_half_up(params["target"] * a.size)
            keep = keep_largest_mask(a.reshape(1, -1), a.size, np.array([a.size - zeros], np.int64))
            masks.append(keep.reshape(a.shape))
    elif method == "topk":
        for a in views:
            rows, length = a.shape
            k = params["k"] if "k" in params else _round_half_up(params["keep_fraction"] * length)
            masks.append(keep_largest_mask(a, length, np.full(rows, k, np.int64)))
    elif method == "nm":
        for a in views:
            masks.append(keep_largest_mask(a, params["m"], np.full(a.shape[0], params["n"], np.int64)))
    else:
        for a in views:
            rows, cols = a.shape
            zeros = _largest_remainder_zeros(rows, cols, params["target"])
            by_channel = np.ascontiguousarray(a.T)
            masks.append(np.ascontiguousarray(keep_largest_mask(by_channel, rows, rows - zeros).T))
    return masks, calibration


def _norm(a: np.ndarray) -> float:
    """Frobenius norm in float64."""
    a = np.asarray(a, np.float64)
    return math.sqrt(float(np.sum(a * a)))


def _norm_ratio(delta: np.ndarray, ref: np.ndarray) -> float | None:
    den, num = _norm(ref), _norm(delta)
    if den == 0.0:
        return None if num > 0.0 else 0.0
    return num / den


def sparsify(
    workload: Workload,
    method: Method,
    *,
    target: float | None = None,
    threshold: float | None = None,
    scope: Literal["layer", "model"] | None = None,
    normalize: Literal["rms", "none"] | None = None,
    k: int | None = None,
    keep_fraction: float | None = None,
    n: int | None = None,
    m: int | None = None,
    layers: Sequence[str] | None = None,
    output_error: bool = True,
    on_layer: Callable[[str], None] | None = None,
) -> SparsifyResult:
    """Apply one what-if transform (see module docstring) and return the new workload.

    `layers` are glob patterns on layer names (all layers when None). `output_error=False`
    skips the ||XW - X~W|| / ||XW|| computation. The input workload is not modified.
    """
    params = _validate(method, {
        "target": target, "threshold": threshold, "scope": scope, "normalize": normalize,
        "k": k, "keep_fraction": keep_fraction, "n": n, "m": m,
    })
    owners, notes = _select(workload, layers)
    masks, calibration = _keep_masks(owners, method, params)
    new_act: dict[str, np.ndarray] = {}
    for layer, keep in zip(owners, masks):
        view = reduction_view(layer.act, layer.shape)
        new_act[layer.name] = from_reduction_view(np.where(keep, view, np.float16(0)), layer.shape)

    new_layers = []
    rows = []
    for layer in workload.layers:
        owner = layer.alias_of or layer.name
        if owner not in new_act:
            new_layers.append(dataclasses.replace(layer, extra=copy.deepcopy(layer.extra)))
            continue
        before, after = workload.layer(owner).act, new_act[owner]
        changed = dataclasses.replace(layer, act=after, act_mask=None,
                                      extra=copy.deepcopy(layer.extra))
        new_layers.append(changed)
        dropped = np.abs(before[(before != 0) & (after == 0)].astype(np.float64))
        if method == "threshold" and "threshold" in params:
            cut: float | None = params["threshold"]
        elif method in ("threshold", "channel"):
            cut = float(dropped.max()) if dropped.size else 0.0
        else:
            cut = None
        err = None
        if output_error and layer.weight is not None:
            err = relative_output_error(layer.shape, before, after, layer.weight)
        rows.append({
            "layer": layer.name, "op": layer.op, "alias_of": layer.alias_of or "",
            "density_before": float(np.count_nonzero(before)) / before.size,
            "density_after": float(np.count_nonzero(after)) / after.size,
            "threshold": np.nan if cut is None else cut,
            "rel_act_error": _nan_if_none(_norm_ratio(before.astype(np.float64) - after, before)),
            "rel_output_error": _nan_if_none(err),
        })
        if on_layer is not None:
            on_layer(layer.name)

    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    elements = sum(new_act[o.name].size for o in owners)
    zeros_before = sum(o.act.size - int(np.count_nonzero(o.act)) for o in owners)
    zeros_after = sum(a.size - int(np.count_nonzero(a)) for a in new_act.values())
    record = {
        "method": method,
        "params": params,
        "layers": [o.name for o in owners],
        "tool": f"accelsim {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "input_hash": workload.content_hash,
        "sparsity_before": zeros_before / elements,
        "sparsity_after": zeros_after / elements,
        **calibration,
        "per_layer": {
            r["layer"]: {k: _json_number(r[k]) for k in REPORT_COLUMNS[3:]} for r in rows
        },
        "notes": notes,
    }
    extra_meta = copy.deepcopy(workload.extra_meta)
    extra_meta["transforms"] = [*extra_meta.get("transforms", []), record]
    out = Workload(
        model=workload.model, layers=new_layers, edges=list(workload.edges),
        source=copy.deepcopy(workload.source), created=workload.created, extra_meta=extra_meta,
    )
    by_name = {layer.name: layer for layer in new_layers}
    for layer in new_layers:
        if layer.alias_of is not None:
            layer.act = by_name[layer.alias_of].act
    return SparsifyResult(workload=out, report=report, record=record, notes=notes)


def _nan_if_none(value: float | None) -> float:
    return np.nan if value is None else value


def _json_number(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(value)
