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
"""Every page: A4 landscape, inches (figures are laid out again at this size)."""
TABLE_PT = 8.0
"""Font size of table pages, points."""
ROWS_PER_PAGE = 44
"""Table rows on one page at `TABLE_PT`."""
CHARS_PER_LINE = 165
"""Monospace characters across one page at `TABLE_PT` (the rest of a wide table goes on
further pages that repeat the key columns)."""


def _cut(cell: str, max_width: int) -> str:
    return cell if len(cell) <= max_width else cell[:max_width - 3] + "..."


def _lines(table: Table, max_width: int = 40, columns: list[int] | None = None) -> list[str]:
    """A table (its `columns`, default all) as aligned monospace lines; cells longer than
    `max_width` are cut with '...'."""
    picked = columns if columns is not None else list(range(len(table.headers)))
    cells = [[_cut(row[i], max_width) for i in picked] for row in [table.headers, *table.rows]]
    widths = [max(len(r[j]) for r in cells) for j in range(len(picked))]
    out = []
    for k, row in enumerate(cells):
        out.append("  ".join(c.rjust(w) if table.numeric[picked[j]] and k else c.ljust(w)
                             for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def column_groups(table: Table, keys: int, max_width: int = 40,
                  line: int = CHARS_PER_LINE) -> list[list[int]]:
    """The table's columns split into groups whose lines fit `line` characters, each group led
    by the first `keys` columns (e.g. architecture and layer)."""
    width = [max(len(_cut(r[i], max_width)) for r in [table.headers, *table.rows]) + 2
             for i in range(len(table.headers))]
    lead = list(range(min(keys, len(width))))
    groups, group = [], list(lead)
    for i in range(len(lead), len(width)):
        if len(group) > len(lead) and sum(width[j] for j in group) + width[i] > line:
            groups.append(group)
            group = list(lead)
        group.append(i)
    groups.append(group)
    return groups


def _text_page(pdf: PdfPages, title: str, lines: list[str], fontsize: float = TABLE_PT) -> None:
    fig = Figure(figsize=PAGE_IN)
    fig.text(0.04, 0.95, label(title), fontsize=13, weight="bold", va="top")
    fig.text(0.04, 0.90, label("\n".join(lines)), family="monospace", fontsize=fontsize, va="top")
    pdf.savefig(fig)


def _table_pages(pdf: PdfPages, title: str, table: Table, keys: int = 1) -> None:
    """`table` on as many pages as it needs: `ROWS_PER_PAGE` rows a page and, when wider than
    a page, its columns in groups that repeat the first `keys` columns."""
    groups = column_groups(table, keys)
    pages = [(g, start) for g in groups
             for start in range(0, max(len(table.rows), 1), ROWS_PER_PAGE)]
    for n, (group, start) in enumerate(pages, 1):
        lines = _lines(table, columns=group)
        suffix = f" ({n} of {len(pages)})" if len(pages) > 1 else ""
        _text_page(pdf, title + suffix, lines[:2] + lines[2 + start:2 + start + ROWS_PER_PAGE])


def _figure_page(pdf: PdfPages, caption: str, fig: Figure) -> None:
    """`fig` laid out again on an A4 landscape page under the heading `caption`."""
    fig.set_size_inches(*PAGE_IN)
    fig.suptitle(label(caption), fontsize=13, weight="bold", x=0.04, ha="left")
    fig.tight_layout(rect=(0.02, 0.02, 0.98, 0.93))
    pdf.savefig(fig)


def write_pdf(path: Path, model: str, archs: list[str], sections: list[dict],
              overall: Table | None = None) -> Path:
    """Write the comparison report (arguments as `accelsim.report.html.render_html`) as PDF
    pages of one size, A4 landscape: a heading on every page, searchable text, vector
    figures, long and wide tables split over pages."""
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        intro = textwrap.wrap(
            f"{len(archs)} architecture(s) on one pass over each trace. Speed-up and energy "
            "saving are against each architecture's own dense equivalent (same hardware, "
            "sparsity features off). Throughput is passes per second.", 150)
        if overall is not None:
            _text_page(pdf, f"accelsim report: {model}",
                       [*intro, "", "Summary across workloads", "", *_lines(overall)])
        for s in sections:
            noted = [line for n in s["notes"] for line in textwrap.wrap(f"* {n}", 150)]
            head = (f"accelsim report: {s['model']}" if overall is None
                    else f"Workload: {s['model']}")
            _text_page(pdf, head, [*(intro if overall is None else []), "",
                                   f"Summary (batch {s['batch']})", "", *_lines(s["summary"]),
                                   "", *noted])
            for _fid, caption, fig in s["figures"]:
                _figure_page(pdf, caption if overall is None else f"{s['model']}: {caption}",
                             fig)
            _table_pages(pdf, f"Per-layer results: {s['model']}", s["layers"], keys=2)
            _provenance_page(pdf, s["provenance"])
        info = pdf.infodict()
        info["Title"] = f"accelsim report: {model}"
        info["Creator"] = "accelsim"
    return path


def _provenance_page(pdf: PdfPages, provenance: Table) -> None:
    prov = [line for row in provenance.rows
            for line in textwrap.wrap(f"{row[0]}: {row[1]}", 150, subsequent_indent="    ")]
    _text_page(pdf, "Provenance", prov)


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
        _text_page(pdf, f"accelsim sweep report: {name}", [*intro, ""])
        _table_pages(pdf, "Best point per objective", tables["best"])
        for _fid, caption, fig in figures:
            _figure_page(pdf, caption, fig)
        _table_pages(pdf, "Pareto front", tables["pareto"])
        _table_pages(pdf, f"Top {top_n} points by energy-delay product", tables["top"])
        _table_pages(pdf, "Sensitivity (Spearman rho; swing = effect / mean)",
                     tables["sensitivity"])
        _provenance_page(pdf, tables["provenance"])
        info = pdf.infodict()
        info["Title"] = f"accelsim sweep report: {name}"
        info["Creator"] = "accelsim"
    return path
