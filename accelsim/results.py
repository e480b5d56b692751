"""RunResult: the per-layer table of one workload on one arch, its totals, save and load."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from accelsim.errors import AccelsimError

BASE_COLUMNS = [
    "layer", "op", "arch", "engine", "engine_mode", "macs_dense", "macs_done", "macs_skipped",
    "macs_gated", "act_density", "weight_density", "cycles", "compute_cycles", "stall_cycles",
    "latency_s", "energy_pj", "dram_bytes", "utilization", "bound", "speedup_vs_dense",
    "energy_saving_vs_dense", "dense_cycles", "dense_latency_s", "dense_energy_pj",
]
"""Columns every engine fills; `energy_<component>_pj` and engine-specific columns follow."""

SUM_COLUMNS = [
    "macs_dense", "macs_done", "macs_skipped", "macs_gated", "cycles", "compute_cycles",
    "stall_cycles", "latency_s", "energy_pj", "dram_bytes", "dense_cycles", "dense_latency_s",
    "dense_energy_pj",
]
ADDITIVE = re.compile(r"^(cycles|time|macs)_|_(s|pj|bytes|cycles)$|^(events|synaptic_ops|hops)$")
"""Engine-specific columns that add up over layers (counts, times, energies)."""


@dataclass
class RunResult:
    """Per-layer results (`layers`, one row per trace layer) and run metadata (`meta`).

    speedup_vs_dense = dense latency / latency on the same hardware with sparsity features
    off; energy_saving_vs_dense = dense energy / energy (a factor; > 1 saves energy).
    """

    layers: pd.DataFrame
    meta: dict

    def totals(self) -> dict:
        """Whole-workload figures: sums, MAC-weighted density, and overall ratios.

        Layers the engine could not run (NaN cycles, e.g. unmappable on a neuromorphic
        core) are left out of every figure, dense ones included, and counted in
        `layers_without_result`.
        """
        df = self.layers[self.layers["cycles"].notna()]
        tot: dict = {"layer": "TOTAL", "op": "", "arch": self.meta.get("arch", ""),
                     "layers_without_result": int(len(self.layers) - len(df))}
        for col in df.columns:
            if col in SUM_COLUMNS or (ADDITIVE.search(col) and is_numeric_dtype(df[col])
                                      and not is_bool_dtype(df[col])):
                tot[col] = float(df[col].sum())
        weights = df["macs_dense"].to_numpy(dtype=float)
        wsum = weights.sum()
        for col in ("act_density", "weight_density"):
            tot[col] = float(np.dot(df[col], weights) / wsum) if wsum else float("nan")
        modes = set(df["engine_mode"])
        tot["engine_mode"] = modes.pop() if len(modes) == 1 else "mixed"
        tot["engine"] = self.layers["engine"].iloc[0]
        tot["speedup_vs_dense"] = (tot["dense_latency_s"] / tot["latency_s"]
                                   if tot["latency_s"] else float("nan"))
        tot["energy_saving_vs_dense"] = (tot["dense_energy_pj"] / tot["energy_pj"]
                                         if tot["energy_pj"] else float("nan"))
        tot["utilization"] = (float(np.dot(df["utilization"], df["cycles"]) / df["cycles"].sum())
                              if df["cycles"].sum() else 0.0)
        tot["bound"] = "memory" if (df["bound"] == "memory").mean() > 0.5 else "compute"
        return tot

    def with_totals(self) -> pd.DataFrame:
        return pd.concat([self.layers, pd.DataFrame([self.totals()])], ignore_index=True)

    def save(self, out_dir: str | Path, stem: str = "results") -> list[Path]:
        """Write `<stem>.csv`, `<stem>.parquet` (per layer) and `<stem>.json` (meta + totals)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"{stem}.csv", out / f"{stem}.parquet", out / f"{stem}.json"]
        self.layers.to_csv(paths[0], index=False)
        self.layers.to_parquet(paths[1], index=False)
        paths[2].write_text(json.dumps({"meta": self.meta, "totals": self.totals()}, indent=2,
                                       default=_json_default))
        return paths

    @classmethod
    def load(cls, out_dir: str | Path, stem: str = "results") -> RunResult:
        out = Path(out_dir)
        csv, js = out / f"{stem}.csv", out / f"{stem}.json"
        if not csv.is_file() or not js.is_file():
            raise AccelsimError(
                f"{out}: no complete results here (expected {csv.name} and {js.name}); the run "
                "may have failed or been interrupted. Re-run `accelsim run ... --out DIR`."
            )
        try:
            layers = pd.read_csv(csv)
            meta = json.loads(js.read_text())["meta"]
        except (ValueError, KeyError, pd.errors.ParserError) as exc:
            raise AccelsimError(f"{out}: results files are unreadable ({exc}).") from None
        missing = [c for c in BASE_COLUMNS if c not in layers]
        if missing:
            raise AccelsimError(f"{csv}: missing result columns {missing}; not an accelsim result.")
        return cls(layers=layers, meta=meta)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
