"""What a sweep report shows: the tables of an `accelsim sweep` folder, read back and checked.

A sweep folder is recognised by its `sweep.json` manifest (`"kind": "accelsim-sweep"`); the
report is rebuilt from the saved CSV tables only, without simulating again.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from accelsim import __version__
from accelsim.errors import AccelsimError
from accelsim.report.content import Table, shown
from accelsim.results import git_revision

KIND = "accelsim-sweep"
TOP_N = 20
"""Points listed in the top-points table, per workload, ranked by energy-delay product."""
TABLES = ("points", "pareto", "best", "sensitivity")
OBJECTIVE_COLUMNS = ["latency_s", "energy_pj", "area_mm2"]
RESULT_HEADERS = {
    "edp_js": "EDP", "latency_s": "latency", "energy_pj": "energy",
    "area_mm2": "area", "speedup_vs_dense": "speed-up vs dense",
    "energy_saving_vs_dense": "energy saving vs dense", "utilization": "utilization",
    "bound": "bound",
}
SENSITIVITY_HEADERS = {"workload": "workload", "parameter": "parameter",
                       "objective": "objective", "spearman": "Spearman rho",
                       "swing": "swing (fraction of mean)"}


@dataclass
class SweepFolder:
    """A sweep folder's manifest and tables (`points`, `pareto`, `best`, `sensitivity`)."""

    path: Path
    manifest: dict
    points: pd.DataFrame
    pareto: pd.DataFrame
    best: pd.DataFrame
    sensitivity: pd.DataFrame

    @property
    def params(self) -> list[str]:
        """Swept parameter names (result columns), in spec order."""
        return [str(p["name"]) for p in self.manifest.get("parameters", [])]

    @property
    def name(self) -> str:
        """The sweep's name from its spec."""
        return str(self.manifest.get("name", self.path.name))


def read_manifest(folder: Path) -> dict | None:
    """The folder's sweep manifest, or None when the folder is not a sweep folder."""
    path = folder / "sweep.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AccelsimError(f"{path}: not a readable sweep manifest ({exc}); re-run the sweep "
                            "with --resume to rewrite it.") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        return None
    return manifest


def _resume_hint(folder: Path, manifest: dict) -> str:
    spec = manifest.get("spec") or "SWEEP.yaml"
    return f"finish the sweep with `accelsim sweep {spec} --out {folder} --resume`"


def load_sweep_folder(folder: Path, manifest: dict) -> SweepFolder:
    """Read and check every table the manifest names; a missing, empty or incomplete table is
    an AccelsimError naming the file and how to finish the sweep."""
    names = manifest.get("tables") or {}
    frames: dict[str, pd.DataFrame] = {}
    for key in TABLES:
        path = folder / Path(str(names.get(key, f"{key}.csv"))).name
        if not path.is_file():
            raise AccelsimError(f"{folder}: the sweep folder has no {path.name} (the sweep was "
                                f"interrupted before its tables were written); "
                                f"{_resume_hint(folder, manifest)}, then build the report again.")
        try:
            frames[key] = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise AccelsimError(f"{path}: not a readable table ({exc}); "
                                f"{_resume_hint(folder, manifest)}.") from None
        if frames[key].empty:
            raise AccelsimError(f"{path}: the table is empty; {_resume_hint(folder, manifest)}.")
    params = [str(p.get("name")) for p in manifest.get("parameters", [])]
    need = {"points": ["point", "workload", *OBJECTIVE_COLUMNS, *params],
            "pareto": ["point", "workload", *OBJECTIVE_COLUMNS],
            "best": ["workload", "objective", "point", *OBJECTIVE_COLUMNS],
            "sensitivity": list(SENSITIVITY_HEADERS)}
    for key, columns in need.items():
        missing = [c for c in columns if c not in frames[key]]
        if missing:
            raise AccelsimError(f"{folder / names.get(key, key + '.csv')}: columns {missing} are "
                                f"missing (written by another accelsim version, or edited); "
                                f"{_resume_hint(folder, manifest)}.")
    return SweepFolder(folder, manifest, **frames)


