"""PDF report: matplotlib's PdfPages, text pages for the tables and vector figure pages.

Fonts are embedded as TrueType (pdf.fonttype 42) so that all text, tables included, can be
searched and extracted.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from accelsim.report.content import Table
from accelsim.report.figures import label

PAGE_IN = (11.69, 8.27)
"""A4 landscape, inches."""
ROWS_PER_PAGE = 48


def _lines(table: Table, max_width: int = 40) -> list[str]:
    """A table as aligned monospace lines; cells longer than `max_width` are cut with '...'."""
    cells = [[c if len(c) <= max_width else c[:max_width - 3] + "..." for c in row]
             for row in [table.headers, *table.rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(table.headers))]
    out = []
    for k, row in enumerate(cells):
        out.append("  ".join(c.rjust(w) if table.numeric[i] and k else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _text_page(pdf: PdfPages, title: str, lines: list[str], fontsize: float = 7.0) -> None:
    fig = Figure(figsize=PAGE_IN)
    fig.text(0.04, 0.95, label(title), fontsize=13, weight="bold", va="top")
    fig.text(0.04, 0.90, label("\n".join(lines)), family="monospace", fontsize=fontsize, va="top")
    pdf.savefig(fig)


def _table_pages(pdf: PdfPages, title: str, table: Table, fontsize: float = 6.5) -> None:
    lines = _lines(table)
    head, body = lines[:2], lines[2:]
    for start in range(0, max(len(body), 1), ROWS_PER_PAGE):
        suffix = f" ({start // ROWS_PER_PAGE + 1})" if len(body) > ROWS_PER_PAGE else ""
        _text_page(pdf, title + suffix, head + body[start:start + ROWS_PER_PAGE], fontsize)


def write_pdf(path: Path, model: str, batch: int, archs: list[str], summary: Table,
              notes: list[str], layers: Table, provenance: Table,
              figures: list[tuple[str, str, Figure]]) -> Path:
    """Write the report as a multi-page PDF with searchable text and vector figures."""
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        intro = textwrap.wrap(
            f"{len(archs)} architecture(s) on one pass over the trace (batch {batch}). Speed-up "
            "and energy saving are against each architecture's own dense equivalent (same "
            "hardware, sparsity features off). Throughput is passes per second.", 150)
        noted = [line for n in notes for line in textwrap.wrap(f"* {n}", 150)]
        _text_page(pdf, f"accelsim report: {model}",
                   [*intro, "", "Summary", "", *_lines(summary), "", *noted], fontsize=7.5)
        for _fid, _caption, fig in figures:
            pdf.savefig(fig, bbox_inches="tight")
        _table_pages(pdf, "Per-layer results", layers)
        _provenance_page(pdf, provenance)
        info = pdf.infodict()
        info["Title"] = f"accelsim report: {model}"
        info["Creator"] = "accelsim"
    return path


def _provenance_page(pdf: PdfPages, provenance: Table) -> None:
    prov = [line for row in provenance.rows
            for line in textwrap.wrap(f"{row[0]}: {row[1]}", 170, subsequent_indent="    ")]
    _text_page(pdf, "Provenance", prov, fontsize=7.0)


def write_sweep_pdf(path: Path, name: str, base_arch: str, params: list[str], n_points: int,
                    tables: dict[str, Table], top_n: int,
                    figures: list[tuple[str, str, Figure]]) -> Path:
    """A sweep report as a multi-page PDF (searchable text, vector figures); `tables` holds
    best, pareto, top, sensitivity and provenance."""
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        intro = textwrap.wrap(
            f"{n_points} design point result(s) of base arch {base_arch} over {len(params)} "
            f"parameter(s) ({', '.join(params)}). Objectives, all minimised: latency (s), energy "
            "per pass (pJ) and area (mm²). EDP is energy x latency (J·s). Speed-up and energy "
            "saving are against each point's own dense equivalent.", 150)
        _text_page(pdf, f"accelsim sweep report: {name}",
                   [*intro, "", "Best point per objective", "", *_lines(tables["best"])],
                   fontsize=6.5)
        for _fid, _caption, fig in figures:
            pdf.savefig(fig, bbox_inches="tight")
        _table_pages(pdf, "Pareto front", tables["pareto"])
        _table_pages(pdf, f"Top {top_n} points by energy-delay product", tables["top"])
        _table_pages(pdf, "Sensitivity (Spearman rho; swing = effect / mean)",
                     tables["sensitivity"])
        _provenance_page(pdf, tables["provenance"])
        info = pdf.infodict()
        info["Title"] = f"accelsim sweep report: {name}"
        info["Creator"] = "accelsim"
    return path
