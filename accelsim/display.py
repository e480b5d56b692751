"""What the command line shows people: tables that fit the terminal and progress on stderr.

Tables: every column in one notation (`accelsim.report.units.column_text`: SI-prefixed units,
whole counts, no exponents), numbers never split across lines. When the columns do not fit the
width, they are folded into further tables that repeat the first (key) column; only text
columns (layer names, warnings) may wrap.

Progress: on a terminal a rich bar with the count, elapsed time, time left and the item in
progress; otherwise (piped, CI logs) a plain line on stderr at the start, every
`PROGRESS_INTERVAL_S` seconds (environment variable `ACCELSIM_PROGRESS_INTERVAL_S`) and at the
end.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from accelsim.report.units import column_text, quantity

if TYPE_CHECKING:
    import pandas as pd

TEXT_WIDTH = 28
"""Widest a text column (names, warnings) is drawn before its cells wrap, characters."""
PIPED_WIDTH = 240
"""Table width when stdout is not a terminal and `COLUMNS` is not set, characters."""
PROGRESS_INTERVAL_S = 10.0
"""Seconds between two plain progress lines when stderr is not a terminal."""


def output_width(console: Console) -> int:
    """Characters a table may take on `console`: the terminal's width, else `COLUMNS`, else
    `PIPED_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    if console.is_terminal:
        return console.width
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


def header(column: str) -> str:
    """A column's header as shown: its name with the unit suffix taken off (the cells carry the
    unit): `energy_pj` -> 'energy', `latency_s` -> 'latency', `tokens_per_s` stays."""
    return quantity(column).label


def header_pieces(head: str) -> list[str]:
    """`head` cut after each underscore: where a header may break onto a new line."""
    pieces = [p + "_" for p in head.split("_")]
    pieces[-1] = pieces[-1][:-1]
    return pieces


def wrap_header(head: str, width: int) -> str:
    """`head` broken into lines of at most `width` characters after its underscores (a piece
    longer than `width` stays whole)."""
    lines = [""]
    for piece in header_pieces(head):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


def _cell_width(cells: list[str], numeric: bool) -> int:
    widest = max((len(c) for c in cells), default=1)
    return widest if numeric else min(widest, TEXT_WIDTH)


def _groups(columns: Sequence[str], widths: dict[str, int], width: int) -> list[list[str]]:
    """The columns split into tables that fit `width`, each led by `columns[0]`: a rich table
    of columns w1..wn takes sum(w + 3) + 1 characters."""
    key, rest = columns[0], list(columns[1:])
    groups: list[list[str]] = []
    while rest or not groups:
        group, used = [key], widths[key] + 4
        while rest and (used + widths[rest[0]] + 3 <= width or len(group) == 1):
            used += widths[rest[0]] + 3
            group.append(rest.pop(0))
        groups.append(group)
    return groups


def fit_tables(df: pd.DataFrame, columns: Sequence[str], title: str = "",
               width: int = PIPED_WIDTH) -> list[Table]:
    """`columns` of `df` as rich tables no wider than `width`: headers whole when everything
    fits, else broken after underscores; when the columns still do not fit, more tables that
    repeat `columns[0]` with the columns left over. Titles, headers and cells are escaped (text
    from a trace or an arch file is shown as written, never read as markup)."""
    import pandas as pd

    numeric = {c: pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in columns}
    cells = {c: column_text(c, df[c].tolist()) for c in columns}
    heads = {c: header(c) for c in columns}
    widths = {c: max(_cell_width(cells[c], numeric[c]), len(heads[c])) for c in columns}
    if sum(widths.values()) + 3 * len(columns) + 1 > width:
        widths = {c: max(_cell_width(cells[c], numeric[c]),
                         *(len(p) for p in header_pieces(heads[c]))) for c in columns}
        heads = {c: wrap_header(heads[c], widths[c]) for c in columns}
    groups = _groups(columns, widths, width)
    tables = []
    for i, group in enumerate(groups):
        name = title if i == 0 else f"{title} (continued, {i + 1} of {len(groups)})"
        table = Table(title=escape(name) if title else None, show_lines=False)
        for c in group:
            table.add_column(escape(heads[c]), justify="right" if numeric[c] else "left",
                             min_width=widths[c], max_width=widths[c], overflow="fold")
        for r in range(len(df)):
            table.add_row(*(escape(cells[c][r]) for c in group))
        tables.append(table)
    return tables


def print_table(df: pd.DataFrame, columns: Sequence[str], title: str = "",
                file: TextIO | None = None) -> None:
    """Print `fit_tables` of `df` on stdout (or `file`) at the terminal's width, the title as
    its own lines above (wrapped between words, so never inside a number)."""
    width = output_width(Console(file=file or sys.stdout))
    printer = Console(file=file or sys.stdout, width=width, soft_wrap=False, markup=False,
                      highlight=False)
    tables = fit_tables(df, columns, "", width)
    if title:
        printer.print(title)
    for i, table in enumerate(tables):
        if i:
            printer.print(f"(continued, {i + 1} of {len(tables)})")
        printer.print(table)


class ProgressReport:
    """Progress of one long command on stderr (module docstring): `advance(item)` after each
    unit of work names the item just done; `total` may be set later with `restart`."""

    def __init__(self, description: str, total: int | None, console: Console | None = None,
                 interval_s: float | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.description = description
        self.total = total
        self.done = 0
        self.interval_s = interval_s if interval_s is not None else float(
            os.environ.get("ACCELSIM_PROGRESS_INTERVAL_S", PROGRESS_INTERVAL_S))
        self._bar = None
        self._task = None
        self._start = time.monotonic()
        self._last_line = -float("inf")

    def __enter__(self) -> ProgressReport:
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                TextColumn("{task.fields[item]}"), console=self.console, transient=True)
            self._task = self._bar.add_task(escape(self.description), total=self.total,
                                            item="")
            self._bar.start()
        return self

    def restart(self, total: int, done: int = 0) -> None:
        """Set the total (and the work already done, e.g. a resumed sweep)."""
        self.total, self.done = total, done
        if self._bar is not None:
            self._bar.update(self._task, total=total, completed=done)

    def advance(self, item: str = "", steps: int = 1) -> None:
        """`steps` more units done; `item` names the one in progress (shown beside the bar)."""
        self.done += steps
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, item=escape(item))
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval_s or self.done == self.total:
            self._last_line = now
            self._line(item)

    def _line(self, item: str) -> None:
        elapsed = time.monotonic() - self._start
        count = f"{self.done}" if not self.total else f"{self.done}/{self.total}"
        left = ""
        if self.total and 0 < self.done < self.total:
            left = f", about {elapsed / self.done * (self.total - self.done):.0f} s left"
        now = f" ({item})" if item else ""
        self.console.print(f"{self.description}: {count}{now}, {elapsed:.0f} s elapsed{left}",
                           markup=False, highlight=False, soft_wrap=True)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
