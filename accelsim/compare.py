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

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from accelsim.arch.schema import ArchBase
from accelsim.results import WORKLOAD_FILE, RunResult, workload_info
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
