"""Report figures drawn with matplotlib (Agg): each returns a Figure, or None without data."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

from accelsim.report.units import axis_label, quantity, si  # noqa: E402
from accelsim.results import RunResult  # noqa: E402

BREAKEVEN_LAYERS = 6
"""Break-even curves drawn per GPU: the layers with the longest dense time."""
HORIZONTAL_LAYERS = 16
"""Per-layer figures with more layers than this draw one row per layer (every layer labelled)."""
PARAMETER_BINS = 8
"""A swept range (more distinct values than this) is summarised by medians over this many
quantile bins in the parameter-vs-objective plots."""


def label(text: object) -> str:
    """A user-provided string made literal for matplotlib: no mathtext from '$', and a
    leading '_' (which would hide it from legends) kept visible behind a space."""
    text = str(text).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def si_axis(ax: plt.Axes, unit: str, which: str = "y") -> None:
    """Tick labels of `which` axis as SI-prefixed values of `unit` (the data in base units)."""
    formatter = FuncFormatter(lambda v, _pos: si(v, unit, 3) if v else "0")
    (ax.yaxis if which == "y" else ax.xaxis).set_major_formatter(formatter)


def energy_components(layers: pd.DataFrame) -> dict[str, str]:
    """Component name -> its `energy_<component>_pj` column, every component once: a split of
    another component (`energy_dram_act_pj`, `energy_dram_psum_pj` of `energy_dram_pj`: a name
    that extends another with `_`) is left out, so the components add up to `energy_pj`."""
    found = [c[7:-3] for c in layers.columns if c.startswith("energy_") and c.endswith("_pj")
             and c != "energy_pj"]
    return {name: f"energy_{name}_pj" for name in found
            if not any(name.startswith(other + "_") for other in found)}


def merged_component(name: str, names: set[str]) -> str:
    """`name` as drawn: a plural ('accumulators') is drawn as its singular when one exists."""
    return name[:-1] if name.endswith("s") and name[:-1] in names else name


def _names(results: Sequence[RunResult]) -> list[str]:
    return [label(r.meta.get("arch", "?")) for r in results]


def _layer_axis(ax: plt.Axes, layers: Sequence[str]) -> None:
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([label(n) for n in layers], rotation=60 if len(layers) > 6 else 0,
                       ha="right" if len(layers) > 6 else "center", fontsize=7)
    if len(layers) > 40:
        ax.set_xticks(range(0, len(layers), math.ceil(len(layers) / 40)))
        ax.set_xticklabels([label(n) for n in layers[::math.ceil(len(layers) / 40)]],
                           rotation=60, ha="right", fontsize=7)


def _log_if_wide(ax: plt.Axes, series: Sequence[object]) -> None:
    """Log y axis when the speed-ups span more than a factor of 20 (bars and dots stay legible)."""
    values = np.concatenate([np.asarray(s, dtype=float) for s in series])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() / values.min() > 20:
        ax.set_yscale("log")


def _width(n_layers: int) -> float:
    return min(14.0, max(7.0, 0.25 * n_layers))


def _layer_bars(results: Sequence[RunResult], column: str, title: str, xlabel: str) -> Figure:
    """Grouped bars of `column` per layer, one colour per architecture: vertical for a few
    layers, one row per layer (all labelled) for many; the legend outside the bars."""
    layers = list(results[0].layers["layer"].astype(str))
    many = len(layers) > HORIZONTAL_LAYERS
    width = 0.8 / len(results)
    pos = np.arange(len(layers))
    if many:
        fig, ax = plt.subplots(figsize=(9, max(4.0, 0.07 * len(layers) * len(results) + 1.5)))
    else:
        fig, ax = plt.subplots(figsize=(_width(len(layers)), 4))
    for i, (r, name) in enumerate(zip(results, _names(results))):
        offset = pos + (i - (len(results) - 1) / 2) * width
        values = r.layers[column].to_numpy(dtype=float)
        if many:
            ax.barh(offset, values, width, label=name)
        else:
            ax.bar(offset, values, width, label=name)
    if many:
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(pos)
        ax.set_yticklabels([label(n) for n in layers], fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        _log_if_wide_x(ax, [r.layers[column] for r in results])
    else:
        ax.axhline(1.0, color="black", linewidth=0.8)
        _layer_axis(ax, layers)
        _log_if_wide(ax, [r.layers[column] for r in results])
        ax.set_ylabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def _log_if_wide_x(ax: plt.Axes, series: Sequence[object]) -> None:
    values = np.concatenate([np.asarray(s, dtype=float) for s in series])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() / values.min() > 20:
        ax.set_xscale("log")


def speedup_per_layer(results: Sequence[RunResult]) -> Figure:
    """Grouped bars: each layer's speed-up over dense, one colour per architecture."""
    return _layer_bars(results, "speedup_vs_dense",
                       "Per-layer speed-up over each architecture's dense equivalent",
                       "speed-up over dense (x)")


