"""Several architectures on one workload: run each against its own dense equivalent and save
everything into one compare folder (`accelsim.results.load_compare` reads it back).

A compare folder holds one sub-folder per architecture (a `RunResult` saved with
`RunResult.save`) and `workload.json`: the workload's graph (edges), per-layer op, shape,
dense MACs and activation density, so that a report can be rebuilt without the trace file.

Each architecture is measured against its own dense equivalent (`speedup_vs_dense`). A
comparison with another design is named: with a `baseline` architecture, every other run also
gets per layer `baseline_latency_s`, `baseline_energy_pj`, `speedup_vs_baseline` (baseline
latency / latency) and `energy_saving_vs_baseline` (baseline energy / energy), NaN where either
run has no result for the layer; `workload.json` names the baseline's run.
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
from accelsim.results import DECODE_SWEEP_FILE, WORKLOAD_FILE, RunResult, workload_info
from accelsim.simulate import Phase, simulate
from accelsim.workload.layer import Layer, Workload


def folder_name(arch_name: str, taken: set[str]) -> str:
    """A file-system-safe, unique sub-folder name for an arch name."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", arch_name).strip("._") or "arch"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def add_baseline(result: RunResult, baseline: RunResult) -> None:
    """Add the per-layer columns comparing `result` with the `baseline` run (module docstring)."""
    base = baseline.layers.set_index("layer").loc[result.layers["layer"]]
    layers = result.layers
    layers["baseline_latency_s"] = base["latency_s"].to_numpy()
    layers["baseline_energy_pj"] = base["energy_pj"].to_numpy()
    layers["speedup_vs_baseline"] = [
        b / t if t and not math.isnan(t) else math.nan
        for b, t in zip(layers["baseline_latency_s"], layers["latency_s"])]
    layers["energy_saving_vs_baseline"] = [
        b / e if e and not math.isnan(e) else math.nan
        for b, e in zip(layers["baseline_energy_pj"], layers["energy_pj"])]
    result.meta["baseline"] = baseline.meta.get("arch")


def run_compare(
    archs: Sequence[ArchBase],
    workload: Workload,
    workload_path: str | Path,
    out_dir: str | Path,
    on_layer: Callable[[str, Layer], None] | None = None,
    baseline: ArchBase | None = None,
    phase: Phase = "prefill",
    batch: int | None = None,
    context: int | None = None,
) -> list[RunResult]:
    """Simulate `workload` on each arch (vs its own dense equivalent, and vs `baseline` when
    given, which runs first and is returned first) and save everything; each run is saved as
    soon as it finishes, `workload.json` last. `phase`, `batch`, `context` as in
    `accelsim.simulate.simulate`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results, taken, runs = [], set(), []
    for arch in ([baseline] if baseline is not None else []) + list(archs):
        callback = None if on_layer is None else (lambda layer, a=arch: on_layer(a.name, layer))
        result = simulate(workload, arch, on_layer=callback, phase=phase, batch=batch,
                          context=context)
        if baseline is not None:
            add_baseline(result, results[0] if results else result)
        runs.append(folder_name(arch.name, taken))
        result.save(out / runs[-1])
        results.append(result)
    info = {**workload_info(workload, workload_path), "runs": runs}
    if baseline is not None:
        info["baseline"] = runs[0]
    (out / WORKLOAD_FILE).write_text(json.dumps(info, indent=2, default=str))
    return results


def sparsifiable(layer: Layer) -> bool:
    """Whether `sparsified` sets this layer's input sparsity: linear layers inside the model's
    blocks (TEAL leaves the output head, `lm_head`, dense)."""
    return layer.op == "linear" and layer.name.rsplit(".", 1)[-1] != "lm_head"


def sparsified(workload: Workload, sparsity: float, method: str = "teal") -> Workload:
    """`workload` with its `sparsifiable` layers' inputs at activation sparsity `sparsity`
    (MAC-weighted over them): layers with values through `accelsim.workload.sparsify`
    (`method`, e.g. TEAL's greedy allocation), the others by lowering their declared density
    to 1 - sparsity."""
    from accelsim.workload.sparsify import sparsify

    if sparsity <= 0:
        return workload
    out = workload
    valued = [layer.name for layer in workload.layers
              if sparsifiable(layer) and layer.act is not None]
    if valued:
        out = sparsify(workload, method, target=sparsity, layers=valued, output_error=False).workload
    layers = [dataclasses.replace(layer, declared_act_density=min(layer.act_density, 1 - sparsity))
              if sparsifiable(layer) and not layer.has_trace else layer for layer in out.layers]
    return dataclasses.replace(out, layers=layers)


def linear_sparsity(workload: Workload) -> float:
    """Share of zero inputs over the workload's `sparsifiable` layers, MAC-weighted."""
    chosen = [layer for layer in workload.layers if sparsifiable(layer)]
    macs = sum(layer.macs for layer in chosen)
    return 1 - sum(layer.act_density * layer.macs for layer in chosen) / macs if macs else 0.0


def decode_sparsity_sweep(
    archs: Sequence[ArchBase],
    workload: Workload,
    sparsities: Sequence[float],
    out_dir: str | Path | None = None,
    method: str = "teal",
    batch: int | None = None,
    context: int | None = None,
    on_point: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """Decode figures of every arch at every model-level activation sparsity (the workload
    `sparsified` by `method`): achieved sparsity, tokens/s, latency and energy per token, weight
    bytes per token, the speed-up over the arch's own dense equivalent and over its run at the
    first sparsity. Written to `DECODE_SWEEP_FILE` in `out_dir` when given."""
    rows = []
    for target in sparsities:
        variant = sparsified(workload, target, method)
        achieved = linear_sparsity(variant)
        for arch in archs:
            tot = simulate(variant, arch, phase="decode", batch=batch, context=context).totals()
            rows.append({"arch": arch.name, "method": method if target > 0 else "none",
                         "target_sparsity": target, "sparsity": achieved,
                         "tokens_per_s": tot["tokens_per_s"],
                         "latency_s_per_token": tot["latency_s_per_token"],
                         "energy_pj_per_token": tot["energy_pj_per_token"],
                         "weight_read_bytes_per_token": tot.get("weight_read_bytes_per_token",
                                                                math.nan),
                         "speedup_vs_dense": tot["speedup_vs_dense"],
                         "covered_macs_fraction": tot["covered_macs_fraction"]})
            if on_point is not None:
                on_point(arch.name, target)
    df = pd.DataFrame(rows)
    first = df.groupby("arch", sort=False)["tokens_per_s"].transform("first")
    df["speedup_vs_first"] = df["tokens_per_s"] / first
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        df.to_csv(Path(out_dir) / DECODE_SWEEP_FILE, index=False)
    return df
