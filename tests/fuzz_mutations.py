"""A seeded mutation generator for accelsim's untrusted inputs and a bounded runner for it.

Families: `trace` (zip, .npy, `__meta__` and array mutations of a real and a small synthetic
trace, run through `inspect --json` and `run --format csv`), `arch` (architecture YAML: every
numeric leaf of a shipped config set to hostile values, keys removed or added, bad bytes and
encodings), `tech` (custom tech tables), `sweep` (sweep specs) and `journal` (a finished sweep's
`points.jsonl` / `sweep.json` / spec edited, then `--resume`).

Every case names the files it mutated and what must happen: `error` (the input is wrong and must
be refused), `ok` (the input is fine and must give a correct result) or `either` (a value that
may be in range: refused, or a result that passes the sanity checks). Cases run in a worker
process under an address-space limit, one `accelsim.cli.main` call each with an alarm; the
parent kills a worker that does not answer in time. Each case ends in one category:

* `clear`: exit 2 with a one-paragraph `accelsim: error:` message that names the mutated file;
* `vague`: exit 2, but the message does not name the file (or spans paragraphs);
* `traceback`: an exception escaped `main` (MemoryError included), or the worker died;
* `wrong`: exit 0 where the input had to be refused, or a result that fails the sanity checks,
  or a refusal of an input that had to be accepted;
* `hang`: no answer within the time limit;
* `ok`: exit 0 with a result that passes the sanity checks.

Re-run a fresh corpus with `python -m tests.fuzz_mutations --seed 7 --count 40` (cases per
family; `--family trace` for one family, `--keep DIR` to keep the files); it prints the count of
every category per family and the cases that are not `clear` or `ok`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "arch_configs"
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
TECH = CONFIGS / "tech" / "horowitz_45nm.yaml"
FAMILIES = ("trace", "arch", "tech", "sweep", "journal")
CATEGORIES = ("clear", "vague", "traceback", "wrong", "hang", "ok")
RUN_CONFIGS = ("tpu_like_128x128_ws", "cnvlutin_like", "scnn_like", "eie_like",
               "eyeriss_gating", "a100_sparse_tc", "a100", "akd1000")


@dataclass
class Case:
    """One mutated input and the accelsim command that reads it."""

    family: str
    label: str
    argv: list[str]
    files: list[str]
    expect: str
    check: dict = field(default_factory=dict)
    """What a successful run is compared with (e.g. the reference `points.csv`)."""


@dataclass
class Outcome:
    """How a case ended (`category`, see the module docstring) and why."""

    label: str
    family: str
    category: str
    detail: str = ""
    seconds: float = 0.0


# --- a minimal zip writer (for forged headers, methods, flags and zip bombs) ----------------


@dataclass
class Member:
    """One zip member as raw bytes: `data` already compressed with `method`."""

    name: str
    data: bytes
    crc: int
    size: int
    method: int = zipfile.ZIP_DEFLATED
    flags: int = 0


def deflated(name: str, raw: bytes) -> Member:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Member(name, c.compress(raw) + c.flush(), zlib.crc32(raw), len(raw))


def zero_bomb(name: str, head: bytes, zero_bytes: int) -> Member:
    """A deflated member of `head` then `zero_bytes` zeros, made without ever holding them: a
    fully flushed deflate block of 1 MiB of zeros is repeated (the CRC is left wrong; readers
    that check sizes first never reach it)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(2**20)) + c.flush(zlib.Z_FULL_FLUSH)
    blocks = zero_bytes // 2**20
    tail = c.flush()
    return Member(name, start + block * blocks + tail, 0, len(head) + blocks * 2**20)


