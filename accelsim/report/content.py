"""What a report shows, independent of HTML or PDF: tables (strings) and provenance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from accelsim import __version__
from accelsim.report.units import column_text
from accelsim.results import RunResult, git_revision, summary_table

SUMMARY_HEADERS = {
    "arch": "architecture", "engine": "engine", "latency_s": "latency",
    "throughput_per_s": "throughput (passes/s)", "energy_j": "energy", "edp_js": "EDP",
    "area_mm2": "area", "speedup_vs_dense": "speed-up vs dense",
    "energy_saving_vs_dense": "energy saving vs dense", "bound": "bound",
    "covered_macs_fraction": "coverage (share of MACs)",
    "tokens_per_s": "decode tokens/s", "latency_s_per_token": "latency per token",
    "energy_pj_per_token": "energy per token",
    "speedup_vs_baseline": "speed-up vs baseline",
    "energy_saving_vs_baseline": "energy saving vs baseline",
}
"""Summary headers; the cells carry their units (`accelsim.report.units`)."""
LAYER_HEADERS = {
    "arch": "architecture", "layer": "layer", "op": "op", "macs_dense": "dense MACs",
    "act_density": "act density", "cycles": "cycles", "latency_s": "latency",
    "energy_pj": "energy", "dram_bytes": "DRAM traffic", "utilization": "utilization",
    "bound": "bound", "speedup_vs_dense": "speed-up", "energy_saving_vs_dense": "energy saving",
    "speedup_vs_baseline": "speed-up vs baseline", "warnings": "warnings",
}
SHOWN_AS = {"covered_macs_fraction": lambda f: percent(float(f))}
"""Columns shown other than by `shown`."""


def percent(fraction: float) -> str:
    """A share as shown in tables: '100 %', '0.0523 %', '-' when missing."""
    return "-" if math.isnan(fraction) else f"{100 * fraction:.3g} %"


@dataclass
class Table:
    """A table of display strings; `numeric[i]` says whether column i sorts as numbers."""

    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    raw: list[list[object]] = field(default_factory=list)


def shown(column: str, values: Sequence[object]) -> list[str]:
    """A column's cells as reports show them: `SHOWN_AS` where it names the column, else
    `accelsim.report.units.column_text` (SI units, one notation per column)."""
    if column in SHOWN_AS:
        return [SHOWN_AS[column](v) for v in values]
    return column_text(column, values)


def _table(df: pd.DataFrame, headers: dict[str, str]) -> Table:
    cols = [c for c in headers if c in df]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in cols]
    values = {c: df[c].tolist() for c in cols}
    text = {c: shown(c, values[c]) for c in cols}
    raw = [[values[c][i] for c in cols] for i in range(len(df))]
    return Table([headers[c] for c in cols], [[text[c][i] for c in cols] for i in range(len(df))],
                 numeric, raw)


def summary(results: Sequence[RunResult], by_workload: bool = False) -> Table:
    """The per-architecture summary table (with a workload column when `by_workload`)."""
    headers = ({"workload": "workload", **SUMMARY_HEADERS} if by_workload
               else SUMMARY_HEADERS)
    return _table(summary_table(results), headers)


def notes(results: Sequence[RunResult]) -> list[str]:
    """What the summary's figures leave out or compare with: coverage below 100 % per
    architecture, and the baseline design when there is one."""
    found = [f"{r.meta.get('arch')}: {r.coverage_note()}" for r in results if r.coverage_note()]
    baselines = sorted({str(r.meta["baseline"]) for r in results if "baseline" in r.meta})
    found += [f"Speed-up and energy saving vs baseline compare with the design '{b}', over the "
              "layers both have a result for." for b in baselines]
    return found


def per_layer(results: Sequence[RunResult]) -> Table:
    """Every layer on every architecture."""
    return _table(pd.concat([r.layers for r in results], ignore_index=True), LAYER_HEADERS)


def provenance(results: Sequence[RunResult], info: dict) -> Table:
    """Tool version, git hash, arch and workload hashes, trace source, config sources, dates."""
    import datetime as dt

    rows = [
        ["report tool", f"accelsim {__version__} (git {git_revision() or 'unknown'})"],
        ["report date", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")],
        ["workload", f"{info.get('model')} ({info.get('path')}), hash {info.get('hash')}, "
                     f"{len(info.get('layers', []))} layers, batch {info.get('batch')}"],
    ]
    source = info.get("source") or {}
    for key in ("recipe", "dataset", "inputs", "command", "captured_by"):
        if key in source:
            rows.append([f"trace {key}", str(source[key])])
    for r in results:
        m = r.meta
        cfg = m.get("arch_config", {})
        rows.append([f"arch {m.get('arch')}",
                     f"kind {m.get('arch_kind')}, hash {m.get('arch_hash')}, simulated "
                     f"{m.get('created')} by accelsim {m.get('tool_version')} (git "
                     f"{m.get('git_revision') or 'unknown'})"])
        for key, text in (cfg.get("sources") or {}).items():
            rows.append([f"  source: {key}", str(text)])
    return Table(["item", "value"], rows, [False, False])