def energy_breakdown(results: Sequence[RunResult]) -> Figure:
    """Whole-workload energy by component: each architecture's bar split into its components'
    shares (so designs 1000x apart stay readable), its total energy written above it."""
    totals = []
    for r in results:
        parts = energy_components(r.layers)
        totals.append({name: float(r.layers[col].fillna(0).sum()) * 1e-12
                       for name, col in parts.items()})
    names = {c for t in totals for c in t}
    merged = []
    for t in totals:
        m: dict[str, float] = {}
        for comp, joules in t.items():
            key = merged_component(comp, names)
            m[key] = m.get(key, 0.0) + joules
        merged.append(m)
    components = sorted({c for t in merged for c in t})
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(results) + 4), 4.5))
    bottom = np.zeros(len(results))
    tab20 = plt.get_cmap("tab20")
    colours = [tab20(i) for i in range(0, 20, 2)] + [tab20(i) for i in range(1, 20, 2)]
    sums = np.array([sum(t.values()) for t in merged])
    for j, comp in enumerate(components):
        values = np.array([t.get(comp, 0.0) for t in merged])
        shares = np.divide(values, sums, out=np.zeros_like(values), where=sums > 0) * 100
        ax.bar(range(len(results)), shares, 0.6, bottom=bottom, label=label(comp),
               color=colours[j % len(colours)])
        bottom += shares
    for i, total in enumerate(sums):
        ax.annotate(si(total, "J"), (i, 100), xytext=(0, 3), textcoords="offset points",
                    ha="center", fontsize=8)
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels(_names(results), fontsize=8, rotation=15 if len(results) > 3 else 0)
    ax.set_ylim(0, 108)
    ax.set_ylabel("share of the energy per pass (%)")
    ax.set_title("Energy by component (total per pass above each bar)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def area_breakdown(results: Sequence[RunResult]) -> Figure | None:
    """Modelled die area per architecture split by component (MAC units, each SRAM level), in
    mm²; None when no run has an area model (GPUs, sparse tensor cores, neuromorphic cores)."""
    areas = [(r, r.meta.get("area_mm2_by_component")) for r in results]
    areas = [(r, a) for r, a in areas if a]
    if not areas:
        return None
    components = sorted({c for _, a in areas for c in a})
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.6 * len(areas) + 1.5)))
    left = np.zeros(len(areas))
    for comp in components:
        values = np.array([a.get(comp, 0.0) for _, a in areas])
        ax.barh(range(len(areas)), values, left=left, label=label(comp))
        left += values
    for i, total in enumerate(left):
        ax.annotate(f"{total:.3g} mm²", (total, i), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(range(len(areas)))
    ax.set_yticklabels([label(r.meta.get("arch")) for r, _ in areas], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.2)
    ax.set_xlabel("modelled area (mm²): MAC units and SRAM cells")
    skipped = len(results) - len(areas)
    ax.set_title("Area by component" + (f" ({skipped} architecture(s) without an area model "
                                        "left out)" if skipped else ""), fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def _stacked_layer_bars(layers: list[str], stacks: list[tuple[str, np.ndarray, str | None]],
                        unit: str, quantity: str) -> tuple[Figure, Axes]:
    """A figure of per-layer bars stacked from `stacks` ((legend label, values in `unit`,
    colour or None), bottom first), SI axis labelled `quantity`: horizontal bars with one row
    per layer beyond `HORIZONTAL_LAYERS` layers, vertical ones otherwise."""
    many = len(layers) > HORIZONTAL_LAYERS
    size = (9, max(4.0, 0.16 * len(layers) + 1.5)) if many else (_width(len(layers)), 4)
    fig, ax = plt.subplots(figsize=size)
    start = np.zeros(len(layers))
    for name, values, color in stacks:
        if many:
            ax.barh(range(len(layers)), values, left=start, label=name, color=color)
        else:
            ax.bar(range(len(layers)), values, bottom=start, label=name, color=color)
        start = start + values
    if many:
        ax.set_yticks(range(len(layers)))
        ax.set_yticklabels([label(n) for n in layers], fontsize=6)
        ax.invert_yaxis()
        si_axis(ax, unit, "x")
        ax.set_xlabel(quantity)
    else:
        _layer_axis(ax, layers)
        si_axis(ax, unit)
        ax.set_ylabel(quantity)
    return fig, ax


def energy_per_layer(result: RunResult) -> Figure:
    """One architecture's energy per layer, split by component (stacked, SI axis)."""
    layers = list(result.layers["layer"].astype(str))
    parts = energy_components(result.layers)
    names = set(parts)
    merged: dict[str, np.ndarray] = {}
    for comp, col in parts.items():
        key = merged_component(comp, names)
        values = result.layers[col].fillna(0).to_numpy(dtype=float) * 1e-12
        merged[key] = merged.get(key, 0.0) + values
    fig, ax = _stacked_layer_bars(layers, [(label(c), merged[c], None) for c in sorted(merged)],
                                  "J", "energy per pass")
    ax.set_title(f"{label(result.meta.get('arch'))}: energy per layer by component")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def latency_split(result: RunResult) -> Figure | None:
    """One architecture's latency per layer split into computing and waiting on memory (the
    engine's `compute_cycles` and `stall_cycles`, in seconds)."""
    layers = result.layers
    if not {"compute_cycles", "stall_cycles"} <= set(layers) or not layers["cycles"].notna().any():
        return None
    names = list(layers["layer"].astype(str))
    cycles = layers["cycles"].to_numpy(dtype=float)
    seconds_per_cycle = np.divide(layers["latency_s"].to_numpy(dtype=float), cycles,
                                  out=np.zeros_like(cycles), where=cycles > 0)
    compute = np.nan_to_num(layers["compute_cycles"].to_numpy(dtype=float) * seconds_per_cycle)
    stall = np.nan_to_num(layers["stall_cycles"].to_numpy(dtype=float) * seconds_per_cycle)
    fig, ax = _stacked_layer_bars(names, [("computing", compute, "tab:blue"),
                                          ("waiting on memory", stall, "tab:red")],
                                  "s", "latency")
    ax.set_title(f"{label(result.meta.get('arch'))}: latency per layer, compute vs memory stall")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def peak_macs_per_s(result: RunResult) -> float:
    """The arch's peak MAC rate as the engine uses it: MACs done / (latency x utilization),
    the median over layers with a result (NaN when no layer gives it)."""
    df = result.layers
    ok = (df["utilization"] > 0) & (df["latency_s"] > 0) & (df["macs_done"] > 0)
    if not ok.any():
        return math.nan
    return float(np.median(df.loc[ok, "macs_done"] / (df.loc[ok, "latency_s"]
                                                      * df.loc[ok, "utilization"])))


def dram_bandwidth(result: RunResult) -> float:
    """The DRAM read bandwidth in bytes/s from the saved arch description, NaN without one."""
    cfg = result.meta.get("arch_config") or {}
    clock_hz = float(cfg.get("clock_mhz") or 0) * 1e6
    for level in cfg.get("memory") or []:
        if level.get("kind") == "dram" and clock_hz:
            return float(level["read_bandwidth_bytes_per_cycle"]) * clock_hz
    return math.nan


def roofline(results: Sequence[RunResult]) -> Figure:
    """Per-layer roofline, one panel per architecture: each layer's dense MACs per DRAM byte
    against the dense-equivalent MAC rate it attains (dense MACs / latency), marked by its
    bound; the DRAM-bandwidth roof (from the description) and the compute roof (the engine's
    peak rate, `peak_macs_per_s`)."""
    cols = min(3, len(results))
    rows = math.ceil(len(results) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results):
        df = r.layers[(r.layers["dram_bytes"] > 0) & (r.layers["latency_s"] > 0)]
        intensity = df["macs_dense"] / df["dram_bytes"]
        rate = df["macs_dense"] / df["latency_s"]
        for bound, marker, colour in (("compute", "o", "tab:blue"), ("memory", "s", "tab:red"),
                                      ("none", "x", "grey")):
            pick = df["bound"] == bound
            if pick.any():
                ax.scatter(intensity[pick], rate[pick], marker=marker, color=colour, s=20,
                           label=f"{bound}-bound layers")
        xs = np.logspace(np.log10(max(intensity.min() / 3, 1e-3)),
                         np.log10(intensity.max() * 3), 50) if len(df) else np.array([1, 10])
        peak, bandwidth = peak_macs_per_s(r), dram_bandwidth(r)
        if np.isfinite(peak):
            ax.axhline(peak, color="black", linewidth=1, linestyle="--",
                       label=f"peak {si(peak, 'MAC/s')}")
        if np.isfinite(bandwidth):
            roof = bandwidth * xs
            ax.plot(xs, np.minimum(roof, peak) if np.isfinite(peak) else roof, color="black",
                    linewidth=1, label=f"DRAM {si(bandwidth, 'B/s')}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("dense MACs per DRAM byte")
        ax.set_ylabel("attained MAC/s (dense-equivalent)")
        ax.set_title(label(r.meta.get("arch")), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    fig.suptitle("Per-layer roofline (above 1x the dense rate: zeros skipped)", fontsize=10)
    fig.tight_layout()
    return fig


def density_scatter(results: Sequence[RunResult]) -> Figure:
    """Left: each layer's activation density against its speed-up, one colour per
    architecture, with the ideal 1/density (every zero skipped, nothing else changes). Right,
    for architectures with a `density_curve` table: the whole trace's speed-up at uniform
    densities as the engine computed it, and the trace's own point."""
    curves = [r for r in results if "density_curve" in r.tables]
    fig, axes = plt.subplots(1, 2 if curves else 1, figsize=(13 if curves else 7, 4.5),
                             squeeze=False)
    ax = axes[0, 0]
    xs = np.linspace(0.02, 1.0, 100)
    for r, name in zip(results, _names(results)):
        ax.scatter(r.layers["act_density"], r.layers["speedup_vs_dense"], s=18, alpha=0.8,
                   label=name)
    ax.plot(xs, 1 / xs, color="grey", linestyle="--", linewidth=1, label="ideal: 1 / density")
    top = max([float(np.nanmax(r.layers["speedup_vs_dense"])) for r in results] + [1.0])
    ax.set_ylim(0.0 if top < 20 else None, max(2.0, top * 1.3))
    ax.axhline(1.0, color="black", linewidth=0.8)
    _log_if_wide(ax, [r.layers["speedup_vs_dense"] for r in results])
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("activation density (non-zeros / elements)")
    ax.set_ylabel("speed-up over dense (x)")
    ax.set_title("Per layer")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    if curves:
        ax = axes[0, 1]
        for r in curves:
            curve = r.tables["density_curve"]
            (line,) = ax.plot(curve["density"], curve["speedup_vs_dense"], "o-", markersize=3,
                              label=label(r.meta.get("arch")))
            tot = r.totals()
            ax.plot([tot["act_density"]], [tot["speedup_vs_dense"]], "*", markersize=12,
                    color=line.get_color())
        ax.plot(xs, 1 / xs, color="grey", linestyle="--", linewidth=1, label="ideal: 1 / density")
        ax.set_yscale("log")
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("activation density, uniform zeros in every layer")
        ax.set_ylabel("whole-trace speed-up over dense (x)")
        ax.set_title("Whole trace: uniform zeros (lines), the trace itself (stars)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def gpu_breakeven(result: RunResult) -> Figure | None:
    """Best allowed sparse kernel's speed-up vs density for the GPU's costliest layers, each
    layer's measured density marked (the run's saved `breakeven` table)."""
    curves = result.tables.get("breakeven")
    if result.meta.get("arch_kind") != "gpu" or curves is None:
        return None
    top = result.layers.sort_values("dense_latency_s", ascending=False).head(BREAKEVEN_LAYERS)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in top["layer"].astype(str):
        rows = curves[curves["layer"].astype(str) == name]
        line_rows, at = rows[~rows["at_layer_density"]], rows[rows["at_layer_density"]]
        (line,) = ax.plot(line_rows["density"], line_rows["best_speedup"], label=label(name))
        ax.plot(at["density"], at["best_speedup"], "o", color=line.get_color(), markersize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("activation density (random zeros)")
    ax.set_ylabel("best kernel's speed-up over dense (x)")
    ax.set_title(f"{label(result.meta.get('arch'))}: break-even curves of the "
                 f"{len(top)} of {len(result.layers)} layers with the longest dense time; dots "
                 "at each layer's measured density", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def kernel_curves(curve: pd.DataFrame, breakevens: pd.DataFrame, title: str) -> Figure:
    """Every kernel's speed-up over dense against density (log axes) for one GEMM shape, each
    finite break-even density marked: `curve` and `breakevens` as `accelsim breakeven` gives
    them (`speedup_<kernel>` per density; `kernel`, `breakeven_density` per sparse kernel)."""
    table = breakevens.set_index("kernel")
    fig, ax = plt.subplots(figsize=(8, 5))
    kernels = [c[len("speedup_"):] for c in curve.columns if c.startswith("speedup_")]
    for name in kernels:
        speedup = curve[f"speedup_{name}"]
        if not speedup.notna().any():
            ax.plot([], [], linestyle="none", label=f"{name}: may not run these activations")
            continue
        (line,) = ax.plot(curve["density"], speedup, label=name)
        if name in table.index and np.isfinite(table.loc[name, "breakeven_density"]):
            ax.axvline(table.loc[name, "breakeven_density"], color=line.get_color(),
                       linestyle=":", linewidth=1)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("activation density (non-zeros / elements)")
    ax.set_ylabel("speed-up over dense (same GPU)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def neuromorphic_use(result: RunResult) -> Figure | None:
    """Events and neural processors used per layer, for neuromorphic results."""
    cols = [c for c in ("events", "nps_used") if c in result.layers]
    if result.meta.get("arch_kind") != "neuromorphic" or not cols:
        return None
    layers = list(result.layers["layer"].astype(str))
    fig, axes = plt.subplots(len(cols), 1, figsize=(_width(len(layers)), 2.6 * len(cols)),
                             squeeze=False)
    for ax, col in zip(axes[:, 0], cols):
        ax.bar(range(len(layers)), result.layers[col], color="tab:purple")
        ax.set_ylabel({"events": "events", "nps_used": "NPs used"}[col])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _layer_axis(ax, layers)
    axes[0, 0].set_title(f"{label(result.meta.get('arch'))}: events and neural-processor use")
    fig.tight_layout()
    return fig


def trace_vs_uniform(result: RunResult) -> Figure | None:
    """Per layer: cycles with the same density spread uniformly / cycles with the traced zero
    pattern (above 1: the real pattern is faster than uniform zeros would be)."""
    if "cycles_if_uniform" not in result.layers:
        return None
    layers = list(result.layers["layer"].astype(str))
    ratio = (result.layers["cycles_if_uniform"] / result.layers["cycles"]).to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(_width(len(layers)), 4))
    ax.bar(np.arange(len(layers)), ratio, color=np.where(ratio >= 1, "tab:green", "tab:red"))
    ax.axhline(1.0, color="black", linewidth=0.8)
    _layer_axis(ax, layers)
    ax.set_ylabel("uniform-zeros cycles / traced cycles")
    ax.set_title(f"{label(result.meta.get('arch'))}: how the traced zero pattern compares with "
                 "uniform zeros at the same density", fontsize=9)
    fig.tight_layout()
    return fig


def model_graph(info: dict) -> Figure | None:
    """The layer graph (producer -> consumer) coloured by activation density."""
    layers = info.get("layers", [])
    if not layers:
        return None
    g = nx.DiGraph()
    for e in layers:
        g.add_node(e["name"], density=e["act_density"])
    g.add_edges_from(tuple(e) for e in info.get("edges", []) if e[0] in g and e[1] in g)
    order = {e["name"]: i for i, e in enumerate(layers)}
    if nx.is_directed_acyclic_graph(g):
        depth: dict[str, int] = {}
        for n in nx.topological_sort(g):
            depth[n] = max((depth[p] + 1 for p in g.predecessors(n)), default=0)
    else:
        depth = dict(order)
    rows: dict[int, list[str]] = {}
    for n in sorted(g, key=order.get):
        rows.setdefault(depth[n], []).append(n)
    pos = {n: (float(d), (len(ns) - 1) / 2 - i) for d, ns in rows.items() for i, n in enumerate(ns)}
    lanes = max(len(ns) for ns in rows.values())
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.28 * len(rows) + 2)),
                                    min(8.0, max(3.0, 0.9 * lanes + 2))))
    cmap = plt.get_cmap("viridis")
    nodes = list(g)
    skip = [(u, v) for u, v in g.edges if depth[v] - depth[u] > 1]
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[e for e in g.edges if e not in skip],
                           arrows=True, arrowsize=8, edge_color="#555555", width=1.0,
                           node_size=120)
    if skip:
        nx.draw_networkx_edges(g, pos, ax=ax, edgelist=skip, arrows=True, arrowsize=8,
                               edge_color="tab:orange", width=1.2, node_size=120,
                               connectionstyle="arc3,rad=-0.35")
    drawn = nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_size=120, cmap=cmap,
                                   node_color=[g.nodes[n]["density"] for n in nodes],
                                   vmin=0.0, vmax=1.0)
    step = math.ceil(len(nodes) / 40)
    for n in sorted(nodes, key=order.get)[::step]:
        ax.annotate(label(n), pos[n], xytext=(0, 8), textcoords="offset points", fontsize=6,
                    ha="left", rotation=35)
    fig.colorbar(drawn, ax=ax, label="activation density", shrink=0.7)
    skipped = f"; orange: {len(skip)} skip/residual edges" if skip else ""
    if step > 1:
        skipped += f"; one layer in {step} named"
    ax.set_title(f"{label(info.get('model'))}: layer graph left to right, coloured by activation "
                 f"density{skipped}", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def front_figure(df: pd.DataFrame, front: pd.DataFrame) -> Figure:
    """Latency vs energy of every point (colour = area), the Pareto points ringed and joined
    by the front line (each workload's points on the latency-energy front, in latency order);
    one panel per workload, legends beside the axes. The caller closes the figure."""
    workloads = list(dict.fromkeys(df["workload"]))
    fig, axes = plt.subplots(len(workloads), 1, figsize=(10, 6.5 * len(workloads)),
                             squeeze=False)
    for ax, workload in zip(axes[:, 0], workloads, strict=True):
        g, f = df[df["workload"] == workload], front[front["workload"] == workload]
        area = g["area_mm2"] if g["area_mm2"].notna().any() else None
        sc = ax.scatter(g["latency_s"], g["energy_pj"] * 1e-12, c=area, s=22,
                        cmap=None if area is None else "viridis", label="design points")
        ax.scatter(f["latency_s"], f["energy_pj"] * 1e-12, s=80, facecolors="none",
                   edgecolors="red", label=f"Pareto points ({len(f)})")
        line = two_objective_front(g)
        ax.plot(line["latency_s"], line["energy_pj"] * 1e-12, color="red", linewidth=1,
                drawstyle="steps-post", label="latency-energy front")
        for values, set_scale in ((g["latency_s"], ax.set_xscale), (g["energy_pj"], ax.set_yscale)):
            if values.min() > 0 and values.max() / values.min() > 20:
                set_scale("log")
        si_axis(ax, "s", "x")
        si_axis(ax, "J", "y")
        ax.set_xlabel("latency per pass")
        ax.set_ylabel("energy per pass")
        ax.set_title(label(workload))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.25, 1.0), fontsize=8)
        if area is not None:
            fig.colorbar(sc, ax=ax, label="area (mm²)")
    fig.tight_layout()
    return fig


