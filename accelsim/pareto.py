"""Sweep analysis: Pareto front, best point per objective, sensitivity, and the front figure
(drawn by `accelsim.report.figures.front_figure`).

All objectives are minimised: latency_s (s), energy_pj (pJ) and area_mm2 (mm^2), per workload.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OBJECTIVES = ("latency_s", "energy_pj", "area_mm2")


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """True for rows of `values` (n x objectives, minimised) no other row dominates
    (<= in every objective and < in one)."""
    n = values.shape[0]
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        dominated = np.all(values <= values[i], axis=1) & np.any(values < values[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def pareto_front(df: pd.DataFrame, objectives: tuple[str, ...] = OBJECTIVES) -> pd.DataFrame:
    """Non-dominated rows per workload, sorted by the first objective. An objective no row of
    the workload has (area where the area model does not cover the kind) is left out; rows
    with another objective that is not a finite number (a design without a result) cannot be
    compared and are never on the front."""
    parts = []
    for _, group in df.groupby("workload", sort=False):
        used = [o for o in objectives if np.isfinite(group[o].to_numpy(dtype=float)).any()]
        values = group[used].to_numpy(dtype=float)
        finite = np.isfinite(values).all(axis=1)
        mask = np.zeros(len(group), dtype=bool)
        mask[finite] = pareto_mask(values[finite])
        parts.append(group[mask].sort_values(used or list(objectives)))
    if not parts:
        return df.iloc[0:0].reset_index(drop=True)
    return pd.concat(parts, ignore_index=True)


def best_per_objective(df: pd.DataFrame, objectives: tuple[str, ...] = OBJECTIVES) -> pd.DataFrame:
    """For each workload and objective, the row minimising it (ties: lowest point index)."""
    rows = []
    for workload, group in df.groupby("workload", sort=False):
        for obj in objectives:
            best = group.sort_values([obj, "point"]).iloc[0]
            rows.append({"workload": workload, "objective": obj, **best.drop("workload")})
    return pd.DataFrame(rows)


def sensitivity(df: pd.DataFrame, params: list[str],
                objectives: tuple[str, ...] = OBJECTIVES) -> pd.DataFrame:
    """Per workload, parameter and objective: Spearman rank correlation (sign = direction) and
    swing = (max - min of the objective's mean per parameter value) / overall mean (size of
    the effect; for ranges, values are binned into quartiles first)."""
    rows = []
    for workload, group in df.groupby("workload", sort=False):
        for prm in params:
            x = pd.to_numeric(group[prm], errors="coerce")
            numeric = not x.isna().any()
            if not numeric:
                key = group[prm].astype(str)
            elif x.nunique() > 8:
                key = pd.qcut(x, 4, duplicates="drop")
            else:
                key = x
            for obj in objectives:
                y = group[obj].astype(float)
                rho = x.rank().corr(y.rank()) if numeric and x.nunique() > 1 else float("nan")
                means = y.groupby(key, observed=True).mean()
                swing = (means.max() - means.min()) / y.mean() if y.mean() else float("nan")
                rows.append({"workload": workload, "parameter": prm, "objective": obj,
                             "spearman": float(rho), "swing": float(swing)})
    return pd.DataFrame(rows)


def plot_front(df: pd.DataFrame, front: pd.DataFrame, out_stem: Path) -> list[Path]:
    """The front figure (see `front_figure`) written as PNG and SVG next to `out_stem`."""
    import matplotlib.pyplot as plt

    from accelsim.report.figures import front_figure

    fig = front_figure(df, front)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return paths


def analyse(df: pd.DataFrame, params: list[str], out: Path) -> dict[str, Path]:
    """Write pareto.csv, best.csv, sensitivity.csv and pareto.png/svg into `out`."""
    front = pareto_front(df)
    written = {"pareto": out / "pareto.csv", "best": out / "best.csv",
               "sensitivity": out / "sensitivity.csv"}
    front.to_csv(written["pareto"], index=False)
    best_per_objective(df).to_csv(written["best"], index=False)
    sensitivity(df, params).to_csv(written["sensitivity"], index=False)
    png, svg = plot_front(df, front, out / "pareto")
    written.update(figure_png=png, figure_svg=svg)
    return written
