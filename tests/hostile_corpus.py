"""The regression corpus of hostile and mistaken inputs in `tests/data/hostile/`: one small file
per cause of a traceback, a silent wrong result or unbounded work found by mutating real inputs.

`CORPUS` lists every file with the command that reads it and what must happen: exit 2 with a
message containing `needle` (and naming the file), or exit 0. `python -m tests.hostile_corpus`
writes the files again (they are deterministic); large cases (zip bombs) are not files here but
made on the fly by the tests.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from tests.fuzz_mutations import (
    Member,
    deflated,
    meta_npy,
    npy_bytes,
    npy_header,
    read_npz,
    toy_trace,
    write_members,
    write_zip,
)

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "data" / "hostile"
CONFIGS = ROOT / "arch_configs"
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
TPU = CONFIGS / "tpu_like_128x128_ws.yaml"
CNVLUTIN = CONFIGS / "cnvlutin_like.yaml"


@dataclass(frozen=True)
class Entry:
    """One corpus file: how to make it, the accelsim arguments that read it (`{file}` is the
    file, `{tpu}` / `{digits}` the shipped TPU config and digits trace, `{out}` a fresh folder,
    `{arch}` an arch YAML pricing with the file as its tech table) and what must happen."""

    name: str
    make: Callable[[Path], None]
    argv: tuple[str, ...]
    exit_code: int
    needle: str


def _toy(path: Path) -> tuple[dict, dict[str, bytes]]:
    toy_trace(path)
    return read_npz(path)


def _patch_members(path: Path, change: Callable[[list[Member]], None]) -> None:
    _, raw = _toy(path)
    members = [deflated(k, v) for k, v in raw.items()]
    change(members)
    write_zip(path, members)


def _encrypted(path: Path) -> None:
    def flag(members: list[Member]) -> None:
        members[1].flags |= 1
    _patch_members(path, flag)


def _method99(path: Path) -> None:
    def method(members: list[Member]) -> None:
        members[1].method = 99
    _patch_members(path, method)


def _deflate_flip(path: Path) -> None:
    def flip(members: list[Member]) -> None:
        data = bytearray(members[1].data)
        data[len(data) // 2] ^= 0x40
        members[1].data = bytes(data)
    _patch_members(path, flip)


def _duplicate_member(path: Path) -> None:
    def duplicate(members: list[Member]) -> None:
        members.append(copy.copy(members[1]))
    _patch_members(path, duplicate)


def _replace_member(path: Path, member: str, data: bytes | Callable[[np.ndarray], bytes]) -> None:
    _, raw = _toy(path)
    raw[member] = data(np.load(io.BytesIO(raw[member]))) if callable(data) else data
    write_members(path, raw)


def _no_npy_header(path: Path) -> None:
    _replace_member(path, "act/q.npy", lambda a: a.tobytes())


def _huge_header(path: Path) -> None:
    _replace_member(path, "act/q.npy", npy_header((2**20, 2**20), "<f2") + bytes(10))


def _pickle(path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    _replace_member(path, "act/q.npy", buf.getvalue())


def _f32(value: float) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        def widen(a: np.ndarray) -> bytes:
            wide = a.astype(np.float32)
            wide.flat[3] = value
            return npy_bytes(wide)
        _replace_member(path, "act/q.npy", widen)
    return make


def _meta(change: Callable[[dict], bytes | None]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        meta, raw = _toy(path)
        text = change(meta)
        raw["__meta__.npy"] = meta_npy(meta, text)
        write_members(path, raw)
    return make


def _deep(meta: dict) -> bytes:
    return json.dumps(meta).encode()[:-1] + b', "info": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"


def _long_int(meta: dict) -> bytes:
    return json.dumps(meta).replace('"version": 1', '"version": ' + "1" * 5000).encode()


def _layer(name: str, **change: object) -> Callable[[dict], None]:
    def edit(meta: dict) -> None:
        for layer in meta["layers"]:
            if layer["name"] == name:
                layer.update(change)
    return edit


def _markup(path: Path) -> None:
    """Layer and model names that rich would read as markup."""
    meta, raw = _toy(path)

    def rename(name: str) -> str:
        return "[bold red]q" if name == "q" else name

    for layer in meta["layers"]:
        layer["name"] = rename(layer["name"])
        if "alias_of" in layer:
            layer["alias_of"] = rename(layer["alias_of"])
    meta["edges"] = [[rename(a), rename(b)] for a, b in meta["edges"]]
    meta["model"] = "[blink]toy"
    renamed = {key.replace("/q.npy", "/[bold red]q.npy"): value for key, value in raw.items()}
    renamed["__meta__.npy"] = meta_npy(meta)
    write_members(path, renamed)


def _arch(change: Callable[[dict], None], base: Path = TPU) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = yaml.safe_load(base.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return make


def _set(*keys: object, value: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


def _text(make_text: Callable[[str], bytes], base: Path = TPU) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(make_text(base.read_text()))
    return make


def _tech(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = yaml.safe_load((CONFIGS / "tech" / "horowitz_45nm.yaml").read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return make


def _sweep(change: Callable[[dict], None] | None = None, text: str | None = None
           ) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        if text is not None:
            path.write_text(text)
            return
        spec = {"name": path.stem, "base": "../../../arch_configs/cnvlutin_like.yaml",
                "workloads": ["../../../workloads/digits_cnn.npz"],
                "parameters": [{"path": "array.lanes", "name": "lanes", "values": [4, 8]},
                               {"path": "array.filters_per_pass", "name": "filters",
                                "values": [16, 64]}]}
        if change is not None:
            change(spec)
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return make


GRID_BOMB = """name: grid-anchors
base: ../../../arch_configs/cnvlutin_like.yaml
workloads: [../../../workloads/digits_cnn.npz]
parameters:
  - {path: array.lanes, name: p0, values: &v [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32]}
  - {path: array.filters_per_pass, name: p1, values: *v}
  - {path: array.brick_size, name: p2, values: *v}
  - {path: sync.issue_cycles, name: p3, values: *v}
  - {path: clock_mhz, name: p4, values: *v}
  - {path: static_power_mw, name: p5, values: *v}
  - {path: memory.0.size_bytes, name: p6, values: *v}
  - {path: memory.1.size_bytes, name: p7, values: *v}
