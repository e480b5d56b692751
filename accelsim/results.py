"""Results as saved and read back: `RunResult` (one workload on one arch: the per-layer table,
its totals, engine tables, provenance) and compare folders (one `RunResult` per arch beside
`workload.json`), with the summary table a comparison shows."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.workload.layer import ConvShape, Workload

if TYPE_CHECKING:  # pandas is imported where a table is made (start-up of `accelsim run`)
    import pandas as pd

BASE_COLUMNS = [
    "layer", "op", "arch", "workload", "engine", "engine_mode", "macs_dense", "macs_done",
    "macs_skipped", "macs_gated", "act_density", "weight_density", "cycles", "compute_cycles",
    "stall_cycles", "latency_s", "energy_pj", "dram_bytes", "utilization", "bound",
    "speedup_vs_dense", "energy_saving_vs_dense", "dense_cycles", "dense_latency_s",
    "dense_energy_pj", "covered_macs_fraction", "warnings",
]
"""Columns every engine fills; `energy_<component>_pj` and engine-specific columns follow.
`covered_macs_fraction` is 1 for a layer with a result and 0 for one without (NaN cycles,
e.g. unmappable); its MAC-weighted total is the share of the model the totals cover.
`warnings` ("; "-separated) names the effects behind a figure beyond a physical bound, prices
taken outside their table, and why a layer has no result. `arch` and `workload` name the run
(the arch's and the workload's model names), so the tables of several runs stack."""

ACCESS_PREFIX = "access_"
"""Result columns `access_<level>_<action>`: bytes each memory level moved for the layer, as the
engine counted them (`<level>.read_bytes`, `.write_bytes`, `.metadata_read_bytes`, ... in
`LayerResult.actions`): reads and writes per level, with the compressed-format metadata apart.
Where a design keeps one operand per level (a weight FIFO, an activation RAM), the level name
says the operand."""


def access_columns(actions: dict[str, float]) -> dict[str, float]:
    """The `access_<level>_<action>` columns (bytes) of an engine's action counts."""
    out = {}
    for key, count in actions.items():
        level, _, action = key.rpartition(".")
        if level and action.endswith("bytes"):
            out[ACCESS_PREFIX + re.sub(r"[^0-9A-Za-z]+", "_", level) + "_" + action] = count
    return out


def total_ratios(tot: dict) -> dict[str, float]:
    """The totals' ratios from their sums: `speedup_vs_dense` (dense latency / latency),
    `energy_saving_vs_dense` (dense energy / energy), `energy_pj_per_mac` (pJ per dense MAC);
    NaN where the divisor is 0."""
    def ratio(num: str, den: str) -> float:
        return tot[num] / tot[den] if tot[den] else float("nan")

    return {"speedup_vs_dense": ratio("dense_latency_s", "latency_s"),
            "energy_saving_vs_dense": ratio("dense_energy_pj", "energy_pj"),
            "energy_pj_per_mac": ratio("energy_pj", "macs_dense")}


SUM_COLUMNS = [
    "macs_dense", "macs_done", "macs_skipped", "macs_gated", "cycles", "compute_cycles",
    "stall_cycles", "latency_s", "energy_pj", "dram_bytes", "dense_cycles", "dense_latency_s",
    "dense_energy_pj",
]
ADDITIVE = re.compile(r"^(cycles|time|macs)_|_(s|pj|bytes|cycles|reads|writes)$"
                      r"|^(events|synaptic_ops|hops)$")
"""Engine-specific columns that add up over layers (counts, times, energies, accesses)."""


def column_array(values: Sequence[object]) -> np.ndarray:
    """`values` (one result column, NaN where a row lacks it) as the numpy array pandas makes of
    them in a table built from rows: bool when all are booleans, int64 when all are integers,
    float64 (None as NaN) when all are numbers, else object."""
    kinds = set()
    for v in values:
        if v is None:
            kinds.add("none")
        elif isinstance(v, bool | np.bool_):
            kinds.add("bool")
        elif isinstance(v, int | np.integer):
            kinds.add("int")
        elif isinstance(v, float | np.floating):
            kinds.add("float")
        else:
            kinds.add("object")
    if kinds == {"bool"}:
        return np.array(values, dtype=bool)
    if kinds == {"int"}:
        return np.array(values, dtype=np.int64)
    if kinds and kinds <= {"int", "float", "none"} and kinds != {"none"}:
        return np.array([math.nan if v is None else v for v in values], dtype=float)
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _is_numeric(values: np.ndarray) -> bool:
    """A column of numbers, not booleans (what a table sums)."""
    return values.dtype.kind in "iufc"


