"""Several architectures on one or more workloads: run each against its own dense equivalent and
save everything into one compare folder (`accelsim.results.load_comparison` reads it back).

A compare folder of one workload holds one sub-folder per architecture (a `RunResult` saved
with `RunResult.save`) and `workload.json`: the workload's graph (edges), per-layer op, shape,
dense MACs and activation density, so that a report can be rebuilt without the trace file. A
folder of several workloads holds one such folder per workload and `comparison.json` naming
them (`accelsim.results.COMPARISON_FILE`). A folder is only written into when it is empty or
missing; `force=True` first clears one that an earlier comparison wrote.

Each architecture is measured against its own dense equivalent (`speedup_vs_dense`). A
comparison with another design is named: with a `baseline` architecture, every other run also
gets per layer `baseline_latency_s`, `baseline_energy_pj`, `speedup_vs_baseline` (baseline
latency / latency) and `energy_saving_vs_baseline` (baseline energy / energy), NaN where either
run has no result for the layer; `workload.json` names the baseline's run.

Architectures whose speed depends on the zeros (`CURVE_KINDS`) also get a `density_curve`
table: the engine run again on the whole workload with every layer's activations replaced by
uniformly random zeros at each of `CURVE_DENSITIES` (shapes-only, `statistical` rows), so that
reports draw each design's speed-up against density from results, beside the trace's own point.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from accelsim.arch.schema import ArchBase
from accelsim.errors import AccelsimError
from accelsim.results import (
    COMPARISON_FILE,
    COMPARISON_KIND,
    DECODE_SWEEP_FILE,
    WORKLOAD_FILE,
    RunResult,
    summary_table,
    workload_info,
)
from accelsim.simulate import Phase, simulate
from accelsim.workload.layer import Layer, Workload

CURVE_DENSITIES = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
"""Activation densities (non-zeros / elements) of each `density_curve` table."""
CURVE_KINDS = ("zero_skip", "sparse_tensor_core", "neuromorphic")
"""Kinds whose time or energy follows the activations' zeros: a dense systolic array's curve is
flat by construction, and a GPU run saves its own per-layer break-even curves."""


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


def prepare_out(out_dir: str | Path, force: bool = False) -> Path:
    """Make `out_dir` ready for a new comparison: missing or empty is fine; a folder an earlier
    comparison wrote is cleared with `force` and refused without; a folder holding anything
    else is refused either way (accelsim deletes only what it wrote). Call it before
    simulating, so that a refusal costs nothing."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AccelsimError(f"{out}: exists and is not a folder; choose another --out.")
    if not out.is_dir() or not any(out.iterdir()):
        return out
    ours = (out / WORKLOAD_FILE).is_file() or (out / COMPARISON_FILE).is_file()
    if not force:
        raise AccelsimError(
            f"{out}: the results folder is not empty, and a new comparison would mix its runs "
            "with the ones already there. Choose another --out, or add --force to clear it "
            "first" + ("." if ours else " (only a folder an earlier `accelsim compare` wrote)."))
    if not ours:
        raise AccelsimError(
            f"{out}: --force clears only a folder an earlier `accelsim compare` wrote (with "
            f"{WORKLOAD_FILE} or {COMPARISON_FILE}), and this one holds other files. Choose "
            "another --out, or empty the folder yourself.")
    shutil.rmtree(out)
    return out