"""

DATE_VALUE = """name: date-value
base: ../../../arch_configs/cnvlutin_like.yaml
workloads: [../../../workloads/digits_cnn.npz]
parameters:
  - {path: notes, name: when, values: [2020-01-01]}
"""

RUN = ("run", "{tpu}", "{file}", "--format", "csv")
INSPECT = ("inspect", "{file}")
ARCH_RUN = ("run", "{file}", "{digits}", "--format", "csv")
TECH_RUN = ("run", "{arch}", "{digits}", "--format", "csv")
SWEEP = ("sweep", "{file}", "--out", "{out}", "--workers", "1")

CORPUS: tuple[Entry, ...] = (
    # traces
    Entry("encrypted.npz", _encrypted, RUN, 2, "is encrypted"),
    Entry("method99.npz", _method99, RUN, 2, "compression method 99"),
    Entry("deflate-flip.npz", _deflate_flip, RUN, 2, "cannot be read"),
    Entry("duplicate-member.npz", _duplicate_member, RUN, 2, "appears twice in the zip"),
    Entry("no-npy-header.npz", _no_npy_header, INSPECT, 2, "no valid .npy header"),
    Entry("huge-npy-header.npz", _huge_header, RUN, 2, "its .npy header declares"),
    Entry("pickle.npz", _pickle, RUN, 2, "pickled Python objects"),
    Entry("deep-meta.npz", _meta(_deep), INSPECT, 2, "nests lists or objects more than 64"),
    Entry("long-int-meta.npz", _meta(_long_int), INSPECT, 2, "not valid UTF-8 JSON"),
    Entry("float32-tiny.npz", _f32(1e-10), RUN, 2, "below its smallest normal"),
    Entry("float64-huge.npz", _f32(1e6), RUN, 2, "above float16's largest"),
    Entry("padding-1e6.npz", _meta(_layer("conv", padding=[10**6] * 4)), RUN, 2,
          "reaches past the kernel"),
    Entry("dilation-1e4.npz", _meta(_layer("conv", dilation=[10**4, 10**4],
                                           padding=[2 * 10**4] * 4)),
          RUN, 2, "almost all padding"),
    Entry("markup-names.npz", _markup, RUN, 0, "[bold red]q"),
    # architecture descriptions
    Entry("clock-inf.yaml", _arch(_set("clock_mhz", value=float("inf"))), ARCH_RUN, 2,
          "'clock_mhz': Input should be a finite number"),
    Entry("static-power-inf.yaml", _arch(_set("static_power_mw", value=float("inf"))), ARCH_RUN,
          2, "'static_power_mw': Input should be a finite number"),
    Entry("bandwidth-inf.yaml", _arch(_set("memory", 0, "read_bandwidth_bytes_per_cycle",
                                           value=float("inf"))), ARCH_RUN, 2,
          "'memory.0.read_bandwidth_bytes_per_cycle'"),
    Entry("node-inf.yaml", _arch(_set("tech", "node_nm", value=float("inf"))), ARCH_RUN, 2,
          "'tech.node_nm'"),
    Entry("rows-true.yaml", _arch(_set("rows", value=True)), ARCH_RUN, 2,
          "'rows' is a boolean where a number is expected"),
    Entry("not-utf8.yaml", _text(lambda t: t.encode()[:60] + b"\xff\xfe\x80" + t.encode()[60:]),
          ARCH_RUN, 2, "not valid YAML"),
    Entry("utf16.yaml", _text(lambda t: t.encode("utf-16")), ARCH_RUN, 0, "layer"),
    Entry("deep.yaml", _text(lambda t: (t + "notes: " + "[" * 5000 + "]" * 5000 + "\n")
                             .encode()), ARCH_RUN, 2, "nested too deeply"),
    Entry("brick-1e30.yaml", _arch(_set("array", "brick_size", value=10**30), CNVLUTIN),
          ARCH_RUN, 2, "'array.brick_size'"),
    Entry("lanes-2e63.yaml", _arch(_set("array", "lanes", value=2**63), CNVLUTIN), ARCH_RUN, 2,
          "'array.lanes'"),
    Entry("lanes-1e9.yaml", _arch(_set("array", "lanes", value=10**9), CNVLUTIN), ARCH_RUN, 2,
          "'array.lanes': Input should be less than or equal to 4096"),
    Entry("fifo-1e9.yaml", _arch(_set("sync", "fifo_depth", value=10**9), CNVLUTIN), ARCH_RUN,
          2, "'sync.fifo_depth'"),
    Entry("pe-rows-1e9.yaml", _arch(_set("array", "pe_rows", value=10**9),
                                    CONFIGS / "scnn_like.yaml"), ARCH_RUN, 2, "'array.pe_rows'"),
    # tech tables (read through an arch description that prices with them)
    Entry("tech-list-energy.yaml", _tech(_set("energy_pj", "add", "int32", value=[0.1])),
          TECH_RUN, 2, "'energy_pj.add.int32' must be a finite number"),
    Entry("tech-string-energy.yaml", _tech(_set("energy_pj", "mult", "int16", value="0.8 pJ")),
          TECH_RUN, 2, "'energy_pj.mult.int16'"),
    Entry("tech-zero-energy.yaml", _tech(_set("energy_pj", "add", "int8", value=0)), TECH_RUN, 2,
          "'energy_pj.add.int8' must be a finite number > 0"),
    Entry("tech-negative-energy.yaml", _tech(_set("energy_pj", "dram_per_bit", "lpddr4",
                                                  value=-8.0)), TECH_RUN, 2,
          "'energy_pj.dram_per_bit.lpddr4'"),
    Entry("tech-one-sram-point.yaml",
          _tech(_set("energy_pj", "sram_read_64bit_by_size_bytes", value={1048576: 100.0})),
          TECH_RUN, 0, "layer"),
    Entry("tech-empty-node-table.yaml",
          _tech(_set("node_scaling", "energy_factor_by_node_nm", value={})), TECH_RUN, 2,
          "'node_scaling.energy_factor_by_node_nm' must map nodes"),
    Entry("tech-node-zero.yaml", _tech(_set("node_nm", value=0)), TECH_RUN, 2, "'node_nm'"),
    # sweep specs
    Entry("sweep-sampling-string.yaml", _sweep(_set("sampling", value="grid")), SWEEP, 2,
          "'sampling' must be a mapping"),
    Entry("sweep-seed-negative.yaml",
          _sweep(_set("sampling", value={"method": "random", "samples": 2, "seed": -1})), SWEEP,
          2, "sampling.seed must be an integer"),
    Entry("sweep-date-value.yaml", _sweep(text=DATE_VALUE), SWEEP, 2, "is not a finite number"),
    Entry("sweep-samples-1e9.yaml",
          _sweep(_set("sampling", value={"method": "latin-hypercube", "samples": 10**9})),
          SWEEP, 2, "'samples' of at most 100000"),
    Entry("sweep-range-1e23.yaml", _sweep(lambda s: s.update(
        parameters=[{"path": "array.lanes", "name": "lanes", "range": [1, 1e23]}],
        sampling={"method": "random", "samples": 3})), SWEEP, 2, "'array.lanes'"),
    Entry("sweep-grid-anchors.yaml", _sweep(text=GRID_BOMB), SWEEP, 2,
          "the grid has 1,099,511,627,776 design points"),
    Entry("sweep-constraint-power.yaml", _sweep(_set("constraints", value=["9 ** 9 ** 9 > 1"])),
          SWEEP, 2, "above 2**256"),
    Entry("sweep-param-point.yaml", _sweep(_set("parameters", 0, "name", value="point")), SWEEP,
          2, "the name 'point' is a result column"),
    Entry("sweep-param-latency.yaml", _sweep(_set("parameters", 0, "name", value="latency_s")),
          SWEEP, 2, "the name 'latency_s' is a result column"),
)


def write_corpus(folder: Path = HOSTILE) -> None:
    """Write every corpus file into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in CORPUS:
        entry.make(folder / entry.name)


if __name__ == "__main__":
    write_corpus()