def _notna(values: np.ndarray) -> np.ndarray:
    """Where a column has a value (not None or NaN), as pandas' `notna`."""
    if values.dtype.kind in "fc":
        return ~np.isnan(values)
    if values.dtype.kind == "O":
        return np.array([not (v is None or (isinstance(v, float) and math.isnan(v)))
                         for v in values], dtype=bool)
    return np.ones(len(values), dtype=bool)


def _sum(values: np.ndarray) -> float:
    """A column's sum as a table sums it: NaN counted as nothing."""
    if values.dtype.kind in "fc":
        values = np.where(np.isnan(values), 0, values)
    return float(values.sum())


class RunResult:
    """Per-layer results (`layers`, one row per trace layer), run metadata (`meta`) and the
    engine's own tables (`tables`, e.g. `breakeven` on a GPU: rows keyed by `layer`).

    A run made by `simulate` keeps its rows and builds the `layers` DataFrame when first asked
    for it: totals and the terminal table read the columns (`column`) without pandas.

    speedup_vs_dense = dense latency / latency on the same hardware with sparsity features
    off; energy_saving_vs_dense = dense energy / energy (a factor; > 1 saves energy).
    """

    def __init__(self, layers: pd.DataFrame | None = None, meta: dict | None = None,
                 tables: dict[str, pd.DataFrame] | None = None) -> None:
        self._layers = layers
        self.meta = {} if meta is None else meta
        self.tables = {} if tables is None else tables
        self._rows: list[dict] = []
        self._columns: list[str] = list(layers.columns) if layers is not None else []
        self._workload = ""
        self._arrays: dict[str, np.ndarray] = {}

    @classmethod
    def from_rows(cls, rows: list[dict], columns: list[str], workload: str, meta: dict,
                  tables: dict[str, pd.DataFrame] | None = None) -> RunResult:
        """A run from its rows (one dict per layer, `workload` added to each as its model name)
        in the table's column order `columns` (every key of every row)."""
        result = cls(meta=meta, tables=tables)
        result._rows, result._columns, result._workload = rows, list(columns), workload
        return result

    @property
    def layers(self) -> pd.DataFrame:
        """The per-layer table (one row per trace layer, `columns` in order)."""
        if self._layers is None:
            import pandas as pd

            self._layers = pd.DataFrame(self._rows).assign(workload=self._workload)[self._columns]
        return self._layers

    @property
    def columns(self) -> list[str]:
        """The per-layer table's column names, in order."""
        return list(self._layers.columns) if self._layers is not None else self._columns

    def column(self, name: str) -> np.ndarray:
        """One per-layer column as a numpy array (the dtype the table gives it)."""
        if self._layers is not None:
            return self._layers[name].to_numpy()
        if name not in self._arrays:
            if name == "workload":
                self._arrays[name] = column_array([self._workload] * len(self._rows))
            else:
                self._arrays[name] = column_array([r.get(name, math.nan) for r in self._rows])
        return self._arrays[name]

    def totals(self) -> dict:
        """Whole-workload figures: sums, MAC-weighted density, and overall ratios.

        Layers the engine could not run (NaN cycles, e.g. unmappable on a neuromorphic
        core) are left out of every figure, dense ones included, and counted in
        `layers_without_result`. A decode run (`meta["decode"]`) adds the figures per token:
        `tokens_per_s`, `latency_s_per_token`, `energy_pj_per_token` (and
        `weight_read_bytes_per_token` where the engine counts weight bytes).
        """
        has = _notna(self.column("cycles"))

        def kept(name: str) -> np.ndarray:
            return self.column(name)[has]

        tot: dict = {"layer": "TOTAL", "op": "", "arch": self.meta.get("arch", ""),
                     "layers_without_result": int(len(has) - has.sum()),
                     "covered_macs_fraction": self.covered_macs_fraction(),
                     "layers_with_warnings": int((self.column("warnings") != "").sum())}
        for col in self.columns:
            if col in SUM_COLUMNS or (ADDITIVE.search(col) and _is_numeric(self.column(col))):
                tot[col] = _sum(kept(col))
        weights = kept("macs_dense").astype(float)
        wsum = weights.sum()
        for col in ("act_density", "weight_density"):
            tot[col] = float(np.dot(kept(col), weights) / wsum) if wsum else float("nan")
        modes = set(kept("engine_mode"))
        tot["engine_mode"] = modes.pop() if len(modes) == 1 else "mixed"
        tot["engine"] = self.column("engine")[0]
        tot.update(total_ratios(tot))
        cycles = kept("cycles")
        cycles_sum = _sum(cycles)
        tot["utilization"] = (float(np.dot(kept("utilization"), cycles) / cycles_sum)
                              if cycles_sum else 0.0)
        memory = kept("bound") == "memory"
        tot["bound"] = "memory" if len(memory) and memory.sum() / len(memory) > 0.5 else "compute"
        decode = self.meta.get("decode")
        if decode:
            tokens = decode["tokens"]
            tot["tokens"] = tokens
            tot["decode_steps"] = decode["steps"]
            tot["latency_s_per_token"] = tot["latency_s"] / tokens
            tot["energy_pj_per_token"] = tot["energy_pj"] / tokens
            tot["tokens_per_s"] = tokens / tot["latency_s"] if tot["latency_s"] else float("nan")
            if "weight_read_bytes" in tot:
                tot["weight_read_bytes_per_token"] = tot["weight_read_bytes"] / tokens
        return tot

    def covered_macs_fraction(self) -> float:
        """Share of the model's dense MACs in layers that have a result (1.0: all)."""
        macs = self.column("macs_dense").astype(float)
        total = macs.sum()
        covered = macs[_notna(self.column("cycles"))].sum()
        return float(covered / total) if total else 1.0

    def coverage_note(self) -> str:
        """'' when every layer has a result, else what the totals cover and why not all."""
        missing = ~_notna(self.column("cycles"))
        if not missing.any():
            return ""
        reasons = sorted({w for text in self.column("warnings")[missing]
                          for w in str(text).split("; ") if w})
        why = f": {'; '.join(reasons)}" if reasons else ""
        return (f"covers {100 * self.covered_macs_fraction():.3g} % of the model's MACs "
                f"({int(missing.sum())} of {len(missing)} layers without a result{why})")

    def columns_with_totals(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The per-layer columns `names` with the `totals` value below (NaN where the totals
        have none), each as the array `with_totals` gives it, without making a DataFrame."""
        total = {**self.totals(), "workload": self.meta.get("workload", "")}
        rows = len(self.column("layer"))
        return {c: _stacked(self.column(c) if c in self.columns
                            else np.full(rows, math.nan), total.get(c, math.nan))
                for c in names}

    def with_totals(self) -> pd.DataFrame:
        """The per-layer table with the `totals` row (layer 'TOTAL') below it."""
        import pandas as pd

        total = {**self.totals(), "workload": self.meta.get("workload", "")}
        return pd.concat([self.layers, pd.DataFrame([total])], ignore_index=True)

    def save(self, out_dir: str | Path, stem: str = "results") -> list[Path]:
        """Write `<stem>.csv`, `<stem>.parquet` (per layer), `<stem>_<table>.csv` and
        `.parquet` per engine table, and `<stem>.json` (meta + totals + table names) last."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"{stem}.csv", out / f"{stem}.parquet"]
        self.layers.to_csv(paths[0], index=False)
        self.layers.to_parquet(paths[1], index=False)
        for name, table in self.tables.items():
            paths += [out / f"{stem}_{name}.csv", out / f"{stem}_{name}.parquet"]
            table.to_csv(paths[-2], index=False)
            table.to_parquet(paths[-1], index=False)
        payload = {"meta": self.meta, "totals": self.totals()}
        if self.tables:
            payload["tables"] = list(self.tables)
        paths.append(out / f"{stem}.json")
        paths[-1].write_text(json.dumps(payload, indent=2, default=_json_default))
        return paths

    @classmethod
    def load(cls, out_dir: str | Path, stem: str = "results") -> RunResult:
        import pandas as pd

        out = Path(out_dir)
        csv, js = out / f"{stem}.csv", out / f"{stem}.json"
        if not csv.is_file() or not js.is_file():
            raise AccelsimError(
                f"{out}: no complete results here (expected {csv.name} and {js.name}); the run "
                "may have failed or been interrupted. Re-run `accelsim run ... --out DIR`."
            )
        try:
            layers = pd.read_csv(csv, dtype={"warnings": str}, keep_default_na=True)
            saved = json.loads(js.read_text())
            meta = saved["meta"]
            tables = {name: pd.read_parquet(out / f"{stem}_{name}.parquet")
                      for name in saved.get("tables", [])}
        except (ValueError, KeyError, OSError, pd.errors.ParserError) as exc:
            raise AccelsimError(f"{out}: results files are unreadable ({exc}).") from None
        if "covered_macs_fraction" not in layers:  # saved before coverage was a column
            layers["covered_macs_fraction"] = layers["cycles"].notna().astype(float)
        layers["warnings"] = layers["warnings"].fillna("") if "warnings" in layers else ""
        if "workload" not in layers:  # saved before runs named their workload per row
            layers.insert(3, "workload", str(meta.get("workload", "")))
        missing = [c for c in BASE_COLUMNS if c not in layers]
        if missing:
            raise AccelsimError(f"{csv}: missing result columns {missing}; not an accelsim result.")
        return cls(layers=layers, meta=meta, tables=tables)


def _stacked(values: np.ndarray, below: object) -> np.ndarray:
    """`values` with `below` appended, in the dtype pandas gives a column stacked from two
    tables (`pd.concat`): kept when both parts have it, float64 for integers and floats (NaN,
    a missing value, is a float), object for anything else (booleans with numbers, text)."""
    tail = column_array([below])
    kinds = {values.dtype.kind, tail.dtype.kind}
    if len(kinds) == 1 and "O" not in kinds:
        dtype: type | np.dtype = values.dtype
    elif kinds <= {"i", "f"}:
        dtype = float
    else:
        dtype = object
    out = np.empty(len(values) + 1, dtype=dtype)
    out[:-1] = values
    out[-1] = below
    return out


@functools.cache
def git_revision() -> str:
    """The git commit of the accelsim source tree, or '' outside a checkout; asked of git once
    per process (a sweep runs many points)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=False,
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


WORKLOAD_FILE = "workload.json"
DECODE_SWEEP_FILE = "decode_sweep.csv"
"""In a compare folder: per arch and activation sparsity, the decode figures of
`accelsim.compare.decode_sparsity_sweep` (present when the comparison swept sparsity)."""

SUMMARY_COLUMNS = [
    "arch", "workload", "engine", "latency_s", "throughput_per_s", "energy_j", "edp_js",
    "area_mm2",
    "speedup_vs_dense", "energy_saving_vs_dense", "bound", "covered_macs_fraction",
]
"""Summary columns: latency of one pass over the trace (s), throughput = 1 / latency (trace
passes per second; multiply by `batch` for samples/s), energy (J), energy-delay product
(J*s), area (mm^2, the run's `area_mm2`: NaN where not modelled), whole-workload ratios vs
dense, and the share of the model's MACs these figures cover (below 1 where layers have no
result: every figure of that row leaves them out)."""
DECODE_SUMMARY_COLUMNS = ["tokens_per_s", "latency_s_per_token", "energy_pj_per_token"]
"""Added to the summary when runs replayed LLM decode: tokens per second, seconds and pJ per
token over the layers with a result."""
BASELINE_COLUMNS = ["speedup_vs_baseline", "energy_saving_vs_baseline"]
"""Added to the summary when runs were compared with a baseline design: baseline latency /
latency and baseline energy / energy over the layers both have a result for."""


def workload_batch(workload: Workload) -> int:
    """Samples in one pass over the trace: N of the first conv layer, else 1 (unknown)."""
    for layer in workload.layers:
        if isinstance(layer.shape, ConvShape):
            return layer.shape.N
    return 1


def workload_info(workload: Workload, path: str | Path) -> dict:
    """What a report needs of the workload (the contents of a compare folder's
    `workload.json`, beside the run order): graph, shapes, densities, provenance."""
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


def load_compare(out_dir: str | Path) -> tuple[list[RunResult], dict]:
    """The saved results (one per arch, in the order compared) and the workload info of a
    compare folder."""
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
    runs = info.get("runs")
    if isinstance(runs, list) and runs:  # the folders this comparison wrote, in its order
        subdirs = [out / str(name) for name in runs]
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


COMPARISON_FILE = "comparison.json"
"""In a folder comparing several workloads: `{"kind": "accelsim-compare", "workloads": [...]}`,
one sub-folder per workload (`folder`, the workload's `model` and `path`), each a compare
folder of its own (one sub-folder per arch and `workload.json`). Written last."""
COMPARISON_KIND = "accelsim-compare"


def load_comparison(out_dir: str | Path) -> list[tuple[list[RunResult], dict]]:
    """Every workload's (results, workload info) of a compare folder: one pair for a folder of
    one workload (`load_compare`), one per workload, in the order compared, for a folder of
    several (`COMPARISON_FILE`)."""
    out = Path(out_dir)
    path = out / COMPARISON_FILE
    if not path.is_file():
        return [load_compare(out)]
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        folders = [str(entry["folder"]) for entry in manifest["workloads"]]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise AccelsimError(f"{path}: unreadable ({exc}); re-run `accelsim compare` into an "
                            "empty folder (or with --force).") from None
    if manifest.get("kind") != COMPARISON_KIND or not folders:
        raise AccelsimError(f"{path}: not an accelsim comparison manifest; re-run `accelsim "
                            "compare` into an empty folder (or with --force).")
    return [load_compare(out / name) for name in folders]


def load_decode_sweep(out_dir: str | Path) -> pd.DataFrame | None:
    """The decode sparsity sweep saved in a compare folder, or None when it has none."""
    import pandas as pd

    path = Path(out_dir) / DECODE_SWEEP_FILE
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise AccelsimError(f"{path}: unreadable ({exc}); re-run `accelsim compare ... "
                            "--sparsities`.") from None


def summary_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per arch: the `SUMMARY_COLUMNS` from each run's totals and metadata, the
    `DECODE_SUMMARY_COLUMNS` for decode runs and the `BASELINE_COLUMNS` when a run was
    compared with a baseline."""
    import pandas as pd

    rows = []
    for result in results:
        tot = result.totals()
        latency_s, energy_j = tot["latency_s"], tot["energy_pj"] * 1e-12
        area_mm2 = result.meta.get("area_mm2")
        rows.append({
            "arch": result.meta.get("arch", ""),
            "workload": result.meta.get("workload", ""),
            "engine": tot["engine"],
            "latency_s": latency_s,
            "throughput_per_s": 1.0 / latency_s if latency_s else math.nan,
            "energy_j": energy_j,
            "edp_js": energy_j * latency_s,
            "area_mm2": math.nan if area_mm2 is None else area_mm2,
            "speedup_vs_dense": tot["speedup_vs_dense"],
            "energy_saving_vs_dense": tot["energy_saving_vs_dense"],
            "bound": tot["bound"],
            "covered_macs_fraction": tot["covered_macs_fraction"],
            **{c: tot.get(c, math.nan) for c in DECODE_SUMMARY_COLUMNS},
            **_versus_baseline(result),
        })
    decoded = any("decode" in r.meta for r in results)
    with_baseline = any("baseline" in r.meta for r in results)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS + (DECODE_SUMMARY_COLUMNS if decoded else [])
                        + (BASELINE_COLUMNS if with_baseline else []))


def _versus_baseline(result: RunResult) -> dict[str, float]:
    """Whole-workload ratios against the baseline run over the layers both have a result for
    (NaN for a run compared with none)."""
    df = result.layers
    if "baseline_latency_s" not in df:
        return {c: math.nan for c in BASELINE_COLUMNS}
    both = df["latency_s"].notna() & df["baseline_latency_s"].notna()
    mine, theirs = df[both], df.loc[both, ["baseline_latency_s", "baseline_energy_pj"]]
    return {
        "speedup_vs_baseline": (theirs["baseline_latency_s"].sum() / mine["latency_s"].sum()
                                if mine["latency_s"].sum() else math.nan),
        "energy_saving_vs_baseline": (theirs["baseline_energy_pj"].sum() / mine["energy_pj"].sum()
                                      if mine["energy_pj"].sum() else math.nan),
    }
