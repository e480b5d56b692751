"""Self-contained HTML report: jinja2 template (autoescaped), figures inline as SVG."""

from __future__ import annotations

import io
import math
import re

import jinja2
import matplotlib
from matplotlib.figure import Figure

from accelsim.report.content import Table

SVG_START = re.compile(r"<svg\b")


def figure_svg(fig: Figure) -> str:
    """The figure as an inline <svg> element (text kept as text, escaped by matplotlib)."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "accelsim"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[SVG_START.search(text).start():]


def _sort_key(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if not math.isnan(float(value)) else None
    return None


def _cells(table: Table) -> list[list[tuple[str, float | None]]]:
    """(display text, numeric sort key or None) for every cell of `table`."""
    return [[(text, _sort_key(raw) if numeric else None)
             for text, raw, numeric in zip(row, raws, table.numeric)]
            for row, raws in zip(table.rows, table.raw)]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("accelsim.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
    )


def _figures(figures: list[tuple[str, str, Figure]]) -> list[dict[str, str]]:
    return [{"id": fid, "caption": caption, "svg": figure_svg(fig)} for fid, caption, fig in figures]


def render_html(model: str, archs: list[str], sections: list[dict],
                overall: Table | None = None) -> str:
    """The whole comparison report as one HTML string; every user-provided string is escaped.
    `sections`: one per workload, each with `model`, `batch`, `summary`, `notes`, `layers`,
    `provenance` and `figures` ((id, caption, figure) triples); `overall`, when several
    workloads were compared, the summary of every (workload, arch)."""
    shown = [{**s, "prefix": f"w{i + 1}-" if overall is not None else "",
              "layer_cells": _cells(s["layers"]), "figures": _figures(s["figures"])}
             for i, s in enumerate(sections)]
    return _environment().get_template("report.html.j2").render(
        model=model, archs=archs, sections=shown, overall=overall)


def render_sweep_html(name: str, base_arch: str, params: list[str], n_points: int,
                      tables: dict[str, Table], top_n: int,
                      figures: list[tuple[str, str, Figure]]) -> str:
    """A sweep report as one HTML string. `tables` holds best, pareto, top, sensitivity and
    provenance; every user-provided string is escaped."""
    shown = {key: {"headers": t.headers, "numeric": t.numeric, "cells": _cells(t)}
             for key, t in tables.items() if key != "provenance"}
    return _environment().get_template("sweep.html.j2").render(
        name=name, base_arch=base_arch, params=params, n_points=n_points, top_n=top_n,
        provenance=tables["provenance"], figures=_figures(figures), **shown)
