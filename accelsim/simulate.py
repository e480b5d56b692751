"""Run one workload on one architecture: count with the engine, then price, per layer."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from accelsim import __version__, decode
from accelsim.arch.area import area_mm2
from accelsim.arch.energy import action_energy_pj, price, price_warnings, pricing_notes
from accelsim.arch.schema import ArchBase
from accelsim.engines.counts import LayerResult
from accelsim.errors import AccelsimError
from accelsim.kinds import engine_for
from accelsim.results import BASE_COLUMNS, RunResult, access_columns, git_revision
from accelsim.workload.layer import Layer, Workload


def _count(layer: Layer, arch: ArchBase) -> LayerResult:
    return engine_for(arch.kind).simulate(layer, arch)


def _prepare(workload: Workload, arch: ArchBase) -> dict:
    """Run the engine's optional whole-workload step; its summary goes to the run metadata."""
    prepare = getattr(engine_for(arch.kind), "prepare", None)
    return (prepare(workload, arch) or {}) if prepare is not None else {}


@dataclass(frozen=True)
class Prices:
    """One arch's energy per unit of each action (pJ, `action_energy_pj`) and the price notes
    of its actions (`pricing_notes`): made once per run, used for every layer."""

    arch: ArchBase
    table: dict[str, float]
    notes: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, arch: ArchBase) -> Prices:
        return cls(arch, action_energy_pj(arch), pricing_notes(arch))

    def energy_pj(self, actions: dict[str, float], latency_s: float) -> dict[str, float]:
        """`accelsim.arch.energy.price` of `actions` on this arch, pJ per component."""
        return price(actions, self.arch, latency_s, self.table)

    def warnings(self, actions: dict[str, float]) -> list[str]:
        """`accelsim.arch.energy.price_warnings` of `actions` on this arch."""
        return price_warnings(actions, self.arch, self.notes)


def _row(layer: Layer, res: LayerResult, dense: LayerResult, prices: Prices,
         dense_prices: Prices) -> dict:
    arch, dense_arch = prices.arch, dense_prices.arch
    latency_s = res.cycles / arch.clock_hz
    dense_latency_s = dense.cycles / dense_arch.clock_hz
    energy = prices.energy_pj(res.actions, latency_s)
    dense_energy_pj = sum(dense_prices.energy_pj(dense.actions, dense_latency_s).values())
    energy_pj = sum(energy.values())
    has_result = not math.isnan(res.cycles)
    speedup = dense_latency_s / latency_s if latency_s else 1.0
    row = {
        "layer": layer.name,
        "op": layer.op,
        "arch": arch.name,
        "engine": arch.kind,
        "engine_mode": res.engine_mode,
        "macs_dense": res.macs_dense,
        "macs_done": res.macs_done,
        "macs_skipped": res.macs_skipped,
        "macs_gated": res.macs_gated,
        "act_density": layer.act_density,
        "weight_density": layer.weight_density,
        "cycles": res.cycles,
        "compute_cycles": res.compute_cycles,
        "stall_cycles": res.stall_cycles,
        "latency_s": latency_s,
        "energy_pj": energy_pj,
        "dram_bytes": res.dram_bytes,
        "utilization": res.utilization if has_result else math.nan,
        "bound": res.bound if has_result else "none",
        "speedup_vs_dense": speedup,
        "energy_saving_vs_dense": dense_energy_pj / energy_pj if energy_pj else float("nan"),
        "dense_cycles": dense.cycles,
        "dense_latency_s": dense_latency_s,
        "dense_energy_pj": dense_energy_pj,
        "covered_macs_fraction": 1.0 if has_result else 0.0,
        "warnings": "; ".join(_warnings(res, speedup, dense, prices, dense_prices)),
    }
    row.update({f"energy_{component}_pj": pj for component, pj in energy.items()})
    row.update(res.columns)
    row.update(access_columns(res.actions))
    return row


def mac_bound(res: LayerResult) -> float:
    """The most skipping work can speed a layer up by: dense MACs / MACs done."""
    return res.macs_dense / res.macs_done if res.macs_done else math.inf