def _table(df: pd.DataFrame, columns: list[str], headers: dict[str, str]) -> Table:
    cols = [c for c in dict.fromkeys(columns) if c in df]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in cols]
    values = {c: df[c].tolist() for c in cols}
    text = {c: shown(c, values[c]) for c in cols}
    rows = range(len(df))
    return Table([headers.get(c, c) for c in cols], [[text[c][i] for c in cols] for i in rows],
                 numeric, [[values[c][i] for c in cols] for i in rows])


def _with_edp(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(edp_js=df["latency_s"] * df["energy_pj"] * 1e-12)


def _point_columns(sweep: SweepFolder) -> list[str]:
    return ["point", *sweep.params, *OBJECTIVE_COLUMNS, "edp_js", "speedup_vs_dense",
            "energy_saving_vs_dense", "utilization", "bound"]


def best(sweep: SweepFolder) -> Table:
    """The best point per workload and objective (best.csv)."""
    return _table(_with_edp(sweep.best), ["workload", "objective", *_point_columns(sweep)],
                  RESULT_HEADERS)


def pareto(sweep: SweepFolder) -> Table:
    """The non-dominated points (pareto.csv)."""
    return _table(_with_edp(sweep.pareto), ["workload", *_point_columns(sweep)], RESULT_HEADERS)


def top_points(sweep: SweepFolder, n: int = TOP_N) -> Table:
    """Per workload, the `n` points with the lowest energy-delay product (points.csv)."""
    df = _with_edp(sweep.points)
    top = (df.sort_values(["edp_js", "point"]).groupby("workload", sort=False).head(n)
           .sort_values(["workload", "edp_js", "point"], kind="stable"))
    return _table(top, ["workload", *_point_columns(sweep)], RESULT_HEADERS)


def sensitivity(sweep: SweepFolder) -> Table:
    """Each parameter's rank correlation with, and swing of, each objective."""
    return _table(sweep.sensitivity, list(SENSITIVITY_HEADERS), SENSITIVITY_HEADERS)


def _describe(param: dict) -> str:
    if "values" in param:
        return f"{param.get('path')}: values {list(param['values'])}"
    scale = ", log" if param.get("log") else ""
    kind = ", integer" if param.get("integer") else ""
    return f"{param.get('path')}: range [{param.get('low')}, {param.get('high')}]{scale}{kind}"


def provenance(sweep: SweepFolder) -> Table:
    """Tool versions, the sweep spec, base arch, parameters, sampling, workloads, counts."""
    m = sweep.manifest
    sampling = m.get("sampling") or {}
    rows = [
        ["report tool", f"accelsim {__version__} (git {git_revision() or 'unknown'})"],
        ["report date", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")],
        ["sweep tool", f"accelsim {m.get('tool_version')} (git "
                       f"{m.get('git_revision') or 'unknown'})"],
        ["sweep folder", str(sweep.path)],
        ["sweep spec", str(m.get("spec"))],
        ["base arch", str(m.get("base_arch"))],
        *[[f"parameter {p.get('name')}", _describe(p)] for p in m.get("parameters", [])],
        ["sampling", f"{sampling.get('method')}, {sampling.get('samples')} samples, seed "
                     f"{sampling.get('seed')}"],
        ["constraints", "; ".join(map(str, m.get("constraints", []))) or "none"],
        *[["workload", str(w)] for w in m.get("workloads", [])],
        ["design points", f"{m.get('points')} ({m.get('tasks')} point x workload tasks, "
                          f"{len(sweep.points)} in points.csv)"],
        ["objectives", ", ".join(map(str, m.get("objectives", []))) + " (all minimised)"],
    ]
    return Table(["item", "value"], rows, [False, False])
