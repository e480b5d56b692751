"""Trace format v1: one `.npz` holding a JSON `__meta__` and per-layer arrays (see DESIGN.md §3)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from accelsim.errors import WorkloadError
from accelsim.workload.layer import OPS, ConvShape, GemmShape, Layer, Workload

FORMAT_NAME = "accelsim-trace"
FORMAT_VERSION = 1
MAX_UNCOMPRESSED_BYTES = 16 * 2**30
"""Refuse archives whose members expand past this (a guard against zip bombs)."""

GEMM_KEYS = ("M", "K", "N")
CONV_KEYS = ("N", "C", "H", "W", "K", "R", "S")
COMMON_KEYS = {
    "name", "op", "act_bits", "weight_bits", "alias_of", "act_density", "weight_density", "info",
}
SHAPE_KEYS = {
    "linear": set(GEMM_KEYS) | {"batch"},
    "matmul": set(GEMM_KEYS) | {"batch"},
    "conv2d": set(CONV_KEYS) | {"stride", "padding", "dilation", "groups"},
}


def _fail(path: str, message: str) -> WorkloadError:
    return WorkloadError(f"{path}: {message}")


def _positive_int(path: str, where: str, key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise _fail(path, f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _pair(path: str, where: str, key: str, value: Any, minimum: int) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise _fail(path, f"{where}: '{key}' must be an int or [h, w], got {value!r}.")
        return (
            _positive_int(path, where, key, value[0], minimum),
            _positive_int(path, where, key, value[1], minimum),
        )
    v = _positive_int(path, where, key, value, minimum)
    return (v, v)


def _padding(path: str, where: str, value: Any) -> tuple[int, int, int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) == 2:
            value = [value[0], value[0], value[1], value[1]]
        if len(value) != 4:
            raise _fail(
                path,
                f"{where}: 'padding' must be an int, [h, w] or [top, bottom, left, right], "
                f"got {value!r}.",
            )
        t, b, left, r = (_positive_int(path, where, "padding", v, 0) for v in value)
        return (t, b, left, r)
    p = _positive_int(path, where, "padding", value, 0)
    return (p, p, p, p)


def _density(path: str, where: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
        raise _fail(path, f"{where}: '{key}' must be a number in [0, 1], got {value!r}.")
    return float(value)


def parse_layer_entry(path: str, index: int, entry: Any) -> Layer:
    """Build a shapes-only Layer from one `__meta__` layer entry, validating every field."""
    if not isinstance(entry, dict):
        raise _fail(path, f"layer #{index} in __meta__ must be an object, got {type(entry).__name__}.")
    name = entry.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise _fail(
            path, f"layer #{index} needs a non-empty string 'name' without '/', got {name!r}."
        )
    where = f"layer '{name}'"
    op = entry.get("op")
    if op not in OPS:
        raise _fail(
            path,
            f"{where}: unknown op {op!r}. Known ops: {', '.join(OPS)} (a depthwise "
            "convolution is conv2d with groups = C).",
        )
    unknown = set(entry) - COMMON_KEYS - SHAPE_KEYS[op]
    if unknown:
        raise _fail(
            path,
            f"{where}: unknown key(s) {sorted(unknown)} for op '{op}'. Allowed: "
            f"{sorted(COMMON_KEYS | SHAPE_KEYS[op])}; put free-form data under 'info'.",
        )
    if op == "conv2d":
        missing = [k for k in CONV_KEYS if k not in entry]
        if missing:
            raise _fail(path, f"{where}: conv2d is missing {missing}.")
        dims = {k: _positive_int(path, where, k, entry[k]) for k in CONV_KEYS}
        groups = _positive_int(path, where, "groups", entry.get("groups", 1))
        if dims["C"] % groups or dims["K"] % groups:
            raise _fail(
                path, f"{where}: groups={groups} must divide C={dims['C']} and K={dims['K']}."
            )
        shape: ConvShape | GemmShape = ConvShape(
            **dims,
            stride=_pair(path, where, "stride", entry.get("stride", 1), 1),
            padding=_padding(path, where, entry.get("padding", 0)),
            dilation=_pair(path, where, "dilation", entry.get("dilation", 1), 1),
            groups=groups,
        )
        if shape.E < 1 or shape.F < 1:
            raise _fail(
                path,
                f"{where}: the {shape.R}x{shape.S} kernel (dilation {shape.dilation}) does not fit "
                f"the {shape.H}x{shape.W} input with padding {shape.padding}; output would be "
                f"{shape.E}x{shape.F}. Fix H/W, R/S or padding.",
            )
    else:
        missing = [k for k in GEMM_KEYS if k not in entry]
        if missing:
            raise _fail(path, f"{where}: {op} is missing {missing}.")
        shape = GemmShape(
            **{k: _positive_int(path, where, k, entry[k]) for k in GEMM_KEYS},
            batch=_positive_int(path, where, "batch", entry.get("batch", 1)),
        )
    alias_of = entry.get("alias_of")
    if alias_of is not None and not isinstance(alias_of, str):
        raise _fail(path, f"{where}: 'alias_of' must be a layer name, got {alias_of!r}.")
    info = entry.get("info", {})
    if not isinstance(info, dict):
        raise _fail(path, f"{where}: 'info' must be an object, got {type(info).__name__}.")
    return Layer(
        name=name,
        op=op,
        shape=shape,
        act_bits=_positive_int(path, where, "act_bits", entry.get("act_bits", 16)),
        weight_bits=_positive_int(path, where, "weight_bits", entry.get("weight_bits", 16)),
        alias_of=alias_of,
        declared_act_density=_density(path, where, "act_density", entry.get("act_density")),
        declared_weight_density=_density(
            path, where, "weight_density", entry.get("weight_density")
        ),
        extra=info,
    )


def _layer_entry(layer: Layer) -> dict:
    entry: dict[str, Any] = {"name": layer.name, "op": layer.op}
    s = layer.shape
    if isinstance(s, ConvShape):
        entry.update(N=s.N, C=s.C, H=s.H, W=s.W, K=s.K, R=s.R, S=s.S,
                     stride=list(s.stride), padding=list(s.padding),
                     dilation=list(s.dilation), groups=s.groups)
    else:
        entry.update(M=s.M, K=s.K, N=s.N, batch=s.batch)
    entry.update(act_bits=layer.act_bits, weight_bits=layer.weight_bits)
    if layer.alias_of:
        entry["alias_of"] = layer.alias_of
    if not layer.has_trace and layer.alias_of is None:
        entry["act_density"] = layer.act_density
    if layer.weight_nonzero() is None and layer.declared_weight_density is not None:
        entry["weight_density"] = layer.declared_weight_density
    if layer.extra:
        entry["info"] = layer.extra
    return entry


def _check_values(path: str, key: str, array: np.ndarray) -> None:
    if not np.issubdtype(array.dtype, np.floating):
        raise _fail(
            path, f"array '{key}' has dtype {array.dtype}; activation and weight values must be "
            "floating point (float16 in format v1).",
        )
    if not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise _fail(
            path,
            f"array '{key}' holds {bad} NaN/Inf value(s). Re-capture the layer, or replace "
            "non-finite values before saving (a float16 overflow during capture is the usual cause).",
        )


def _unpack_mask(path: str, key: str, packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    n = math.prod(shape)
    if packed.dtype != np.uint8 or packed.ndim != 1 or packed.size != (n + 7) // 8:
        raise _fail(
            path,
            f"array '{key}' must be np.packbits of the {shape} non-zero map (uint8, 1-D, "
            f"{(n + 7) // 8} bytes), got dtype {packed.dtype} shape {packed.shape}.",
        )
    return np.unpackbits(packed, count=n).astype(bool).reshape(shape)


def _read_meta(path: str, files: dict[str, np.ndarray]) -> dict:
    if "__meta__" not in files:
        raise _fail(path, "no '__meta__' entry: this is not an accelsim trace (format v1).")
    raw = files["__meta__"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _fail(path, "'__meta__' must be a 1-D uint8 array of UTF-8 JSON.")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"'__meta__' is not valid UTF-8 JSON ({exc}).") from None
    if not isinstance(meta, dict):
        raise _fail(path, "'__meta__' must be a JSON object.")
    if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
        raise _fail(
            path,
            f"'__meta__' says format={meta.get('format')!r} version={meta.get('version')!r}; "
            f"this build reads format '{FORMAT_NAME}' version {FORMAT_VERSION}.",
        )
    if not isinstance(meta.get("layers"), list) or not meta["layers"]:
        raise _fail(path, "'__meta__' must list at least one layer under 'layers'.")
    return meta


def _open_arrays(path: str) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise WorkloadError(f"{path}: no such workload file. Check the path.")
    try:
        with zipfile.ZipFile(p) as zf:
            expanded = sum(info.file_size for info in zf.infolist())
        if expanded > MAX_UNCOMPRESSED_BYTES:
            raise _fail(
                path,
                f"members expand to {expanded / 2**30:.1f} GiB, over the "
                f"{MAX_UNCOMPRESSED_BYTES / 2**30:.0f} GiB limit; this looks like a zip bomb or "
                "an untruncated capture. Re-capture with --max-mb.",
            )
        with np.load(p, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except WorkloadError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise _fail(
                path, "it contains pickled Python objects, which are refused for safety. Save "
                "arrays with plain numeric dtypes (accelsim.workload.save_workload does).",
            ) from None
        raise _fail(path, f"cannot be read as an .npz archive ({exc}).") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise _fail(
            path, f"is truncated or not an .npz archive ({type(exc).__name__}: {exc}). "
            "Re-create or re-download it.",
        ) from None


def load_workload(path: str | Path) -> Workload:
    """Load and validate a trace; raise WorkloadError naming the file, layer and fix."""
    path = str(path)
    files = _open_arrays(path)
    meta = _read_meta(path, files)
    layers: list[Layer] = []
    names: set[str] = set()
    for i, entry in enumerate(meta["layers"]):
        layer = parse_layer_entry(path, i, entry)
        if layer.name in names:
            raise _fail(path, f"layer name '{layer.name}' appears twice; names must be unique.")
        names.add(layer.name)
        layers.append(layer)
    by_name = {layer.name: layer for layer in layers}

    used: set[str] = {"__meta__"}
    for layer in layers:
        _attach_arrays(path, layer, files, used)
    unknown = sorted(set(files) - used)
    if unknown:
        raise _fail(
            path, f"array(s) {unknown[:5]} name no layer in '__meta__' (expected keys "
            "act/<layer>, mask/<layer>, weight/<layer>, wmask/<layer>).",
        )
    for layer in layers:
        _resolve_alias(path, layer, by_name)

    edges = _read_edges(path, meta.get("edges", []), names)
    extra = {k: v for k, v in meta.items()
             if k not in {"format", "version", "model", "source", "created", "layers", "edges"}}
    return Workload(
        model=str(meta.get("model", Path(path).stem)),
        layers=layers,
        edges=edges,
        source=meta.get("source", {}) if isinstance(meta.get("source"), dict) else {},
        created=str(meta.get("created", "")),
        extra_meta=extra,
        content_hash=_file_hash(path),
    )


def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _operand_arrays(
    path: str, layer: Layer, files: dict[str, np.ndarray], used: set[str],
    values_key: str, mask_key: str, expected: tuple[int, ...],
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(float16 values, bool mask) of one operand of a layer; at most one is present."""
    if values_key in files and mask_key in files:
        raise _fail(path, f"layer '{layer.name}' has both '{values_key}' and '{mask_key}'; keep one.")
    if values_key in files:
        arr = files[values_key]
        if tuple(arr.shape) != expected:
            raise _fail(
                path, f"layer '{layer.name}': '{values_key}' has shape {tuple(arr.shape)} but the "
                f"layer's shapes say {expected} ({layer.op} natural layout). Fix the shapes or the "
                "array.",
            )
        _check_values(path, values_key, arr)
        used.add(values_key)
        return arr.astype(np.float16, copy=False), None
    if mask_key in files:
        used.add(mask_key)
        return None, _unpack_mask(path, mask_key, files[mask_key], expected)
    return None, None