def density_curve(
    workload: Workload,
    arch: ArchBase,
    densities: Sequence[float] = CURVE_DENSITIES,
    on_point: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """The arch's whole-workload figures with every layer's activations at each density, zeros
    placed uniformly at random (shapes-only layers, so the engine's statistical model): one row
    per density with `latency_s`, `energy_pj`, `speedup_vs_dense` (vs the arch's own dense
    equivalent, a factor), `energy_saving_vs_dense` and `covered_macs_fraction`."""
    rows = []
    for density in densities:
        layers = [dataclasses.replace(layer, act=None, act_mask=None,
                                      declared_act_density=float(density))
                  for layer in workload.layers]
        tot = simulate(dataclasses.replace(workload, layers=layers), arch).totals()
        rows.append({"density": float(density), "latency_s": tot["latency_s"],
                     "energy_pj": tot["energy_pj"], "speedup_vs_dense": tot["speedup_vs_dense"],
                     "energy_saving_vs_dense": tot["energy_saving_vs_dense"],
                     "covered_macs_fraction": tot["covered_macs_fraction"]})
        if on_point is not None:
            on_point(density)
    return pd.DataFrame(rows)


def wants_curve(arch: ArchBase, phase: Phase) -> bool:
    """Whether a comparison adds the arch's `density_curve` (prefill runs of `CURVE_KINDS`)."""
    return phase == "prefill" and arch.kind in CURVE_KINDS


def run_compare(
    archs: Sequence[ArchBase],
    workload: Workload,
    workload_path: str | Path,
    out_dir: str | Path | None,
    on_layer: Callable[[str, Layer], None] | None = None,
    baseline: ArchBase | None = None,
    phase: Phase = "prefill",
    batch: int | None = None,
    context: int | None = None,
    curves: bool = True,
    on_curve: Callable[[str, float], None] | None = None,
) -> list[RunResult]:
    """Simulate `workload` on each arch (vs its own dense equivalent, and vs `baseline` when
    given, which runs first and is returned first) and, with `out_dir`, save everything; each
    run is saved as soon as it finishes, `workload.json` last. `phase`, `batch`, `context` as in
    `accelsim.simulate.simulate`; `curves` adds each `wants_curve` arch's `density_curve`
    table (`on_curve(arch name, density)` after each point)."""
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    results, taken, runs = [], set(), []
    for arch in ([baseline] if baseline is not None else []) + list(archs):
        callback = None if on_layer is None else (lambda layer, a=arch: on_layer(a.name, layer))
        result = simulate(workload, arch, on_layer=callback, phase=phase, batch=batch,
                          context=context)
        if curves and wants_curve(arch, phase):
            point = None if on_curve is None else (lambda d, a=arch: on_curve(a.name, d))
            result.tables["density_curve"] = density_curve(workload, arch, on_point=point)
        if baseline is not None:
            add_baseline(result, results[0] if results else result)
        runs.append(folder_name(arch.name, taken))
        if out is not None:
            result.save(out / runs[-1])
        results.append(result)
    if out is not None:
        info = {**workload_info(workload, workload_path), "runs": runs}
        if baseline is not None:
            info["baseline"] = runs[0]
        (out / WORKLOAD_FILE).write_text(json.dumps(info, indent=2, default=str))
    return results


@dataclass
class Comparison:
    """What `accelsim.compare` returns: every run (`runs`, workload by workload in the order
    given, the baseline first within each), the workloads compared and the folder they were
    saved in (`out`, None when not saved)."""

    runs: list[RunResult]
    workloads: list[str]
    out: Path | None = None

    def summary(self) -> pd.DataFrame:
        """One row per (workload, arch): `accelsim.results.SUMMARY_COLUMNS` (seconds, joules,
        factors)."""
        return summary_table(self.runs)

    @property
    def layers(self) -> pd.DataFrame:
        """Every run's per-layer table stacked (the `arch` and `workload` columns tell them
        apart)."""
        return pd.concat([r.layers for r in self.runs], ignore_index=True)

    def report(self, path: str | Path) -> Path:
        """Write the HTML or PDF report (by `path`'s suffix) of the saved comparison."""
        if self.out is None:
            raise AccelsimError("this comparison was not saved, and reports are drawn from saved "
                                "results: call accelsim.compare(..., out=DIR) first.")
        from accelsim.report import write_report

        return write_report(self.out, path)


def distinct_names(workloads: Sequence[tuple[Workload, str | Path]],
                   ) -> list[tuple[Workload, str | Path]]:
    """The workloads, renamed after their files where two share a model name (a trace and its
    sparsified copy), so that every run's `workload` column tells them apart."""
    models = [w.model for w, _ in workloads]
    if len(set(models)) == len(models):
        return list(workloads)
    taken: set[str] = set()
    return [(dataclasses.replace(w, model=folder_name(Path(str(p)).stem or w.model, taken)), p)
            for w, p in workloads]


def run_comparison(
    archs: Sequence[ArchBase],
    workloads: Sequence[tuple[Workload, str | Path]],
    out_dir: str | Path | None = None,
    baseline: ArchBase | None = None,
    force: bool = False,
    on_layer: Callable[[str, Layer], None] | None = None,
    on_curve: Callable[[str, float], None] | None = None,
    curves: bool = True,
    phase: Phase = "prefill",
    batch: int | None = None,
    context: int | None = None,
) -> Comparison:
    """Every arch on every (workload, path) with `run_compare`. With `out_dir` (made ready by
    `prepare_out`, so `force` as there), one workload is saved as a plain compare folder and
    several as one compare folder per workload beside `comparison.json`, written last."""
    out = None if out_dir is None else prepare_out(out_dir, force)
    several = len(workloads) > 1
    workloads = distinct_names(workloads)
    runs: list[RunResult] = []
    taken: set[str] = set()
    entries = []
    for workload, path in workloads:
        folder = folder_name(workload.model, taken) if several else ""
        target = None if out is None else (out / folder if folder else out)
        runs += run_compare(archs, workload, path, target, on_layer=on_layer, baseline=baseline,
                            phase=phase, batch=batch, context=context, curves=curves,
                            on_curve=on_curve)
        entries.append({"folder": folder, "model": workload.model, "path": str(path),
                        "hash": workload.content_hash})
    if out is not None and several:
        manifest = {"kind": COMPARISON_KIND, "workloads": entries}
        (out / COMPARISON_FILE).write_text(json.dumps(manifest, indent=2))
    return Comparison(runs=runs, workloads=[w.model for w, _ in workloads], out=out)


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
