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
from matplotlib.figure import Figure  # noqa: E402

from accelsim.results import RunResult  # noqa: E402

BREAKEVEN_LAYERS = 6
"""Break-even curves drawn per GPU: the layers with the longest dense time."""


def label(text: object) -> str:
    """A user-provided string made literal for matplotlib: no mathtext from '$', and a
    leading '_' (which would hide it from legends) kept visible behind a space."""
    text = str(text).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


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


def speedup_per_layer(results: Sequence[RunResult]) -> Figure:
    """Grouped bars: each layer's speed-up over dense, one colour per architecture."""
    layers = list(results[0].layers["layer"].astype(str))
    fig, ax = plt.subplots(figsize=(_width(len(layers)), 4))
    width = 0.8 / len(results)
    x = np.arange(len(layers))
    for i, (r, name) in enumerate(zip(results, _names(results))):
        ax.bar(x + (i - (len(results) - 1) / 2) * width, r.layers["speedup_vs_dense"], width,
               label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    _layer_axis(ax, layers)
    _log_if_wide(ax, [r.layers["speedup_vs_dense"] for r in results])
    ax.set_ylabel("speed-up over dense (x)")
    ax.set_title("Per-layer speed-up over each architecture's dense equivalent")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def energy_breakdown(results: Sequence[RunResult]) -> Figure:
    """Stacked bars: whole-workload energy per component (uJ), one bar per architecture."""
    totals = []
    for r in results:
        cols = [c for c in r.layers.columns if c.startswith("energy_") and c.endswith("_pj")
                and c != "energy_pj"]
        totals.append({c[7:-3]: float(r.layers[c].fillna(0).sum()) * 1e-6 for c in cols})
    components = sorted({c for t in totals for c in t})
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(results) + 3), 4))
    bottom = np.zeros(len(results))
    tab20 = plt.get_cmap("tab20")
    colours = [tab20(i) for i in range(0, 20, 2)] + [tab20(i) for i in range(1, 20, 2)]
    for j, comp in enumerate(components):
        values = np.array([t.get(comp, 0.0) for t in totals])
        ax.bar(range(len(results)), values, 0.6, bottom=bottom, label=label(comp),
               color=colours[j % len(colours)])
        bottom += values
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels(_names(results), fontsize=8)
    ax.set_ylabel("energy per pass (µJ)")
    ax.set_title("Energy by component")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def density_scatter(results: Sequence[RunResult]) -> Figure:
    """Each layer's activation density against its speed-up, one colour per architecture."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r, name in zip(results, _names(results)):
        ax.scatter(r.layers["act_density"], r.layers["speedup_vs_dense"], s=18, alpha=0.8,
                   label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    _log_if_wide(ax, [r.layers["speedup_vs_dense"] for r in results])
    ax.set_xlabel("activation density (non-zeros / elements)")
    ax.set_ylabel("speed-up over dense (x)")
    ax.set_title("Density vs speed-up per layer")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
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
    ax.set_title(f"{label(result.meta.get('arch'))}: break-even curves, dots at each layer's "
                 "measured density")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
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
        _layer_axis(ax, layers)
    axes[0, 0].set_title(f"{label(result.meta.get('arch'))}: events and neural-processor use")
    fig.tight_layout()
    return fig


def trace_vs_uniform(result: RunResult) -> Figure | None:
    """Cycles with the traced zero pattern vs the same density spread uniformly."""
    if "cycles_if_uniform" not in result.layers:
        return None
    layers = list(result.layers["layer"].astype(str))
    fig, ax = plt.subplots(figsize=(_width(len(layers)), 4))
    x = np.arange(len(layers))
    ax.bar(x - 0.2, result.layers["cycles"], 0.4, label="traced zeros")
    ax.bar(x + 0.2, result.layers["cycles_if_uniform"], 0.4, label="uniform at same density")
    _layer_axis(ax, layers)
    ax.set_yscale("log")
    ax.set_ylabel("cycles")
    ax.set_title(f"{label(result.meta.get('arch'))}: trace vs uniform-density cycles")
    ax.legend(fontsize=8)
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
    pos = {n: (i - (len(ns) - 1) / 2, -d) for d, ns in rows.items() for i, n in enumerate(ns)}
    height = min(14.0, max(3.0, 0.35 * len(rows)))
    fig, ax = plt.subplots(figsize=(7, height))
    cmap = plt.get_cmap("viridis")
    nodes = list(g)
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=8, edge_color="#888888",
                           width=0.8, node_size=120)
    drawn = nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_size=120, cmap=cmap,
                                   node_color=[g.nodes[n]["density"] for n in nodes],
                                   vmin=0.0, vmax=1.0)
    if len(nodes) <= 60:
        for n in nodes:
            ax.annotate(label(n), pos[n], xytext=(7, 0), textcoords="offset points", fontsize=7,
                        va="center")
    fig.colorbar(drawn, ax=ax, label="activation density", shrink=0.7)
    ax.set_title(f"{label(info.get('model'))}: layer graph coloured by activation density")
    ax.axis("off")
    fig.tight_layout()
    return fig


def front_figure(df: pd.DataFrame, front: pd.DataFrame) -> Figure:
    """Latency vs energy of every point (colour = area), the Pareto points ringed; one panel
    per workload. The caller closes the figure."""
    workloads = list(dict.fromkeys(df["workload"]))
    fig, axes = plt.subplots(1, len(workloads), figsize=(5.5 * len(workloads), 4.5),
                             squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        g, f = df[df["workload"] == workload], front[front["workload"] == workload]
        sc = ax.scatter(g["latency_s"] * 1e3, g["energy_pj"] * 1e-6, c=g["area_mm2"], s=14,
                        cmap="viridis")
        ax.scatter(f["latency_s"] * 1e3, f["energy_pj"] * 1e-6, s=60, facecolors="none",
                   edgecolors="red", label=f"Pareto ({len(f)})")
        for values, set_scale in ((g["latency_s"], ax.set_xscale), (g["energy_pj"], ax.set_yscale)):
            if values.min() > 0 and values.max() / values.min() > 20:
                set_scale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("energy (uJ)")
        ax.set_title(str(workload).replace("$", r"\$"))  # no mathtext from names
        ax.legend(loc="best")
        fig.colorbar(sc, ax=ax, label="area (mm^2)")
    fig.tight_layout()
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
        axes[1].plot(g["sparsity"], g["energy_pj_per_token"] * 1e-6, "o-", label=label(arch))
        axes[2].plot(g["sparsity"], g["speedup_vs_dense"], "o-", label=label(arch))
    for sparsity, speedup, text in PUBLISHED_DECODE:
        axes[2].plot([sparsity], [speedup], "k*", markersize=10)
        axes[2].annotate(text, (sparsity, speedup), xytext=(4, 4), textcoords="offset points",
                         fontsize=6)
    axes[2].axhline(1.0, color="black", linewidth=0.8)
    titles = ("decode tokens/s", "energy per token (µJ)", "speed-up over own dense equivalent")
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
        ("energy", "Energy breakdown per component", energy_breakdown(results)),
        ("scatter", "Activation density vs speed-up", density_scatter(results)),
    ]
    for i, r in enumerate(results):
        name = str(r.meta.get("arch"))
        figs.append((f"breakeven-{i}", f"GPU break-even curves: {name}", gpu_breakeven(r)))
        figs.append((f"neuromorphic-{i}", f"Events and NP use: {name}", neuromorphic_use(r)))
        figs.append((f"uniform-{i}", f"Trace vs uniform density: {name}", trace_vs_uniform(r)))
    if sweep is not None:
        figs.insert(3, ("decode-sweep", "LLM decode: tokens/s and energy per token vs activation "
                        "sparsity, published TEAL/CATS speed-ups marked", decode_sweep(sweep)))
    figs.append(("graph", "Model graph coloured by activation density", model_graph(info)))
    return [(i, c, f) for i, c, f in figs if f is not None]