def _attach_arrays(path: str, layer: Layer, files: dict[str, np.ndarray], used: set[str]) -> None:
    name = layer.name
    layer.act, layer.act_mask = _operand_arrays(
        path, layer, files, used, f"act/{name}", f"mask/{name}", layer.shape.act_shape)
    layer.weight, layer.weight_mask = _operand_arrays(
        path, layer, files, used, f"weight/{name}", f"wmask/{name}", layer.shape.weight_shape)


def _resolve_alias(path: str, layer: Layer, by_name: dict[str, Layer]) -> None:
    if layer.alias_of is None:
        return
    target = by_name.get(layer.alias_of)
    if target is None or target is layer:
        raise _fail(
            path, f"layer '{layer.name}': alias_of '{layer.alias_of}' names no other layer."
        )
    if target.alias_of is not None:
        raise _fail(
            path, f"layer '{layer.name}': alias_of '{layer.alias_of}' is itself an alias; point "
            f"at '{target.alias_of}' instead.",
        )
    if layer.has_trace:
        raise _fail(
            path, f"layer '{layer.name}' is an alias of '{target.name}' and must not store its "
            "own activation array.",
        )
    if layer.shape.act_shape != target.shape.act_shape:
        raise _fail(
            path, f"layer '{layer.name}' reads the same tensor as '{target.name}' but its input "
            f"shape {layer.shape.act_shape} differs from {target.shape.act_shape}.",
        )
    layer.act, layer.act_mask = target.act, target.act_mask
    layer.declared_act_density = target.declared_act_density


