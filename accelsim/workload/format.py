"""Trace format v1: one `.npz` holding a JSON `__meta__` and per-layer arrays (see DESIGN.md §3).

A trace is untrusted input, so loading never lets the file decide how much is read or computed
before it has been checked:

* the zip: members must be `.npy` arrays, stored or deflated (no encryption or other methods),
  with unique names; their declared sizes must agree with their compressed sizes (deflate
  cannot expand a byte into more than `DEFLATE_MAX_RATIO`), and all of them together must fit
  `MAX_UNCOMPRESSED_BYTES` and the memory budget (`memory_budget_bytes`: half the memory this
  process can still use) once decoded;
* each member's `.npy` header (version 1 or 2, a plain numeric dtype, the data size it
  declares equal to the member's size) is read before its data, and its shape and dtype are
  checked against the layer it belongs to before any data is read; deflate and CRC errors name
  the member;
* `__meta__` is at most `MAX_META_BYTES` of UTF-8 JSON nested at most `MAX_JSON_DEPTH` deep,
  with at most `MAX_LAYERS` layers and `MAX_EDGES` edges;
* layer sizes are bounded (`accelsim.workload.layer.MAX_*`) and a convolution's padding must be
  within the kernel's reach (a side's padding at most max(dilation x (R - 1), stride - 1));
* values must survive float16, the format's precision: an array stored wider (float32/64) may
  not hold values a float16 cannot keep (above 65504 in magnitude, or non-zero below its smallest
  normal, 2^-14), since casting them would silently change the layer's density or make it
  infinite; `save_workload` refuses the same values.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import resource
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from accelsim.errors import WorkloadError
from accelsim.workload.layer import (
    MAX_DIM,
    MAX_KERNEL_TAPS,
    MAX_MACS,
    MAX_STRIDE,
    MAX_TAPS_PER_INPUT,
    OPS,
    ConvShape,
    GemmShape,
    Layer,
    Workload,
)

FORMAT_NAME = "accelsim-trace"
FORMAT_VERSION = 1
MAX_UNCOMPRESSED_BYTES = 16 * 2**30
"""Refuse archives whose members expand past this (a guard against zip bombs)."""
MAX_META_BYTES = 64 * 2**20
"""Largest `__meta__` JSON, bytes."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of lists and objects in `__meta__`."""
MAX_LAYERS = 2**16
"""Most layers of one trace."""
MAX_EDGES = 2**20
"""Most edges of one trace's layer graph."""
MAX_NAME_CHARS = 1024
"""Longest layer name, characters."""
DEFLATE_MAX_RATIO = 1032
"""Most bytes deflate can produce from one compressed byte (its longest match per code)."""
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
"""Member compression methods read (what numpy.savez and savez_compressed write)."""
READ_CHUNK_BYTES = 16 * 2**20
"""Bytes decompressed at a time when reading a member."""
FLOAT16_MAX = float(np.finfo(np.float16).max)
"""Largest float16 magnitude, 65504."""
FLOAT16_SMALLEST_NORMAL = float(np.finfo(np.float16).smallest_normal)
"""Smallest normal float16 magnitude, 2^-14."""

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
MAX_OPERAND_BITS = 64
"""Widest act_bits / weight_bits of a layer."""


def _fail(path: str, message: str) -> WorkloadError:
    return WorkloadError(f"{path}: {message}")


def _positive_int(path: str, where: str, key: str, value: Any, minimum: int = 1,
                  maximum: int = MAX_DIM) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or not minimum <= value <= maximum):
        raise _fail(path, f"{where}: '{key}' must be an integer >= {minimum} (and at most "
                          f"{maximum}), got {_short(value)}.")
    return int(value)