def write_zip(path: Path, members: list[Member]) -> None:
    """Write `members` as a zip (zip64 where sizes need it), exactly as given."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m.name.encode()
        offset = len(out)
        big = m.size >= 0xFFFFFFFF or len(m.data) >= 0xFFFFFFFF or offset >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, m.size, len(m.data)) if big else b""
        sizes = (0xFFFFFFFF, 0xFFFFFFFF) if big else (len(m.data), m.size)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, m.flags, m.method, 0, 0x21,
                           m.crc & 0xFFFFFFFF, *sizes, len(name), len(extra)) + name + extra
        out += m.data
        cextra = struct.pack("<HHQQQ", 1, 24, m.size, len(m.data), offset) if big else b""
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, m.flags, m.method, 0,
                               0x21, m.crc & 0xFFFFFFFF, *sizes, len(name), len(cextra), 0, 0,
                               0, 0, 0xFFFFFFFF if big else offset) + name + cextra
    start = len(out)
    out += central
    end = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(members), len(members),
                       end - start, start)
    out += struct.pack("<IIQI", 0x07064B50, 0, end, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(len(members), 0xFFFF),
                       min(len(members), 0xFFFF), min(end - start, 0xFFFFFFFF),
                       min(start, 0xFFFFFFFF), 0)
    path.write_bytes(bytes(out))


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: str, fortran: bool = False,
               version: tuple[int, int] = (1, 0)) -> bytes:
    """An .npy header declaring `shape` of `descr`, with no data after it."""
    text = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode()
    pad = 64 - (10 + len(text) + 1) % 64
    body = text + b" " * pad + b"\n"
    if version == (1, 0):
        return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(body)) + body
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(body)) + body


def read_npz(path: Path) -> tuple[dict, dict[str, bytes]]:
    """(meta, member bytes by member name) of a well-formed trace."""
    with zipfile.ZipFile(path) as zf:
        raw = {info.filename: zf.read(info) for info in zf.infolist()}
    meta = json.loads(np.load(io.BytesIO(raw["__meta__.npy"])).tobytes())
    return meta, raw


def meta_npy(meta: object, text: bytes | None = None) -> bytes:
    data = text if text is not None else json.dumps(meta).encode()
    return npy_bytes(np.frombuffer(data, np.uint8))


def write_members(path: Path, raw: dict[str, bytes]) -> None:
    write_zip(path, [deflated(name, data) for name, data in raw.items()])


def toy_trace(path: Path) -> None:
    """A small synthetic trace with every layer kind the format has."""
    sys.path.insert(0, str(ROOT))
    from accelsim.workload import ConvShape, GemmShape, Layer, Workload, save_workload

    rng = np.random.default_rng(3)
    conv = ConvShape(N=1, C=4, H=9, W=7, K=8, R=3, S=3, stride=(2, 1), padding=(0, 1, 1, 1))
    dw = ConvShape(N=1, C=8, H=4, W=7, K=8, R=3, S=3, padding=(1, 1, 1, 1), groups=8)
    layers = [
        Layer("conv", "conv2d", conv, act=(np.maximum(rng.standard_normal(conv.act_shape), 0)
                                           .astype(np.float16)),
              weight=rng.standard_normal(conv.weight_shape).astype(np.float16)),
        Layer("dw", "conv2d", dw, act_mask=rng.random(dw.act_shape) < 0.4),
        Layer("q", "linear", GemmShape(M=5, K=16, N=8),
              act=np.maximum(rng.standard_normal((5, 16)), 0).astype(np.float16)),
        Layer("k", "linear", GemmShape(M=5, K=16, N=8), alias_of="q"),
        Layer("qk", "matmul", GemmShape(M=5, K=4, N=5, batch=2),
              act=rng.standard_normal((2, 5, 4)).astype(np.float16)),
        Layer("fc", "linear", GemmShape(M=2, K=32, N=10), declared_act_density=0.25),
    ]
    save_workload(Workload("toy", layers, edges=[("conv", "dw"), ("q", "qk"), ("k", "qk")]),
                  path)


# --- trace mutations --------------------------------------------------------------------------

HOSTILE_NUMBERS = [0, -1, 1.5, 10**6, 2**31, 2**40, 2**70, True, "8", None, [], {}, [1, 2, 3],
                   float("nan"), float("inf"), 1e300]


def _trace_case(work: Path, rng: random.Random, n: int, base: Path) -> Case:
    meta, raw = read_npz(base)
    path = work / f"trace{n}.npz"
    arrays = [k for k in raw if k != "__meta__.npy"]
    kind = rng.choice(["zip", "npy", "meta", "field", "array", "bytes", "big-shapes"])
    expect = "error"
    label = kind
    if kind == "big-shapes":
        label += ":" + _big_shapes(path, rng)
        expect = "ok"
    elif kind == "zip":
        what = rng.choice(["encrypted", "method99", "method12", "duplicate", "no-npy-suffix",
                           "bomb", "stored-size-lie", "empty"])
        label += ":" + what
        members = [deflated(k, v) for k, v in raw.items()]
        victim = rng.randrange(len(members))
        if what == "encrypted":
            members[victim].flags |= 1
        elif what.startswith("method"):
            members[victim].method = int(what[6:])
        elif what == "duplicate":
            members.append(deflated(members[victim].name, raw["__meta__.npy"]
                                    if rng.random() < 0.5 else raw[members[victim].name]))
        elif what == "no-npy-suffix":
            members[victim].name = members[victim].name[:-4]
        elif what == "bomb":
            layer = meta["layers"][0]
            shape = tuple(int(layer[k]) for k in ("N", "C", "H", "W")) if "C" in layer \
                else (int(layer["M"]), int(layer["K"]))
            big = dict(meta)
            big["layers"] = [dict(layer)]
            scale = 2**14
            if "C" in layer:
                big["layers"][0]["C"] = shape[1] * scale
                shape = (shape[0], shape[1] * scale, shape[2], shape[3])
            else:
                big["layers"][0]["M"] = shape[0] * scale
                shape = (shape[0] * scale, shape[1])
            big["layers"][0].pop("alias_of", None)
            big["edges"] = []
            head = npy_header(shape, "<f2")
            zeros = math.prod(shape) * 2
            members = [deflated("__meta__.npy", meta_npy(big)),
                       zero_bomb(f"act/{layer['name']}.npy", head, max(zeros, 2**33))]
        elif what == "stored-size-lie":
            members[victim] = Member(members[victim].name, raw[members[victim].name][:64],
                                     0, 2**34, method=zipfile.ZIP_STORED)
        else:
            members = []
        write_zip(path, members)
    elif kind == "npy":
        what = rng.choice(["huge-header", "object", "complex", "structured", "unicode",
                           "fortran", "version3", "garbage-header", "no-header",
                           "negative-shape"])
        label += ":" + what
        name = rng.choice(arrays) if arrays else "__meta__.npy"
        array = np.load(io.BytesIO(raw[name]))
        if what == "huge-header":
            raw[name] = npy_header((2**20, 2**20), array.dtype.str) + b"\0" * 10
        elif what == "object":
            buf = io.BytesIO()
            np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
            raw[name] = buf.getvalue()
        elif what == "complex":
            raw[name] = npy_bytes(array.astype(np.complex64))
        elif what == "structured":
            raw[name] = npy_bytes(np.zeros(array.shape, dtype=[("a", "<f2")]))
        elif what == "unicode":
            raw[name] = npy_bytes(np.full(array.shape, "x"))
        elif what == "fortran":
            raw[name] = npy_bytes(np.asfortranarray(array))
            expect = "ok"
        elif what == "version3":
            raw[name] = npy_header(array.shape, array.dtype.str, version=(3, 0)) + array.tobytes()
        elif what == "garbage-header":
            raw[name] = b"\x93NUMPY\x01\x00\x10\x00{'descr': <<<}  \n" + array.tobytes()
        elif what == "no-header":
            raw[name] = array.tobytes()
        else:
            raw[name] = npy_header((-1,) + array.shape[1:], array.dtype.str) + array.tobytes()
        write_members(path, raw)
    elif kind == "meta":
        what = rng.choice(["deep", "long-int", "nan-token", "not-utf8", "not-uint8", "2d",
                           "layers-not-list", "no-layers", "version", "many-layers",
                           "huge-info", "edges-cycle", "edges-junk", "many-edges",
                           "alias-self", "alias-chain", "dup-name"])
        label += ":" + what
        m = copy.deepcopy(meta)
        text = None
        if what == "deep":
            text = json.dumps(m).encode()[:-1] + b', "info": ' + b"[" * 200_000 \
                + b"]" * 200_000 + b"}"
        elif what == "long-int":
            text = json.dumps(m).replace('"version": 1', '"version": ' + "1" * 5000).encode()
        elif what == "nan-token":
            m["layers"][0]["act_density"] = float("nan")
        elif what == "not-utf8":
            text = b"\xff\xfe\xfa" + json.dumps(m).encode()
        elif what == "not-uint8":
            raw["__meta__.npy"] = npy_bytes(np.frombuffer(json.dumps(m).encode(), np.uint8)
                                            .astype(np.float32))
        elif what == "2d":
            data = np.frombuffer(json.dumps(m).encode() + b" " * 3, np.uint8)
            raw["__meta__.npy"] = npy_bytes(data[: data.size // 2 * 2].reshape(2, -1))
        elif what == "layers-not-list":
            m["layers"] = {"a": 1}
        elif what == "no-layers":
            m["layers"] = []
        elif what == "version":
            m["version"] = rng.choice([2, "1", None, 1.0 + 1e-9])
        elif what == "many-layers":
            m["layers"] = [{"name": f"l{i}", "op": "linear", "M": 1, "K": 1, "N": 1,
                            "act_density": 0.5} for i in range(70_000)]
            m["edges"] = []
            raw = {"__meta__.npy": b""}
        elif what == "huge-info":
            m["layers"][0]["info"] = {"blob": "x" * (70 * 2**20)}
        elif what == "edges-cycle":
            names = [layer["name"] for layer in m["layers"]]
            m["edges"] = [[names[0], names[-1]], [names[-1], names[0]]]
        elif what == "edges-junk":
            m["edges"] = rng.choice([[["a"]], [[1, 2]], "x", [[m["layers"][0]["name"], "zz"]]])
        elif what == "many-edges":
            name = m["layers"][0]["name"]
            m["edges"] = [[name, name]] * (2**20 + 1)
        elif what == "alias-self":
            m["layers"][0]["alias_of"] = m["layers"][0]["name"]
        elif what == "alias-chain":
            m["layers"][-1]["alias_of"] = "nope"
        else:
            m["layers"].append(dict(m["layers"][0]))
        if what != "not-uint8" and what != "2d":
            raw["__meta__.npy"] = meta_npy(m, text)
        write_members(path, raw)
    elif kind == "field":
        m = copy.deepcopy(meta)
        i = rng.randrange(len(m["layers"]))
        layer = m["layers"][i]
        conv = layer["op"] == "conv2d"
        keys = (["N", "C", "H", "W", "K", "R", "S", "stride", "padding", "dilation", "groups"]
                if conv else ["M", "K", "N", "batch"]) + ["act_bits", "act_density", "name",
                                                          "op", "weight_density", "extra_key"]
        key = rng.choice(keys)
        value: object = rng.choice(HOSTILE_NUMBERS)
        if key == "padding" and rng.random() < 0.5:
            value = rng.choice([10**6, [10**6] * 4, [0, 10**6, 0, 0], [-1, 0, 0, 0], [1, 2, 3]])
        if key == "dilation" and rng.random() < 0.5:
            value = rng.choice([10**6, [1, 10**5]])
        if key == "name":
            value = rng.choice(["", "a/b", "[bold red]x", "x" * 5000, 5, None])
            expect = "either" if value == "[bold red]x" else "error"
        label = f"field:{layer['op']}.{key}={str(value)[:20]}"
        layer[key] = value
        stored = any(k.endswith(f"/{layer['name']}.npy") for k in raw)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        in_range = (key in ("act_density", "weight_density") and number and 0 <= value <= 1) \
            or (key in ("M", "N", "batch", "H", "W", "C", "K") and value == 10**6 and not stored)
        if in_range:
            expect = "either"
        raw["__meta__.npy"] = meta_npy(m)
        write_members(path, raw)
    elif kind == "array":
        values = [k for k in arrays if k.startswith(("act/", "weight/"))]
        masks = [k for k in arrays if k.startswith(("mask/", "wmask/"))]
        what = rng.choice(["tiny-f32", "huge-f64", "nan", "inf", "int", "subnormal-f16",
                           "wrong-shape", "mask-length", "mask-bool", "extra-array",
                           "drop-array", "both"])
        label += ":" + what
        name = rng.choice(values) if values else None
        if name is None or (what.startswith("mask") and masks):
            name = rng.choice(masks) if masks else rng.choice(arrays)
        array = np.load(io.BytesIO(raw[name]))
        if what == "tiny-f32":
            a = array.astype(np.float32)
            a.flat[0] = 1e-10
            raw[name] = npy_bytes(a)
        elif what == "huge-f64":
            a = array.astype(np.float64)
            a.flat[0] = 1e6
            raw[name] = npy_bytes(a)
        elif what in ("nan", "inf"):
            a = array.astype(np.float16)
            a.flat[0] = np.nan if what == "nan" else np.inf
            raw[name] = npy_bytes(a)
        elif what == "int":
            raw[name] = npy_bytes(array.astype(np.int32))
        elif what == "subnormal-f16":
            a = array.astype(np.float16)
            a.flat[0] = np.float16(1e-7)
            raw[name] = npy_bytes(a)
            expect = "ok" if name.startswith(("act/", "weight/")) else "error"
        elif what == "wrong-shape":
            raw[name] = npy_bytes(array.reshape(-1)[: max(1, array.size - 1)])
        elif what == "mask-length":
            raw[name] = npy_bytes(np.zeros(array.size + 3, np.uint8))
        elif what == "mask-bool":
            raw[name] = npy_bytes(array.astype(bool))
        elif what == "extra-array":
            raw["act/ghost.npy"] = npy_bytes(np.ones(3, np.float16))
        elif what == "drop-array":
            del raw[name]
            expect = "ok"
        else:
            layer_name = name.split("/", 1)[1]
            raw[f"mask/{layer_name}"] = npy_bytes(np.zeros(4, np.uint8))
            raw[f"act/{layer_name}"] = raw[name]
        write_members(path, raw)
    else:
        what = rng.choice(["flip", "truncate", "append", "zero-range"])
        label += ":" + what
        data = bytearray(base.read_bytes())
        if what == "flip":
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(data))
                data[at] ^= 1 << rng.randrange(8)
            expect = "either"
        elif what == "truncate":
            data = data[: rng.randrange(len(data))]
        elif what == "append":
            data += os.urandom(rng.randint(1, 200))
            expect = "either"
        else:
            at = rng.randrange(len(data))
            end = min(len(data), at + rng.randint(8, 256))
            data[at:end] = bytes(end - at)
            expect = "either"
        path.write_bytes(bytes(data))
    if rng.random() < 0.3:
        argv = ["inspect", str(path), "--json"]
    else:
        argv = ["run", str(CONFIGS / f"{rng.choice(RUN_CONFIGS)}.yaml"), str(path),
                "--format", "csv"]
    return Case("trace", f"{base.stem}:{label}", argv, [str(path)], expect)


def _big_shapes(path: Path, rng: random.Random) -> str:
    """A shapes-only trace of large but valid layers (every engine must count them in bounded
    time and memory); returns a label."""
    sys.path.insert(0, str(ROOT))
    from accelsim.workload import ConvShape, GemmShape, Layer, Workload, save_workload

    m, k, n = (10 ** rng.randint(3, 6) for _ in range(3))
    c, f = 2 ** rng.randint(6, 12), 2 ** rng.randint(6, 12)
    side = 2 ** rng.randint(5, 10)
    density = round(rng.random(), 3)
    layers = [Layer("g", "linear", GemmShape(M=m, K=k, N=n), declared_act_density=density,
                    declared_weight_density=rng.choice([None, 0.5])),
              Layer("c", "conv2d", ConvShape(N=1, C=c, H=side, W=side, K=f, R=3, S=3,
                                             stride=(rng.randint(1, 2),) * 2,
                                             padding=(1, 1, 1, 1)),
                    declared_act_density=density)]
    save_workload(Workload("big", layers), path)
    return f"M{m} K{k} N{n}; C{c} K{f} {side}x{side}"


# --- arch and tech mutations ------------------------------------------------------------------

HOSTILE_LEAVES = [("inf", float("inf"), "error"), ("-inf", float("-inf"), "error"),
                  ("nan", float("nan"), "error"), ("true", True, "error"),
                  ("false", False, "error"), ("zero", 0, "either"), ("minus1", -1, "either"),
                  ("1e9", 1e9, "either"), ("1e9int", 10**9, "either"),
                  ("1e30", 10**30, "either"), ("2**63", 2**63, "either"),
                  ("string", "fast", "error"), ("list", [], "error"), ("map", {}, "error"),
                  ("null", None, "either")]


def _leaves(tree: object, path: tuple = (), strings: bool = False) -> list[tuple]:
    """Paths to every number (not boolean), or with `strings` every string, in a parsed YAML
    tree."""
    found = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            found += _leaves(v, (*path, k), strings)
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            found += _leaves(v, (*path, i), strings)
    else:
        number = isinstance(tree, (int, float)) and not isinstance(tree, bool)
        if (isinstance(tree, str) if strings else number):
            found.append(path)
    return found


def _set(tree: object, path: tuple, value: object) -> None:
    node = tree
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _dump(path: Path, data: object) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _arch_case(work: Path, rng: random.Random, n: int) -> Case:
    config = rng.choice(sorted(CONFIGS.glob("*.yaml")))
    data = yaml.safe_load(config.read_text())
    path = work / f"arch{n}.yaml"
    kind = rng.choices(["leaf", "string", "delete", "unknown", "text"], weights=[6, 1, 1, 1, 2])[0]
    expect = "error"
    if kind == "string":
        strings = _leaves(data, strings=True)
        leaf = rng.choice(strings)
        value = rng.choice(["", "[bold red]x", "x" * 10_000, 5, None, "fp16"])
        _set(data, leaf, value)
        label = f"{config.stem}:{'.'.join(map(str, leaf))}={str(value)[:12]!r}"
        expect = "either"
        _dump(path, data)
    elif kind == "leaf":
        leaf = rng.choice(_leaves(data))
        name, value, expect = rng.choice(HOSTILE_LEAVES)
        _set(data, leaf, value)
        label = f"{config.stem}:{'.'.join(map(str, leaf))}={name}"
        _dump(path, data)
    elif kind == "delete":
        key = rng.choice([k for k in data if k not in ("name",)])
        del data[key]
        label, expect = f"{config.stem}:delete {key}", "either"
        _dump(path, data)
    elif kind == "unknown":
        data[rng.choice(["rowz", "lanes_", "clock"])] = 1
        label = f"{config.stem}:unknown key"
        _dump(path, data)
    else:
        what = rng.choice(["not-utf8", "utf16", "deep", "python-tag", "anchors", "truncated",
                           "huge-int-digits", "tab"])
        text = config.read_text()
        label = f"{config.stem}:{what}"
        if what == "not-utf8":
            path.write_bytes(text.encode()[:200] + b"\xff\xfe\x80 " + text.encode()[200:])
        elif what == "utf16":
            path.write_bytes(text.encode("utf-16"))
            expect = "ok"
        elif what == "deep":
            path.write_text(text + "\nnotes: " + "[" * 100_000 + "]" * 100_000 + "\n")
        elif what == "python-tag":
            path.write_text(text + "\nnotes: !!python/object/apply:os.system ['true']\n")
        elif what == "anchors":
            lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
            for i in range(1, 9):
                lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
            path.write_text(text + "\nsources:\n" + "\n".join("  " + line for line in lines)
                            + "\n")
        elif what == "truncated":
            path.write_text(text[: rng.randrange(len(text))] + "\n  - [")
        elif what == "huge-int-digits":
            path.write_text(text + "\nstatic_power_mw: " + "9" * 5000 + "\n")
        else:
            path.write_text(text.replace("\n", "\n\t", 3))
    workload = str(DIGITS)
    return Case("arch", label, ["run", str(path), workload, "--format", "csv"], [str(path)],
                expect)


def _tech_case(work: Path, rng: random.Random, n: int) -> Case:
    data = yaml.safe_load(TECH.read_text())
    table = work / f"tech{n}.yaml"
    kind = rng.choices(["leaf", "delete", "special"], weights=[6, 2, 2])[0]
    expect = "error"
    if kind == "leaf":
        leaf = rng.choice(_leaves(data))
        name, value, _ = rng.choice(HOSTILE_LEAVES)
        _set(data, leaf, value)
        label = f"{'.'.join(map(str, leaf))}={name}"
        if (leaf[-1] == "area_exponent" and value == 0) or (name in ("1e9", "1e9int")
                                                             and leaf[:1] == ("area_um2",)):
            expect = "either"
    elif kind == "delete":
        section = rng.choice(["energy_pj", "area_um2", "node_scaling", "sram_banking", None])
        if section is None or not isinstance(data.get(section), dict):
            key = rng.choice(list(data))
            del data[key]
            label = f"delete {key}"
            expect = "either" if key in ("voltage_v", "sram_banking") else "error"
        else:
            key = rng.choice(list(data[section]))
            del data[section][key]
            label = f"delete {section}.{key}"
            expect = "either" if (section, key) == ("area_um2", "sram_bitcell") else "error"
    else:
        what = rng.choice(["one-sram-point", "empty-node-table", "node0", "energy-list",
                           "energy-string", "zero-energies", "unknown-key", "sram-key-string"])
        label = what
        if what == "one-sram-point":
            data["energy_pj"]["sram_read_64bit_by_size_bytes"] = {1048576: 100.0}
            expect = "either"
        elif what == "empty-node-table":
            data["node_scaling"]["energy_factor_by_node_nm"] = {}
        elif what == "node0":
            data["node_nm"] = 0
        elif what == "energy-list":
            data["energy_pj"]["add"]["int32"] = [0.1]
        elif what == "energy-string":
            data["energy_pj"]["mult"]["int16"] = "0.8 pJ"
        elif what == "zero-energies":
            data["energy_pj"]["add"] = {k: 0 for k in data["energy_pj"]["add"]}
        elif what == "unknown-key":
            data["energy_pj"]["regfile"] = 1.0
        else:
            data["energy_pj"]["sram_read_64bit_by_size_bytes"]["8KB"] = 10.0
    _dump(table, data)
    config = rng.choice(["tpu_like_128x128_ws", "cnvlutin_like", "eie_like"])
    arch = yaml.safe_load((CONFIGS / f"{config}.yaml").read_text())
    arch["tech"] = {**arch.get("tech", {}), "table": str(table)}
    arch_path = work / f"tech{n}_arch.yaml"
    _dump(arch_path, arch)
    return Case("tech", f"{config}:{label}",
                ["run", str(arch_path), str(DIGITS), "--format", "csv"], [str(table)], expect)


# --- sweep and journal mutations --------------------------------------------------------------


def base_spec() -> dict:
    return {"name": "fz", "base": str(CONFIGS / "cnvlutin_like.yaml"),
            "workloads": [str(DIGITS)],
            "parameters": [{"path": "array.lanes", "name": "lanes", "values": [4, 8]},
                           {"path": "array.filters_per_pass", "name": "filters",
                            "values": [16, 64]}],
            "constraints": ["lanes * filters <= 1024"]}


def _sweep_case(work: Path, rng: random.Random, n: int) -> Case:
    spec = base_spec()
    path = work / f"sweep{n}.yaml"
    text = None
    expect = "error"
    check: dict = {}
    what = rng.choice([
        "sampling-string", "seed-negative", "seed-bool", "seed-huge", "samples-float",
        "samples-huge", "method-list", "date-value", "nested-value", "inf-value", "bool-value",
        "dup-values", "range-1e23", "range-inf", "range-reversed", "range-string", "grid-bomb",
        "constraint-power", "constraint-param-power", "constraint-string-mul",
        "constraint-parens", "constraint-unary", "constraint-div0", "constraint-call",
        "name-point", "name-workload", "name-latency", "name-point_hash", "name-engine-column",
        "sweep-name-path", "sweep-name-markup", "workload-twice", "workload-copy",
        "workload-missing", "workload-junk", "base-not-utf8", "base-utf16", "base-missing",
        "unknown-key", "parameters-map", "path-section", "path-missing", "dup-names",
        "dup-paths", "many-values", "log-string"])
    if what == "sampling-string":
        spec["sampling"] = "grid"
    elif what == "seed-negative":
        spec["sampling"] = {"method": "random", "samples": 3, "seed": -1}
        spec["parameters"][0] = {"path": "array.lanes", "name": "lanes", "range": [2, 8]}
    elif what == "seed-bool":
        spec["sampling"] = {"method": "random", "samples": 3, "seed": True}
    elif what == "seed-huge":
        spec["sampling"] = {"method": "random", "samples": 3, "seed": 2**70}
    elif what == "samples-float":
        spec["sampling"] = {"method": "random", "samples": 1e9}
    elif what == "samples-huge":
        spec["sampling"] = {"method": "latin-hypercube", "samples": 10**9}
    elif what == "method-list":
        spec["sampling"] = {"method": ["grid"]}
    elif what == "date-value":
        text = yaml.safe_dump(spec).replace("- 4\n", "- 2020-01-01\n", 1)
    elif what == "nested-value":
        spec["parameters"][0]["values"] = [[4, 8]]
    elif what == "inf-value":
        spec["parameters"][0]["values"] = [float("inf")]
    elif what == "bool-value":
        spec["parameters"][0]["values"] = [True]
    elif what == "dup-values":
        spec["parameters"][0]["values"] = [4, 4.0, 8]
        expect, check = "ok", {"points": 4, "duplicates": 2}
    elif what.startswith("range-"):
        spec["sampling"] = {"method": "random", "samples": 4, "seed": 1}
        spec["parameters"][0] = {"path": "array.lanes", "name": "lanes",
                                 "range": {"range-1e23": [1, 1e23], "range-inf": [1, float("inf")],
                                           "range-reversed": [8, 2],
                                           "range-string": ["a", 3]}[what]}
    elif what == "grid-bomb":
        paths = ["array.lanes", "array.filters_per_pass", "array.brick_size", "sync.issue_cycles",
                 "clock_mhz", "static_power_mw", "memory.0.size_bytes", "memory.1.size_bytes"]
        values = "[" + ", ".join(str(i) for i in range(1, 33)) + "]"
        params = [f"  - {{path: {p}, name: p{i}, values: {'&v ' + values if i == 0 else '*v'}}}"
                  for i, p in enumerate(paths)]
        text = "\n".join([f"name: bomb{n}", f"base: {spec['base']}", f"workloads: [{DIGITS}]",
                          "parameters:", *params]) + "\n"
    elif what.startswith("constraint-"):
        spec["constraints"] = [{
            "constraint-power": "9 ** 9 ** 9 > 1",
            "constraint-param-power": "lanes ** lanes ** lanes ** lanes > 1",
            "constraint-string-mul": "lanes * 'a' > 1",
            "constraint-parens": "(" * 300 + "lanes" + ")" * 300 + " > 1",
            "constraint-unary": "-" * 900 + "lanes < 0",
            "constraint-div0": "lanes / (lanes - lanes) > 1",
            "constraint-call": "max(lanes) > 1"}[what]]
    elif what.startswith("name-"):
        spec["parameters"][0]["name"] = {"name-point": "point", "name-workload": "workload",
                                         "name-latency": "latency_s",
                                         "name-point_hash": "point_hash",
                                         "name-engine-column": "lane_efficiency"}[what]
    elif what == "sweep-name-path":
        spec["name"] = "../../outside"
    elif what == "sweep-name-markup":
        spec["name"] = "[red]x<b>"
        expect, check = "ok", {"points": 4}
    elif what == "workload-twice":
        spec["workloads"] = [str(DIGITS), str(DIGITS)]
    elif what == "workload-copy":
        twin = work / f"twin{n}.npz"
        shutil.copyfile(DIGITS, twin)
        spec["workloads"] = [str(DIGITS), str(twin)]
        expect, check = "ok", {"points": 4, "workloads": 2}
    elif what == "workload-missing":
        spec["workloads"] = [str(work / "nope.npz")]
    elif what == "workload-junk":
        spec["workloads"] = [1, 2]
    elif what in ("base-not-utf8", "base-utf16"):
        base = work / f"base{n}.yaml"
        raw = (CONFIGS / "cnvlutin_like.yaml").read_text()
        base.write_bytes(raw.encode("utf-16") if what == "base-utf16"
                         else raw.encode()[:100] + b"\xff\x80" + raw.encode()[100:])
        spec["base"] = str(base)
        if what == "base-utf16":
            expect, check = "ok", {"points": 4}
    elif what == "base-missing":
        spec["base"] = str(work / "nope.yaml")
    elif what == "unknown-key":
        spec["sampels"] = 3
    elif what == "parameters-map":
        spec["parameters"] = {"path": "array.lanes", "values": [4]}
    elif what == "path-section":
        spec["parameters"][0]["path"] = "array"
    elif what == "path-missing":
        spec["parameters"][0]["path"] = "array.lanez"
    elif what == "dup-names":
        spec["parameters"][1]["name"] = "lanes"
    elif what == "dup-paths":
        spec["parameters"][1]["path"] = "array.lanes"
    elif what == "many-values":
        spec["parameters"][0]["values"] = list(range(1, 20_002))
    else:
        spec["parameters"][0] = {"path": "array.lanes", "name": "lanes", "range": [2, 8],
                                 "log": "no"}
        spec["sampling"] = {"method": "random", "samples": 3}
    if text is None:
        text = yaml.safe_dump(spec)
    path.write_text(text)
    out = work / f"sweep{n}_out"
    return Case("sweep", what, ["sweep", str(path), "--out", str(out), "--workers", "1"],
                [str(path), *([spec["base"]] if what.startswith("base") else [])], expect,
                {**check, "out": str(out)})


def reference_sweep(work: Path, source: Path = ROOT) -> tuple[Path, Path]:
    """A finished small sweep (spec, results folder) that journal cases copy and edit, run by
    the package in `source`."""
    spec = work / "journal_spec.yaml"
    spec.write_text(yaml.safe_dump(base_spec()))
    out = work / "journal_ref"
    code = (f"import sys; sys.path.insert(0, {str(source)!r}); from accelsim.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    subprocess.run([sys.executable, "-c", code, "sweep", str(spec), "--out", str(out),
                    "--workers", "1"], check=True, capture_output=True, cwd=work)
    return spec, out


def _journal_case(work: Path, rng: random.Random, n: int, ref: tuple[Path, Path]) -> Case:
    spec_ref, out_ref = ref
    out = work / f"journal{n}"
    shutil.copytree(out_ref, out)
    spec = work / f"journal{n}.yaml"
    shutil.copyfile(spec_ref, spec)
    journal = out / "points.jsonl"
    lines = journal.read_text().splitlines()
    expect = "error"
    files = [str(journal)]
    what = rng.choice(["edit-value", "swap-hashes", "drop-column", "duplicate-line",
                       "not-object", "not-json", "edit-param", "edit-point", "torn-last",
                       "drop-last", "no-manifest", "spec-prepend", "spec-constraint",
                       "untouched", "edit-manifest-hash"])
    rows = [json.loads(line) for line in lines]
    if what == "edit-value":
        rows[0]["latency_s"] *= 2
    elif what == "swap-hashes":
        rows[0]["point_hash"], rows[1]["point_hash"] = rows[1]["point_hash"], rows[0]["point_hash"]
    elif what == "drop-column":
        rows[-1].pop("energy_pj")
    elif what == "duplicate-line":
        rows.append(rows[0])
    elif what == "edit-param":
        rows[0]["lanes"] = 16
    elif what == "edit-point":
        rows[0]["point"] = 7
    if what in ("edit-value", "swap-hashes", "drop-column", "duplicate-line", "edit-param",
                "edit-point"):
        journal.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif what == "not-object":
        journal.write_text("\n".join(lines[:1] + ["[1, 2]"] + lines[1:]) + "\n")
    elif what == "not-json":
        journal.write_text("\n".join(lines[:1] + ["{oops"] + lines[1:]) + "\n")
    elif what == "torn-last":
        journal.write_text("\n".join(lines) + "\n" + lines[0][: len(lines[0]) // 2])
        expect = "ok"
    elif what == "drop-last":
        journal.write_text("\n".join(lines[:-1]) + "\n")
        expect = "ok"
    elif what == "no-manifest":
        (out / "sweep.json").unlink()
        files = [str(out)]
    elif what == "edit-manifest-hash":
        manifest = json.loads((out / "sweep.json").read_text())
        manifest["spec_hash"] = "0" * 16
        (out / "sweep.json").write_text(json.dumps(manifest))
        files = [str(out)]
    elif what.startswith("spec-"):
        data = yaml.safe_load(spec.read_text())
        if what == "spec-prepend":
            data["parameters"][0]["values"] = [2, *data["parameters"][0]["values"]]
        else:
            data["constraints"] = ["lanes * filters <= 512"]
        spec.write_text(yaml.safe_dump(data))
        files = [str(out)]
    else:
        expect = "ok"
    return Case("journal", what, ["sweep", str(spec), "--out", str(out), "--workers", "1",
                                  "--resume"], files, expect,
                {"out": str(out), "reference": str(out_ref / "points.csv")})


def generate(family: str, count: int, seed: int, work: Path, source: Path = ROOT) -> list[Case]:
    """`count` cases of `family`, the same ones for the same seed, their files under `work`
    (`source`: the package that makes the journal cases' reference sweep)."""
    rng = random.Random(f"{family}-{seed}")
    work.mkdir(parents=True, exist_ok=True)
    if family == "trace":
        toy = work / "toy.npz"
        toy_trace(toy)
        return [_trace_case(work, rng, i, rng.choice([toy, DIGITS])) for i in range(count)]
    if family == "arch":
        return [_arch_case(work, rng, i) for i in range(count)]
    if family == "tech":
        return [_tech_case(work, rng, i) for i in range(count)]
    if family == "sweep":
        return [_sweep_case(work, rng, i) for i in range(count)]
    ref = reference_sweep(work, source)
    return [_journal_case(work, rng, i, ref) for i in range(count)]


# --- judging a case ---------------------------------------------------------------------------


def sane_run_csv(text: str) -> str:
    """'' when a `run --format csv` table is sane, else what is wrong with it."""
    import pandas as pd

    df = pd.read_csv(io.StringIO(text))
    if df.empty:
        return "no layers in the result"
    covered = df["covered_macs_fraction"] == 1
    for col in ("cycles", "latency_s", "energy_pj", "dram_bytes", "speedup_vs_dense"):
        values = df.loc[covered, col].to_numpy(dtype=float)
        if not np.isfinite(values).all() or (values < 0).any():
            return f"column {col} holds {values[~np.isfinite(values) | (values < 0)][:3]}"
    if (df.loc[covered, "latency_s"] <= 0).any():
        return "a layer with a result takes no time"
    numeric = df.select_dtypes(include="number").to_numpy(dtype=float)
    if np.isinf(numeric).any():
        return "an infinite value in the table"
    if not (df["macs_done"] + df["macs_skipped"] == df["macs_dense"]).all():
        return "macs_done + macs_skipped != macs_dense"
    return ""


def judge_success(case: Case, stdout: str) -> str:
    """'' when a successful run's output is correct as far as can be told, else why not."""
    import pandas as pd

    if case.argv[0] == "run":
        return sane_run_csv(stdout)
    if case.argv[0] == "inspect":
        payload = json.loads(stdout)
        return "" if payload.get("layers") else "no layers"
    out = Path(case.check["out"])
    table = pd.read_csv(out / "points.csv")
    if "reference" in case.check:
        ref = pd.read_csv(case.check["reference"])
        try:
            pd.testing.assert_frame_equal(table, ref)
        except AssertionError:
            return "the resumed table differs from the uninterrupted one"
        return ""
    manifest = json.loads((out / "sweep.json").read_text())
    workloads = case.check.get("workloads", 1)
    duplicates = manifest.get("duplicate_points") or []
    if "points" in case.check and len(table) != case.check["points"] * workloads:
        return f"{len(table)} rows, expected {case.check['points'] * workloads}"
    if "duplicates" in case.check and len(duplicates) != case.check["duplicates"]:
        return f"{case.check['duplicates']} repeated designs, {len(duplicates)} reported"
    if table["point_hash"].duplicated().any() and workloads == 1:
        return "a point appears twice"
    return ""


def judge(case: Case, rc: object, stdout: str, stderr: str) -> tuple[str, str]:
    if rc == 0:
        if case.expect == "error":
            return "wrong", "accepted an input that had to be refused"
        problem = judge_success(case, stdout)
        return ("wrong", problem) if problem else ("ok", "")
    at = stderr.rfind("accelsim: error:")
    message = stderr[at:].strip() if at >= 0 else stderr.strip()
    if rc == 2 and at >= 0 and "Traceback" not in stderr:
        if case.expect == "ok":
            return "wrong", "refused a valid input: " + message[:300]
        names = [Path(f).name for f in case.files]
        if "\n\n" in message or not any(name in message for name in names):
            return "vague", message[:300]
        return "clear", ""
    return "traceback", f"exit {rc}: {message[-600:]}"


# --- the worker and the runner ----------------------------------------------------------------


class _Alarm(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Alarm()


def worker(memory_bytes: int, timeout_s: int, source: Path) -> None:
    """Read cases (JSON lines) on stdin, answer outcomes (JSON lines) on stdout, running the
    `accelsim` package found in `source`."""
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    sys.path.insert(0, str(source))
    from accelsim.cli import main

    signal.signal(signal.SIGALRM, _on_alarm)
    answer = sys.stdout
    for line in sys.stdin:
        case = Case(**json.loads(line))
        out, err = io.StringIO(), io.StringIO()
        start = time.monotonic()
        signal.alarm(timeout_s)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(case.argv)
            signal.alarm(0)
            category, detail = judge(case, rc, out.getvalue(), err.getvalue())
        except _Alarm:
            category, detail = "hang", f"over {timeout_s} s"
        except SystemExit as exc:
            signal.alarm(0)
            category, detail = judge(case, exc.code, out.getvalue(), err.getvalue())
        except BaseException as exc:  # everything that escapes main is a finding
            signal.alarm(0)
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            category, detail = "traceback", "".join(tb[-3:])[-600:]
        outcome = Outcome(case.label, case.family, category, detail,
                          round(time.monotonic() - start, 2))
        answer.write(json.dumps(asdict(outcome)) + "\n")
        answer.flush()


def run_cases(cases: list[Case], timeout_s: int = 60, memory_bytes: int = 6 * 2**30,
              source: Path = ROOT) -> list[Outcome]:
    """Run every case in worker processes (restarted after a crash or a hang), each case under
    `timeout_s` seconds and `memory_bytes` of address space, on the package in `source`."""
    outcomes: list[Outcome] = []
    proc = None
    command = [sys.executable, "-m", "tests.fuzz_mutations", "--worker", "--source", str(source),
               "--memory", str(memory_bytes), "--timeout", str(timeout_s)]
    for case in cases:
        if proc is None:
            proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        proc.stdin.write(json.dumps(asdict(case)) + "\n")
        proc.stdin.flush()
        reply = _read_line(proc, timeout_s + 30)
        if reply is None:
            alive = proc.poll() is None
            proc.kill()
            proc.wait()
            proc = None
            outcomes.append(Outcome(case.label, case.family, "hang" if alive else "traceback",
                                    "no answer in time" if alive else "the worker died"))
            continue
        outcomes.append(Outcome(**json.loads(reply)))
    if proc is not None:
        proc.stdin.close()
        proc.wait(timeout=30)
    return outcomes


def _read_line(proc: subprocess.Popen, timeout_s: float) -> str | None:
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            return None
    line = proc.stdout.readline()
    return line or None


def summary(outcomes: list[Outcome]) -> dict[str, Counter]:
    """Counts of every category, per family."""
    table: dict[str, Counter] = {}
    for o in outcomes:
        table.setdefault(o.family, Counter())[o.category] += 1
    return table


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=40, help="cases per family")
    parser.add_argument("--family", choices=FAMILIES, action="append")
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--memory", type=int, default=6 * 2**30)
    parser.add_argument("--keep", type=Path, help="keep the generated files here")
    parser.add_argument("--log", type=Path, help="write every outcome here, one JSON line each")
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="folder holding the accelsim package to test (default: this "
                             "checkout), e.g. a copy of an older version")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.memory, args.timeout, args.source)
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="accelsim-fuzz-"))
    outcomes = []
    for family in args.family or FAMILIES:
        cases = generate(family, args.count, args.seed, work / family, args.source)
        outcomes += run_cases(cases, args.timeout, args.memory, args.source)
    if args.log:
        args.log.write_text("".join(json.dumps(asdict(o)) + "\n" for o in outcomes))
    print(f"{'family':8s} {'runs':>5s} " + " ".join(f"{c:>9s}" for c in CATEGORIES))
    for family, counts in summary(outcomes).items():
        print(f"{family:8s} {sum(counts.values()):5d} "
              + " ".join(f"{counts[c]:9d}" for c in CATEGORIES))
    for o in outcomes:
        if o.category not in ("clear", "ok"):
            print(f"\n[{o.family}] {o.label}: {o.category}\n  {o.detail.strip()[:600]}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    _main()