def _read_edges(path: str, raw: Any, names: set[str]) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        raise _fail(path, "'edges' must be a list of [producer, consumer] pairs.")
    edges: list[tuple[str, str]] = []
    for e in raw:
        if not (isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(x, str) for x in e)):
            raise _fail(path, f"edge {e!r} must be a [producer, consumer] pair of layer names.")
        missing = [x for x in e if x not in names]
        if missing:
            raise _fail(path, f"edge {list(e)} names unknown layer(s) {missing}.")
        edges.append((e[0], e[1]))
    g = nx.DiGraph(edges)
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        raise _fail(path, f"the layer graph has a cycle {cycle}; edges must run producer -> consumer.")
    return edges


def workload_meta(workload: Workload) -> dict:
    """The `__meta__` JSON object for a workload."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": workload.model,
        "source": workload.source,
        "created": workload.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "layers": [_layer_entry(layer) for layer in workload.layers],
        "edges": [list(e) for e in workload.edges],
        **workload.extra_meta,
    }


def save_workload(workload: Workload, path: str | Path) -> None:
    """Write a trace (format v1, compressed); aliased layers store no array of their own."""
    arrays: dict[str, np.ndarray] = {}
    with np.errstate(over="ignore"):
        _collect_arrays(workload, str(path), arrays)
    meta = json.dumps(workload_meta(workload)).encode("utf-8")
    arrays["__meta__"] = np.frombuffer(meta, dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _collect_arrays(workload: Workload, path: str, arrays: dict[str, np.ndarray]) -> None:
    """Arrays to store, keyed as in the format; aliased layers store no activation."""
    for layer in workload.layers:
        if layer.alias_of is None:
            if layer.act is not None:
                arrays[f"act/{layer.name}"] = np.asarray(layer.act, dtype=np.float16)
                _check_values(path, f"act/{layer.name}", arrays[f"act/{layer.name}"])
            elif layer.act_mask is not None:
                arrays[f"mask/{layer.name}"] = np.packbits(np.asarray(layer.act_mask, bool).ravel())
        if layer.weight is not None:
            arrays[f"weight/{layer.name}"] = np.asarray(layer.weight, dtype=np.float16)
            _check_values(path, f"weight/{layer.name}", arrays[f"weight/{layer.name}"])
        elif layer.weight_mask is not None:
            arrays[f"wmask/{layer.name}"] = np.packbits(np.asarray(layer.weight_mask, bool).ravel())
