"""Several architectures on one workload: run, save into one folder, load back, summarise.

A compare folder holds one sub-folder per architecture (a `RunResult` saved with
`RunResult.save`) and `workload.json`: the workload's graph (edges), per-layer op, shape,
dense MACs and activation density, so that a report can be rebuilt without the trace file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from accelsim.arch.schema import ArchBase
from accelsim.errors import AccelsimError
from accelsim.results import RunResult
from accelsim.workload.layer import ConvShape, Layer, Workload

WORKLOAD_FILE = "workload.json"

SUMMARY_COLUMNS = [
    "arch", "engine", "latency_s", "throughput_per_s", "energy_j", "edp_js", "area_mm2",
    "speedup_vs_dense", "energy_saving_vs_dense", "bound",
]
"""Summary columns: latency of one pass over the trace (s), throughput = 1 / latency (trace
passes per second; multiply by `batch` for samples/s), energy (J), energy-delay product
(J*s), area (mm^2, `saved_area_mm2`: NaN where not modelled), whole-workload ratios vs dense."""


def folder_name(arch_name: str, taken: set[str]) -> str:
    """A file-system-safe, unique sub-folder name for an arch name."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", arch_name).strip("._") or "arch"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def workload_batch(workload: Workload) -> int:
    """Samples in one pass over the trace: N of the first conv layer, else 1 (unknown)."""
    for layer in workload.layers:
        if isinstance(layer.shape, ConvShape):
            return layer.shape.N
    return 1


def workload_info(workload: Workload, path: str | Path) -> dict:
    """What a report needs of the workload: graph, shapes, densities, provenance."""
    return {
        "model": workload.model,
        "path": str(path),
        "hash": workload.content_hash,
        "source": workload.source,
        "created": workload.created,
        "batch": workload_batch(workload),
        "edges": [list(e) for e in workload.edges],
        "layers": [
            {"name": layer.name, "op": layer.op, "shape_kind": type(layer.shape).__name__,
             "shape": dataclasses.asdict(layer.shape), "macs_dense": layer.macs,
             "act_density": layer.act_density}
            for layer in workload.layers
        ],
    }


def layer_from_info(entry: dict) -> Layer:
    """A shapes-only Layer rebuilt from one `workload.json` layer entry."""
    from accelsim.workload.layer import GemmShape

    shape = dict(entry["shape"])
    if entry["shape_kind"] == "ConvShape":
        for key in ("stride", "padding", "dilation"):
            shape[key] = tuple(shape[key])
        return Layer(entry["name"], entry["op"], ConvShape(**shape))
    return Layer(entry["name"], entry["op"], GemmShape(**shape))


def run_compare(
    archs: Sequence[ArchBase],
    workload: Workload,
    workload_path: str | Path,
    out_dir: str | Path,
    on_layer: Callable[[str, Layer], None] | None = None,
) -> list[RunResult]:
    """Simulate `workload` on each arch (vs its own dense equivalent) and save everything."""
    from accelsim.simulate import simulate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results, taken, runs = [], set(), []
    for arch in archs:
        callback = None if on_layer is None else (lambda layer, a=arch: on_layer(a.name, layer))
        result = simulate(workload, arch, on_layer=callback)
        runs.append(folder_name(arch.name, taken))
        result.save(out / runs[-1])
        results.append(result)
    info = {**workload_info(workload, workload_path), "runs": runs}
    (out / WORKLOAD_FILE).write_text(json.dumps(info, indent=2, default=str))
    return results


def load_compare(out_dir: str | Path) -> tuple[list[RunResult], dict]:
    """The saved results (one per arch, in the order compared) and the workload info of a folder."""
    out = Path(out_dir)
    if not out.is_dir():
        raise AccelsimError(f"{out}: no such results folder. Create one with "
                            "`accelsim compare ARCH.yaml [...] WORKLOAD.npz --out DIR`.")
    subdirs = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise AccelsimError(f"{out}: no per-architecture result folders here; the compare run "
                            "may have failed before saving. Re-run `accelsim compare ... --out "
                            f"{out}`.")
    info_path = out / WORKLOAD_FILE
    if not info_path.is_file():
        raise AccelsimError(f"{info_path}: missing; the compare run did not finish (it is written "
                            f"last). Re-run `accelsim compare ... --out {out}`.")
    try:
        info = json.loads(info_path.read_text())
        names = [entry["name"] for entry in info["layers"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise AccelsimError(f"{info_path}: unreadable ({exc}); re-run `accelsim compare`.") from None
    order = {name: i for i, name in enumerate(info.get("runs", []))}
    subdirs.sort(key=lambda d: (order.get(d.name, len(order)), d.name))
    results = [RunResult.load(d) for d in subdirs]
    for result in results:
        if list(result.layers["layer"].astype(str)) != names:
            raise AccelsimError(
                f"{out}: results of '{result.meta.get('arch')}' do not cover the workload's "
                f"{len(names)} layers (has {len(result.layers)}); the folder mixes runs or a run "
                "was cut short. Re-run `accelsim compare` into an empty folder.")
        if result.meta.get("workload_hash") != info.get("hash"):
            raise AccelsimError(
                f"{out}: results of '{result.meta.get('arch')}' come from another workload "
                f"(hash {result.meta.get('workload_hash')} vs {info.get('hash')}). Re-run "
                "`accelsim compare` into an empty folder.")
    return results, info


def saved_area_mm2(result: RunResult) -> float:
    """Area (mm^2) of the saved arch config by `accelsim.arch.area` (MAC units and SRAM cells
    at the arch's node); NaN where the area model does not cover the arch's kind."""
    from accelsim.arch.area import area_mm2
    from accelsim.kinds import parse_arch

    config = result.meta.get("arch_config")
    if not config:
        return math.nan
    try:
        return area_mm2(parse_arch(config, f"saved config of {result.meta.get('arch')}"))
    except AccelsimError:
        return math.nan


def summary_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per arch: the `SUMMARY_COLUMNS` from each run's totals."""
    rows = []
    for result in results:
        tot = result.totals()
        latency_s, energy_j = tot["latency_s"], tot["energy_pj"] * 1e-12
        rows.append({
            "arch": result.meta.get("arch", ""),
            "engine": tot["engine"],
            "latency_s": latency_s,
            "throughput_per_s": 1.0 / latency_s if latency_s else math.nan,
            "energy_j": energy_j,
            "edp_js": energy_j * latency_s,
            "area_mm2": saved_area_mm2(result),
            "speedup_vs_dense": tot["speedup_vs_dense"],
            "energy_saving_vs_dense": tot["energy_saving_vs_dense"],
            "bound": tot["bound"],
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
