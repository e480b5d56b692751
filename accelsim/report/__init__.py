"""Reports (HTML, PDF) rebuilt from a saved `accelsim compare` or `accelsim sweep` folder."""

from __future__ import annotations

from pathlib import Path

from accelsim.errors import AccelsimError

FORMATS = (".html", ".htm", ".pdf")


def check_output(output: str | Path) -> Path:
    """`output` as a report path, refused unless its suffix names HTML or PDF."""
    out = Path(output)
    if out.suffix.lower() not in FORMATS:
        raise AccelsimError(f"{out}: unknown report format '{out.suffix}'; name the report "
                            "*.html or *.pdf.")
    return out


def write_report(results_dir: str | Path, output: str | Path) -> Path:
    """Write an HTML or PDF report (by `output`'s suffix) from saved results only: a sweep
    report when `results_dir` holds a sweep manifest (`sweep.json`), else a comparison."""
    import matplotlib
    import matplotlib.pyplot as plt

    from accelsim.report.sweep import read_manifest

    out = check_output(output)
    manifest = read_manifest(Path(results_dir))
    # every figure stays open until the file is written, then all are closed (below)
    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        if manifest is not None:
            args, figs, kind = _sweep_args(Path(results_dir), manifest)
        else:
            args, figs, kind = _compare_args(results_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if out.suffix.lower() == ".pdf":
            from accelsim.report import pdf

            writer = pdf.write_sweep_pdf if kind == "sweep" else pdf.write_pdf
            writer(out, **args)
        else:
            from accelsim.report import html

            render = html.render_sweep_html if kind == "sweep" else html.render_html
            out.write_text(render(**args), encoding="utf-8")
    finally:
        for _fid, _caption, fig in figs:
            plt.close(fig)
    return out


def _compare_args(results_dir: str | Path) -> tuple[dict, list, str]:
    """The renderers' arguments for a compare folder of one workload or several (one section
    each, and a summary across them), and every figure drawn (to close)."""
    from accelsim.report import content, figures
    from accelsim.results import load_comparison, load_decode_sweep

    parts = load_comparison(results_dir)
    several = len(parts) > 1
    sections, figs, runs = [], [], []
    for results, info in parts:
        drawn = figures.all_figures(results, info,
                                    None if several else load_decode_sweep(results_dir))
        sections.append(dict(model=str(info.get("model")), batch=int(info.get("batch") or 1),
                             summary=content.summary(results), notes=content.notes(results),
                             layers=content.per_layer(results),
                             provenance=content.provenance(results, info), figures=drawn))
        figs += drawn
        runs += results
    archs = list(dict.fromkeys(str(r.meta.get("arch")) for r in runs))
    model = " + ".join(s["model"] for s in sections)
    args = dict(model=model, archs=archs, sections=sections,
                overall=content.summary(runs, by_workload=True) if several else None)
    return args, figs, "compare"


def _sweep_args(folder: Path, manifest: dict) -> tuple[dict, list, str]:
    from accelsim.report import sweep
    from accelsim.report.figures import front_figure, parameter_effects

    data = sweep.load_sweep_folder(folder, manifest)
    tables = {"best": sweep.best(data), "pareto": sweep.pareto(data),
              "top": sweep.top_points(data), "sensitivity": sweep.sensitivity(data),
              "provenance": sweep.provenance(data)}
    args = dict(name=data.name, base_arch=str(manifest.get("base_arch")), params=data.params,
                n_points=len(data.points), tables=tables, top_n=sweep.TOP_N)
    figs = [("pareto", "Pareto front: latency vs energy per pass, colour = area",
             front_figure(data.points, data.pareto))]
    effects = parameter_effects(data.points, data.params)
    if effects is not None:
        figs.append(("parameters", "Each swept parameter against latency, energy and area",
                     effects))
    return {**args, "figures": figs}, figs, "sweep"