def two_objective_front(points: pd.DataFrame) -> pd.DataFrame:
    """The points no other point beats on both latency and energy, in latency order."""
    ordered = points.sort_values(["latency_s", "energy_pj"])
    best = math.inf
    keep = []
    for i, energy in zip(ordered.index, ordered["energy_pj"]):
        if energy < best:
            keep.append(i)
            best = energy
    return ordered.loc[keep]


def parameter_effects(df: pd.DataFrame, params: Sequence[str],
                      objectives: Sequence[str] = ("latency_s", "energy_pj", "area_mm2"),
                      ) -> Figure | None:
    """Each swept parameter (rows) against each objective (columns): every point, and the
    median per parameter value joined by a line, one colour per workload."""
    objectives = [o for o in objectives if o in df and df[o].notna().any()]
    params = [p for p in params if p in df and df[p].nunique() > 1]
    if not params or not objectives:
        return None
    fig, axes = plt.subplots(len(params), len(objectives),
                             figsize=(4.2 * len(objectives), 3.2 * len(params)), squeeze=False)
    for i, param in enumerate(params):
        for j, objective in enumerate(objectives):
            ax = axes[i, j]
            q = quantity(objective)
            for workload, g in df.groupby("workload", sort=False):
                values = g[objective] * q.scale
                ax.scatter(g[param], values, s=10, alpha=0.4)
                if g[param].nunique() > PARAMETER_BINS:  # a range: medians of quantile bins
                    bins = pd.qcut(g[param], PARAMETER_BINS, duplicates="drop")
                    median = values.groupby(bins, observed=True).median()
                    centres = g[param].groupby(bins, observed=True).median()
                    ax.plot(centres.to_numpy(), median.to_numpy(), "o-", markersize=3,
                            label=label(workload))
                else:
                    median = values.groupby(g[param]).median()
                    ax.plot(median.index, median.to_numpy(), "o-", markersize=3,
                            label=label(workload))
            if q.notation == "si":
                si_axis(ax, q.unit)
            xs = df[param].to_numpy(dtype=float)
            if xs.min() > 0 and xs.max() / xs.min() > 20:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())
            p = quantity(param)
            if df[param].nunique() <= PARAMETER_BINS:
                ticks = sorted(df[param].unique())
                ax.set_xticks(ticks)
                ax.set_xticklabels([si(float(t) * p.scale, p.unit) if p.notation == "si"
                                    else f"{t:g}" for t in ticks], fontsize=7)
            elif p.notation == "si":
                si_axis(ax, p.unit, "x")
            ax.set_xlabel(label(param))
            ax.set_ylabel(axis_label(objective) if q.notation != "si" else q.label)
            ax.grid(True, alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Each parameter against each objective (dots: points; line: median per value, "
                 f"or per {PARAMETER_BINS} quantile bins of a range)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return fig


PUBLISHED_DECODE = [
    (0.40, 1.53, "TEAL, Llama-2-7B, A100: 1.53x at 40 %"),
    (0.50, 1.80, "TEAL, Llama-2-7B, A100: 1.8x at 50 %"),
    (0.50, 1 / 0.85, "CATS, Llama-2-7B / Mistral-7B: ~15 % less latency, 50 % of MLP inputs"),
]
"""Published single-batch decode speed-ups over dense at a model-level activation sparsity:
Liu et al., ICLR 2025 (TEAL, model-wide sparsity; the 1.53x / 1.8x also fit the GPU model's
activation-sparse kernel); Lee et al., 2024 (CATS, MLP inputs only, so its point sits at its MLP
sparsity)."""


def decode_sweep(sweep: pd.DataFrame) -> Figure:
    """Tokens/s and energy per token against model-level activation sparsity for every
    architecture, and each one's speed-up over its own dense equivalent with the published
    TEAL/CATS points marked."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for arch, g in sweep.groupby("arch", sort=False):
        g = g.sort_values("sparsity")
        axes[0].plot(g["sparsity"], g["tokens_per_s"], "o-", label=label(arch))
        axes[1].plot(g["sparsity"], g["energy_pj_per_token"] * 1e-12, "o-", label=label(arch))
        axes[2].plot(g["sparsity"], g["speedup_vs_dense"], "o-", label=label(arch))
    for sparsity, speedup, text in PUBLISHED_DECODE:
        axes[2].plot([sparsity], [speedup], "k*", markersize=10)
        axes[2].annotate(text, (sparsity, speedup), xytext=(4, 4), textcoords="offset points",
                         fontsize=6)
    axes[2].axhline(1.0, color="black", linewidth=0.8)
    si_axis(axes[1], "J")
    titles = ("decode tokens/s", "energy per token", "speed-up over own dense equivalent")
    for ax, title in zip(axes, titles):
        ax.set_xlabel("activation sparsity of block linear inputs (MAC-weighted)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def all_figures(results: Sequence[RunResult], info: dict,
                sweep: pd.DataFrame | None = None) -> list[tuple[str, str, Figure]]:
    """(id, caption, figure) for every figure the data supports, in report order."""
    figs: list[tuple[str, str, Figure | None]] = [
        ("speedup", "Per-layer speed-up over dense", speedup_per_layer(results)),
        ("scatter", "Activation density vs speed-up, with the ideal 1/density",
         density_scatter(results)),
        ("energy", "Energy by component", energy_breakdown(results)),
        ("roofline", "Per-layer roofline", roofline(results)),
        ("area", "Area by component", area_breakdown(results)),
    ]
    if sweep is not None:
        figs.append(("decode-sweep", "LLM decode: tokens/s and energy per token vs activation "
                     "sparsity, published TEAL/CATS speed-ups marked", decode_sweep(sweep)))
    for i, r in enumerate(results):
        name = str(r.meta.get("arch"))
        figs.append((f"latency-{i}", f"Latency split, compute vs memory stall: {name}",
                     latency_split(r)))
        figs.append((f"layer-energy-{i}", f"Energy per layer by component: {name}",
                     energy_per_layer(r)))
        figs.append((f"breakeven-{i}", f"GPU break-even curves: {name}", gpu_breakeven(r)))
        figs.append((f"neuromorphic-{i}", f"Events and NP use: {name}", neuromorphic_use(r)))
        figs.append((f"uniform-{i}", f"Trace vs uniform density: {name}", trace_vs_uniform(r)))
    figs.append(("graph", "Model graph coloured by activation density", model_graph(info)))
    return [(i, c, f) for i, c, f in figs if f is not None]
