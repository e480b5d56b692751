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


def render_html(model: str, batch: int, archs: list[str], summary: Table, layers: Table,
                provenance: Table, figures: list[tuple[str, str, Figure]]) -> str:
    """The whole report as one HTML string; every user-provided string is escaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("accelsim.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
    )
    cells = [[(text, _sort_key(raw) if numeric else None)
              for text, raw, numeric in zip(row, raws, layers.numeric)]
             for row, raws in zip(layers.rows, layers.raw)]
    figs = [{"id": fid, "caption": caption, "svg": figure_svg(fig)} for fid, caption, fig in figures]
    return env.get_template("report.html.j2").render(
        model=model, batch=batch, archs=archs, summary=summary, layers=layers, layer_cells=cells,
        provenance=provenance, figures=figs)
