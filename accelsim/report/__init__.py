"""Comparison reports (HTML, PDF) rebuilt from a saved `accelsim compare` folder."""

from __future__ import annotations

from pathlib import Path

from accelsim.errors import AccelsimError

FORMATS = (".html", ".htm", ".pdf")


def write_report(results_dir: str | Path, output: str | Path) -> Path:
    """Write an HTML or PDF report (by `output`'s suffix) from saved results only."""
    import matplotlib.pyplot as plt

    from accelsim.compare import load_compare
    from accelsim.report import content, figures

    out = Path(output)
    if out.suffix.lower() not in FORMATS:
        raise AccelsimError(f"{out}: unknown report format '{out.suffix}'; name the report "
                            "*.html or *.pdf.")
    results, info = load_compare(results_dir)
    archs = [str(r.meta.get("arch")) for r in results]
    args = dict(model=str(info.get("model")), batch=int(info.get("batch") or 1), archs=archs,
                summary=content.summary(results), layers=content.per_layer(results),
                provenance=content.provenance(results, info))
    figs = figures.all_figures(results, info)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if out.suffix.lower() == ".pdf":
            from accelsim.report.pdf import write_pdf

            write_pdf(out, figures=figs, **args)
        else:
            from accelsim.report.html import render_html

            out.write_text(render_html(figures=figs, **args), encoding="utf-8")
    finally:
        for _fid, _caption, fig in figs:
            plt.close(fig)
    return out