def _warnings(res: LayerResult, speedup: float, dense: LayerResult, prices: Prices,
              dense_prices: Prices) -> list[str]:
    """The engine's warnings, a speed-up above `mac_bound` said in numbers, and the prices of
    this row's actions (on the arch and on its dense equivalent) taken outside the tech table's
    sourced range (`accelsim.arch.energy.price_warnings`)."""
    found = list(res.warnings)
    for note in prices.warnings(res.actions) + dense_prices.warnings(dense.actions):
        if note not in found:
            found.append(note)
    bound = mac_bound(res)
    if speedup > bound * (1 + 1e-9):
        if dense.bound == "memory" and dense.cycles:
            found.append(f"memory-bound when dense ({dense.stall_cycles / dense.cycles:.0%} of "
                         "its cycles wait on memory): fewer bytes move here, so time follows "
                         "bytes, not MACs")
        found.append(f"speed-up {speedup:.3g}x is above dense MACs / MACs done = {bound:.3g}x")
    return found


Phase = Literal["prefill", "decode"]


def simulate(
    workload: Workload,
    arch: ArchBase,
    on_layer: Callable[[Layer], None] | None = None,
    phase: Phase = "prefill",
    batch: int | None = None,
    context: int | None = None,
) -> RunResult:
    """Simulate every layer on `arch` and on `arch.dense_equivalent()`; `on_layer` is
    called after each layer (for progress). `phase="decode"` replays a causal LM's prefill
    trace as decode steps of `batch` tokens against a KV cache of `context` positions (see
    `accelsim.decode`; both default to the workload's decode metadata)."""
    dense_arch = arch.dense_equivalent()
    plan = None
    if phase == "decode":
        plan = decode.plan(workload, batch, context)
        if getattr(engine_for(arch.kind), "prepare", None) is not None:
            raise AccelsimError(
                f"{arch.name}: decode replay runs each layer as separate steps, which kind "
                f"'{arch.kind}' cannot map as one network. Run it without --phase decode.")
    summaries = {"arch": _prepare(workload, arch)} if plan is None else {"arch": {}}
    if plan is None and dense_arch != arch:
        summaries["dense"] = _prepare(workload, dense_arch)
    prices = Prices.of(arch)
    dense_prices = prices if dense_arch == arch else Prices.of(dense_arch)
    rows, tables = [], {}
    for layer in workload.layers:
        steps = [decode.Step(layer.name, layer)] if plan is None else plan.products[layer.name]
        step_rows = []
        for step in steps:
            res = _count(step.layer, arch)
            dense = res if dense_arch == arch else _count(step.layer, dense_arch)
            step_rows.append((_row(step.layer, res, dense, prices, dense_prices), step.repeat))
            if step is steps[0]:
                for name, table in res.tables.items():
                    tables.setdefault(name, []).append(table.assign(layer=layer.name))
        rows.append(step_rows[0][0] if plan is None
                    else decode.aggregate(layer.name, step_rows, plan.tokens))
        if on_layer is not None:
            on_layer(layer)
    df = pd.DataFrame(rows).assign(workload=workload.model)
    energy_cols = sorted(c for c in df.columns if c.startswith("energy_") and c.endswith("_pj")
                         and c not in BASE_COLUMNS)
    extra_cols = [c for c in df.columns if c not in BASE_COLUMNS and c not in energy_cols]
    df = df[BASE_COLUMNS + energy_cols + extra_cols]
    meta = {
        "tool": "accelsim",
        "tool_version": __version__,
        "git_revision": git_revision(),
        "arch": arch.name,
        "arch_kind": arch.kind,
        "arch_hash": arch.config_hash(),
        "arch_config": arch.model_dump(mode="json"),
        "area_mm2": _area_mm2(arch),
        "workload": workload.model,
        "workload_hash": workload.content_hash,
        "workload_source": workload.source,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if plan is not None:
        meta["phase"] = "decode"
        meta["decode"] = plan.meta()
    if any(summaries.values()):
        meta["engine_summary"] = summaries
    stacked = {name: _layer_first(pd.concat(parts, ignore_index=True))
               for name, parts in tables.items()}
    return RunResult(layers=df, meta=meta, tables=stacked)


def _layer_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[["layer", *(c for c in table.columns if c != "layer")]]


def _area_mm2(arch: ArchBase) -> float | None:
    """Modelled die area (`accelsim.arch.area`), None where the model does not cover the kind."""
    try:
        return area_mm2(arch)
    except AccelsimError:
        return None