def _short(value: Any) -> str:
    """`repr(value)`, cut to a readable length."""
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _pair(path: str, where: str, key: str, value: Any, minimum: int,
          maximum: int = MAX_STRIDE) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise _fail(path, f"{where}: '{key}' must be an int or [h, w], got {_short(value)}.")
        return (
            _positive_int(path, where, key, value[0], minimum, maximum),
            _positive_int(path, where, key, value[1], minimum, maximum),
        )
    v = _positive_int(path, where, key, value, minimum, maximum)
    return (v, v)


def _padding(path: str, where: str, value: Any) -> tuple[int, int, int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) == 2:
            value = [value[0], value[0], value[1], value[1]]
        if len(value) != 4:
            raise _fail(
                path,
                f"{where}: 'padding' must be an int, [h, w] or [top, bottom, left, right], "
                f"got {_short(value)}.",
            )
        t, b, left, r = (_positive_int(path, where, "padding", v, 0) for v in value)
        return (t, b, left, r)
    p = _positive_int(path, where, "padding", value, 0)
    return (p, p, p, p)


def _density(path: str, where: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
        raise _fail(path, f"{where}: '{key}' must be a number in [0, 1], got {_short(value)}.")
    return float(value)


def _check_conv(path: str, where: str, shape: ConvShape) -> None:
    """Conv geometry sanity: groups divide the channels, the kernel fits the padded input, each
    side's padding is within the kernel's reach, and the windows do not dwarf the input."""
    if shape.C % shape.groups or shape.K % shape.groups:
        raise _fail(path, f"{where}: groups={shape.groups} must divide C={shape.C} and "
                          f"K={shape.K}.")
    if shape.R * shape.S > MAX_KERNEL_TAPS:
        raise _fail(path, f"{where}: a {shape.R}x{shape.S} kernel has more than "
                          f"{MAX_KERNEL_TAPS} taps. Check R and S.")
    top, bottom, left, right = shape.padding
    for axis, (pads, k, dil, stride) in {
            "height": ((top, bottom), shape.R, shape.dilation[0], shape.stride[0]),
            "width": ((left, right), shape.S, shape.dilation[1], shape.stride[1])}.items():
        reach = max(dil * (k - 1), stride - 1)
        if max(pads) > reach:
            raise _fail(
                path, f"{where}: padding {list(shape.padding)} reaches past the kernel along the "
                f"{axis}: a side may pad at most {reach} (dilation x (kernel - 1), or stride - 1 "
                "for a last window that overhangs); more padding only adds windows that read "
                "nothing. Fix the padding.")
    if shape.E < 1 or shape.F < 1:
        raise _fail(
            path,
            f"{where}: the {shape.R}x{shape.S} kernel (dilation {shape.dilation}) does not fit "
            f"the {shape.H}x{shape.W} input with padding {shape.padding}; output would be "
            f"{shape.E}x{shape.F}. Fix H/W, R/S or padding.",
        )
    if max(shape.E, shape.F) > MAX_DIM:
        raise _fail(path, f"{where}: the output would be {shape.E}x{shape.F}, above {MAX_DIM} "
                          "along a side. Check H/W, padding and dilation.")
    taps = shape.E * shape.F * shape.R * shape.S
    if taps > MAX_TAPS_PER_INPUT * shape.H * shape.W:
        raise _fail(
            path, f"{where}: {shape.E}x{shape.F} windows of {shape.R}x{shape.S} taps over a "
            f"{shape.H}x{shape.W} input read each input position {taps / (shape.H * shape.W):.3g} "
            f"times on average, more than {MAX_TAPS_PER_INPUT}: the padding or dilation makes "
            "windows that are almost all padding. Check padding, dilation and stride.")


def parse_layer_entry(path: str, index: int, entry: Any) -> Layer:
    """Build a shapes-only Layer from one `__meta__` layer entry, validating every field."""
    if not isinstance(entry, dict):
        raise _fail(path, f"layer #{index} in __meta__ must be an object, got {type(entry).__name__}.")
    name = entry.get("name")
    if (not isinstance(name, str) or not name or "/" in name or len(name) > MAX_NAME_CHARS
            or not name.isprintable()):
        raise _fail(
            path, f"layer #{index} needs a non-empty string 'name' of printable characters "
                  f"without '/', at most {MAX_NAME_CHARS} long, got {_short(name)}."
        )
    where = f"layer '{name}'"
    op = entry.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise _fail(
            path,
            f"{where}: unknown op {_short(op)}. Known ops: {', '.join(OPS)} (a depthwise "
            "convolution is conv2d with groups = C).",
        )
    unknown = set(entry) - COMMON_KEYS - SHAPE_KEYS[op]
    if unknown:
        raise _fail(
            path,
            f"{where}: unknown key(s) {sorted(unknown)[:10]} for op '{op}'. Allowed: "
            f"{sorted(COMMON_KEYS | SHAPE_KEYS[op])}; put free-form data under 'info'.",
        )
    if op == "conv2d":
        missing = [k for k in CONV_KEYS if k not in entry]
        if missing:
            raise _fail(path, f"{where}: conv2d is missing {missing}.")
        dims = {k: _positive_int(path, where, k, entry[k]) for k in CONV_KEYS}
        groups = _positive_int(path, where, "groups", entry.get("groups", 1))
        shape: ConvShape | GemmShape = ConvShape(
            **dims,
            stride=_pair(path, where, "stride", entry.get("stride", 1), 1),
            padding=_padding(path, where, entry.get("padding", 0)),
            dilation=_pair(path, where, "dilation", entry.get("dilation", 1), 1),
            groups=groups,
        )
        _check_conv(path, where, shape)
    else:
        missing = [k for k in GEMM_KEYS if k not in entry]
        if missing:
            raise _fail(path, f"{where}: {op} is missing {missing}.")
        shape = GemmShape(
            **{k: _positive_int(path, where, k, entry[k]) for k in GEMM_KEYS},
            batch=_positive_int(path, where, "batch", entry.get("batch", 1)),
        )
    if shape.macs > MAX_MACS:
        raise _fail(path, f"{where}: {shape.macs:.3e} dense MACs is above the {MAX_MACS:.3e} "
                          "a layer may have. Check its sizes.")
    alias_of = entry.get("alias_of")
    if alias_of is not None and not isinstance(alias_of, str):
        raise _fail(path, f"{where}: 'alias_of' must be a layer name, got {_short(alias_of)}.")
    info = entry.get("info", {})
    if not isinstance(info, dict):
        raise _fail(path, f"{where}: 'info' must be an object, got {type(info).__name__}.")
    bits = {key: _positive_int(path, where, key, entry.get(key, 16), 1, MAX_OPERAND_BITS)
            for key in ("act_bits", "weight_bits")}
    return Layer(
        name=name,
        op=op,
        shape=shape,
        act_bits=bits["act_bits"],
        weight_bits=bits["weight_bits"],
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
    """Refuse values that are not floating point, not finite, or would not survive float16."""
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
    if array.dtype == np.float16 or array.size == 0:
        return
    magnitude = np.abs(array)
    big = int(np.count_nonzero(magnitude > FLOAT16_MAX))
    tiny = int(np.count_nonzero((magnitude < FLOAT16_SMALLEST_NORMAL) & (magnitude > 0)))
    if big or tiny:
        raise _fail(
            path,
            f"array '{key}' is {array.dtype} and holds {big} value(s) above float16's largest "
            f"({FLOAT16_MAX:g}) and {tiny} non-zero value(s) below its smallest normal "
            f"({FLOAT16_SMALLEST_NORMAL:.3g}); format v1 keeps values as float16, which would "
            "turn them into Inf or change them (or zero them, changing the layer's density). "
            "Rescale the layer's values, zero or clamp them deliberately before saving, or "
            "store the non-zero bitmap (mask/<layer>) instead.",
        )


def _unpack_mask(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The bool map of `shape` that `np.packbits` packed into `packed`."""
    return np.unpackbits(packed, count=math.prod(shape)).astype(bool).reshape(shape)


def memory_budget_bytes() -> int:
    """Bytes a trace's arrays may take once read and decoded: half of what this process can
    still allocate (the memory available on the machine, and what is left under an
    address-space limit when one is set), at most `MAX_UNCOMPRESSED_BYTES`."""
    room = []
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    room.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = 0
        try:
            with open("/proc/self/statm", "rb") as fh:
                used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            pass
        room.append(max(0, soft - used))
    return min([MAX_UNCOMPRESSED_BYTES, *(r // 2 for r in room)])


@dataclass(frozen=True)
class _Header:
    """An `.npy` member's header: what its data is, and where that data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class _Archive:
    """The members of a trace's zip, checked before anything is read (see the module docstring);
    `header` and `read` name the member in every error."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path)
        self.infos: dict[str, zipfile.ZipInfo] = {}
        self._headers: dict[str, _Header] = {}
        try:
            self._check_members()
        except BaseException:
            self.zip.close()
            raise

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.zip.close()

    def _check_members(self) -> None:
        infos = self.zip.infolist()
        if len(infos) > 4 * MAX_LAYERS + 1:
            raise _fail(self.path, f"{len(infos)} members is more than a trace of at most "
                                   f"{MAX_LAYERS} layers can hold.")
        expanded = 0
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                raise _fail(self.path, f"member {name!r} is not an .npy array; a trace holds "
                                       "only '__meta__.npy' and per-layer arrays.")
            key = name[:-4]
            if key in self.infos:
                raise _fail(self.path, f"member {name!r} appears twice in the zip; a reader "
                                       "would silently take one of them. Re-create the file.")
            if info.flag_bits & 0x1:
                raise _fail(self.path, f"member {name!r} is encrypted, which traces never are. "
                                       "Re-create the file without a password.")
            if info.compress_type not in ZIP_METHODS:
                raise _fail(self.path, f"member {name!r} uses zip compression method "
                                       f"{info.compress_type}; traces use "
                                       f"{' or '.join(ZIP_METHODS.values())} (numpy.savez, "
                                       "savez_compressed). Re-save it with numpy.")
            limit = (info.compress_size if info.compress_type == zipfile.ZIP_STORED
                     else info.compress_size * DEFLATE_MAX_RATIO + 64)
            if info.file_size > limit:
                raise _fail(self.path, f"member {name!r} declares {info.file_size} bytes from "
                                       f"{info.compress_size} compressed, more than its method "
                                       "can produce: the zip is damaged or forged.")
            expanded += info.file_size
            self.infos[key] = info
        if expanded > MAX_UNCOMPRESSED_BYTES:
            raise _fail(
                self.path,
                f"members expand to {expanded / 2**30:.1f} GiB, over the "
                f"{MAX_UNCOMPRESSED_BYTES / 2**30:.0f} GiB limit; this looks like a zip bomb or "
                "an untruncated capture. Re-capture with --max-mb.",
            )

    def _open(self, key: str) -> Any:
        return self.zip.open(self.infos[key])

    def header(self, key: str) -> _Header:
        """The checked `.npy` header of member `key`."""
        if key in self._headers:
            return self._headers[key]
        name = self.infos[key].filename
        with self._guard(key), self._open(key) as fh:
            try:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f".npy format version {version} is not read here")
            except (ValueError, SyntaxError, TypeError, struct.error) as exc:
                raise _fail(self.path, f"member {name!r} has no valid .npy header ({exc}); the "
                                       "file is damaged or not made by numpy.") from None
            offset = fh.tell()
        if dtype.hasobject:
            raise _fail(
                self.path, f"member {name!r}: it contains pickled Python objects, which are "
                "refused for safety. Save arrays with plain numeric dtypes "
                "(accelsim.workload.save_workload does).",
            )
        if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
            raise _fail(self.path, f"member {name!r} has dtype {dtype}; traces hold plain "
                                   "numeric arrays only.")
        header = _Header(tuple(int(d) for d in shape), dtype, bool(fortran), offset)
        if header.nbytes != self.infos[key].file_size - offset:
            raise _fail(self.path, f"member {name!r}: its .npy header declares "
                                   f"{header.nbytes} bytes of {dtype} {header.shape} but the "
                                   f"member holds {self.infos[key].file_size - offset}; the "
                                   "file is damaged or forged.")
        self._headers[key] = header
        return header

    def read(self, key: str) -> np.ndarray:
        """The data of member `key` (its header checked first), read in chunks."""
        header = self.header(key)
        name = self.infos[key].filename
        shape = header.shape[::-1] if header.fortran_order else header.shape
        array = np.empty(shape, dtype=header.dtype)
        flat = memoryview(array.reshape(-1).view(np.uint8))
        with self._guard(key), self._open(key) as fh:
            fh.read(header.offset)
            done = 0
            while done < header.nbytes:
                chunk = fh.read(min(READ_CHUNK_BYTES, header.nbytes - done))
                if not chunk:
                    raise _fail(self.path, f"member {name!r} ends after {done} of its "
                                           f"{header.nbytes} bytes: the file is truncated.")
                flat[done:done + len(chunk)] = chunk
                done += len(chunk)
            if fh.read(1):
                raise _fail(self.path, f"member {name!r} holds more data than its header says.")
        return np.ascontiguousarray(array.T) if header.fortran_order else array

    def _guard(self, key: str) -> _ReadGuard:
        return _ReadGuard(self.path, self.infos[key].filename)


class _ReadGuard:
    """Turns what zipfile and zlib raise on a damaged member into a WorkloadError naming it."""

    def __init__(self, path: str, member: str) -> None:
        self.path, self.member = path, member

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None or isinstance(exc, WorkloadError):
            return
        if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                            NotImplementedError, ValueError, struct.error, OverflowError)):
            raise _fail(self.path, f"member {self.member!r} cannot be read "
                                   f"({type(exc).__name__}: {exc}); the file is damaged or "
                                   "truncated. Re-create or re-download it.") from None


def _json_depth_ok(value: Any, limit: int) -> bool:
    """True when `value` nests lists and objects at most `limit` deep."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, (dict, list)))
    return True


def _read_meta(path: str, zf: _Archive) -> dict:
    if "__meta__" not in zf.infos:
        raise _fail(path, "no '__meta__' entry: this is not an accelsim trace (format v1).")
    header = zf.header("__meta__")
    if header.dtype != np.uint8 or len(header.shape) != 1:
        raise _fail(path, "'__meta__' must be a 1-D uint8 array of UTF-8 JSON.")
    if header.nbytes > MAX_META_BYTES:
        raise _fail(path, f"'__meta__' is {header.nbytes / 2**20:.1f} MiB of JSON, more than the "
                          f"{MAX_META_BYTES // 2**20} MiB a trace's metadata may take.")
    raw = zf.read("__meta__")
    too_deep = False
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(path, f"'__meta__' is not valid UTF-8 JSON ({exc}).") from None
    except RecursionError:
        meta, too_deep = None, True
    if too_deep or not _json_depth_ok(meta, MAX_JSON_DEPTH):
        raise _fail(path, f"'__meta__' nests lists or objects more than {MAX_JSON_DEPTH} deep; "
                          "a trace's metadata needs only a few levels. Flatten the 'info' and "
                          "'source' entries.")
    if not isinstance(meta, dict):
        raise _fail(path, "'__meta__' must be a JSON object.")
    if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
        raise _fail(
            path,
            f"'__meta__' says format={_short(meta.get('format'))} "
            f"version={_short(meta.get('version'))}; "
            f"this build reads format '{FORMAT_NAME}' version {FORMAT_VERSION}.",
        )
    if not isinstance(meta.get("layers"), list) or not meta["layers"]:
        raise _fail(path, "'__meta__' must list at least one layer under 'layers'.")
    if len(meta["layers"]) > MAX_LAYERS:
        raise _fail(path, f"'__meta__' lists {len(meta['layers'])} layers, more than the "
                          f"{MAX_LAYERS} a trace may have.")
    return meta


def _open_archive(path: str) -> _Archive:
    p = Path(path)
    if not p.is_file():
        raise WorkloadError(f"{path}: no such workload file. Check the path.")
    try:
        return _Archive(path)
    except WorkloadError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, struct.error,
            OverflowError, NotImplementedError, RuntimeError, zlib.error) as exc:
        raise _fail(
            path, f"is truncated or not an .npz archive ({type(exc).__name__}: {exc}). "
            "Re-create or re-download it.",
        ) from None


def load_workload(path: str | Path) -> Workload:
    """Load and validate a trace; raise WorkloadError naming the file, layer and fix."""
    path = str(path)
    with _open_archive(path) as zf:
        meta = _read_meta(path, zf)
        layers: list[Layer] = []
        names: set[str] = set()
        for i, entry in enumerate(meta["layers"]):
            layer = parse_layer_entry(path, i, entry)
            if layer.name in names:
                raise _fail(path, f"layer name '{layer.name}' appears twice; names must be unique.")
            names.add(layer.name)
            layers.append(layer)
        by_name = {layer.name: layer for layer in layers}
        plan = [(layer, _operand_plan(path, zf, layer)) for layer in layers]
        used = {"__meta__"} | {key for _, keys in plan for key in keys.values() if key}
        unknown = sorted(set(zf.infos) - used)
        if unknown:
            raise _fail(
                path, f"array(s) {unknown[:5]} name no layer in '__meta__' (expected keys "
                "act/<layer>, mask/<layer>, weight/<layer>, wmask/<layer>).",
            )
        _check_budget(path, zf, plan)
        for layer, keys in plan:
            _attach_arrays(path, zf, layer, keys)
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
        content_hash=file_hash(path),
    )


def file_hash(path: str) -> str:
    """SHA-256 (first 16 hex digits) of the file's bytes: the workload's content hash."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _operand_plan(path: str, zf: _Archive, layer: Layer) -> dict[str, str | None]:
    """Which member holds each operand of `layer` (None: not stored), every header checked
    against the layer's shapes before any data is read."""
    keys: dict[str, str | None] = {}
    name = layer.name
    for operand, values_key, mask_key, expected in (
            ("act", f"act/{name}", f"mask/{name}", layer.shape.act_shape),
            ("weight", f"weight/{name}", f"wmask/{name}", layer.shape.weight_shape)):
        if values_key in zf.infos and mask_key in zf.infos:
            raise _fail(path, f"layer '{name}' has both '{values_key}' and '{mask_key}'; keep one.")
        if values_key in zf.infos:
            header = zf.header(values_key)
            if header.shape != tuple(expected):
                raise _fail(
                    path, f"layer '{name}': '{values_key}' has shape {header.shape} but the "
                    f"layer's shapes say {expected} ({layer.op} natural layout). Fix the shapes or "
                    "the array.",
                )
            if header.dtype.kind != "f":
                raise _fail(
                    path, f"array '{values_key}' has dtype {header.dtype}; activation and weight "
                    "values must be floating point (float16 in format v1).",
                )
            keys[operand] = values_key
        elif mask_key in zf.infos:
            header = zf.header(mask_key)
            n = math.prod(expected)
            if header.dtype != np.uint8 or header.shape != ((n + 7) // 8,):
                raise _fail(
                    path,
                    f"array '{mask_key}' must be np.packbits of the {expected} non-zero map "
                    f"(uint8, 1-D, {(n + 7) // 8} bytes), got dtype {header.dtype} shape "
                    f"{header.shape}.",
                )
            keys[operand] = mask_key
        else:
            keys[operand] = None
    return keys


def _check_budget(path: str, zf: _Archive, plan: list[tuple[Layer, dict[str, str | None]]]) -> None:
    """Refuse a trace whose arrays, read and decoded, would not fit the memory budget."""
    needed = zf.header("__meta__").nbytes
    for layer, keys in plan:
        for operand, key in keys.items():
            if key is None:
                continue
            header = zf.header(key)
            shape = layer.shape.act_shape if operand == "act" else layer.shape.weight_shape
            decoded = math.prod(shape) * (1 if key.startswith(("mask/", "wmask/")) else 2)
            needed += header.nbytes + decoded
    budget = memory_budget_bytes()
    if needed > budget:
        raise _fail(path, f"its arrays need {needed / 2**30:.2f} GiB once read and decoded, more "
                          f"than the {budget / 2**30:.2f} GiB this process may use for a trace "
                          "(half the memory it can still allocate). Use a machine with more "
                          "memory, or a trace of fewer layers or samples (keep masks instead of "
                          "values, or re-capture with --max-mb).")


def _attach_arrays(path: str, zf: _Archive, layer: Layer, keys: dict[str, str | None]) -> None:
    for operand, key in keys.items():
        values, mask = None, None
        shape = layer.shape.act_shape if operand == "act" else layer.shape.weight_shape
        if key is not None and key.startswith(("act/", "weight/")):
            array = zf.read(key)
            _check_values(path, key, array)
            values = array.astype(np.float16, copy=False)
        elif key is not None:
            mask = _unpack_mask(zf.read(key), shape)
        if operand == "act":
            layer.act, layer.act_mask = values, mask
        else:
            layer.weight, layer.weight_mask = values, mask


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
    if len(raw) > MAX_EDGES:
        raise _fail(path, f"'edges' lists {len(raw)} edges, more than the {MAX_EDGES} a trace may "
                          "have.")
    edges: list[tuple[str, str]] = []
    for e in raw:
        if not (isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(x, str) for x in e)):
            raise _fail(path, f"edge {_short(e)} must be a [producer, consumer] pair of layer "
                              "names.")
        missing = [x for x in e if x not in names]
        if missing:
            raise _fail(path, f"edge {list(e)} names unknown layer(s) {missing}.")
        edges.append((e[0], e[1]))
    cycle = find_cycle(edges)
    if cycle:
        raise _fail(path, f"the layer graph has a cycle {cycle}; edges must run producer -> consumer.")
    return edges


def find_cycle(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The edges of one directed cycle of the graph `edges` spans, [] when it has none: a
    depth-first search from each node in order of first appearance, successors in edge order
    (the cycle `networkx.find_cycle` reports), in plain Python so that loading a trace does
    not import networkx."""
    succ: dict[str, list[str]] = {}
    for u, v in edges:
        succ.setdefault(u, [])
        succ.setdefault(v, [])
        if v not in succ[u]:
            succ[u].append(v)
    done: set[str] = set()
    for root in succ:
        if root in done:
            continue
        path, on_path = [root], {root}
        todo = [iter(succ[root])]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                done.add(path[-1])
                on_path.discard(path.pop())
                todo.pop()
            elif nxt in on_path:
                loop = path[path.index(nxt):] + [nxt]
                return list(zip(loop, loop[1:]))
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                todo.append(iter(succ[nxt]))
    return []


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
                _check_values(path, f"act/{layer.name}", np.asarray(layer.act))
                arrays[f"act/{layer.name}"] = np.asarray(layer.act, dtype=np.float16)
            elif layer.act_mask is not None:
                arrays[f"mask/{layer.name}"] = np.packbits(np.asarray(layer.act_mask, bool).ravel())
        if layer.weight is not None:
            _check_values(path, f"weight/{layer.name}", np.asarray(layer.weight))
            arrays[f"weight/{layer.name}"] = np.asarray(layer.weight, dtype=np.float16)
        elif layer.weight_mask is not None:
            arrays[f"wmask/{layer.name}"] = np.packbits(np.asarray(layer.weight_mask, bool).ravel())
