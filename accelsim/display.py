"""What the command line shows people: tables that fit the terminal and progress on stderr.

Tables: every column in one notation (`accelsim.report.units.column_text`: SI-prefixed units,
whole counts, no exponents), numbers never split across lines. When the columns do not fit the
width, they are folded into further tables that repeat the first (key) column; only text
columns (layer names, warnings) may wrap.

Schemas: `schema_rows` lists an architecture kind's YAML keys from its pydantic `Config`
(types, defaults, bounds, units and the schema's own docstrings) for `accelsim describe`.

Progress: on a terminal a rich bar with the count, elapsed time, time left and the item in
progress; otherwise (piped, CI logs) a plain line on stderr at the start, every
`PROGRESS_INTERVAL_S` seconds (environment variable `ACCELSIM_PROGRESS_INTERVAL_S`) and at the
end.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from accelsim.report.units import column_text, quantity

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    Columns = pd.DataFrame | Mapping[str, np.ndarray]
    """A table: a DataFrame, or its columns as numpy arrays (`RunResult.columns_with_totals`)."""

TEXT_WIDTH = 28
"""Widest a text column (names, warnings) is drawn before its cells wrap, characters."""
KEY_WIDTH = 40
"""Widest the first (key) column is drawn before its cells wrap, characters."""
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


def _cell_width(cells: list[str], numeric: bool, key: bool = False) -> int:
    widest = max((len(c) for c in cells), default=1)
    return widest if numeric else min(widest, KEY_WIDTH if key else TEXT_WIDTH)


def _groups(columns: Sequence[str], widths: dict[str, int], width: int) -> list[list[str]]:
    """The columns split into as few tables as fit `width`, each led by `columns[0]`, in order,
    with the widest of them as narrow as it can be (a rich table of columns w1..wn takes
    sum(w + 3) + 1 characters)."""
    def greedy(limit: int) -> list[list[str]]:
        key, rest = columns[0], list(columns[1:])
        groups: list[list[str]] = []
        while rest or not groups:
            group, used = [key], widths[key] + 4
            while rest and (used + widths[rest[0]] + 3 <= limit or len(group) == 1):
                used += widths[rest[0]] + 3
                group.append(rest.pop(0))
            groups.append(group)
        return groups

    groups = greedy(width)
    rest = list(columns[1:])
    if 1 < len(groups) <= 4 and len(rest) <= 24:  # as many tables, the widest as narrow as can be
        def used(part: Sequence[str]) -> int:
            return widths[columns[0]] + 4 + sum(widths[c] + 3 for c in part)

        best = max(used(g[1:]) for g in groups)
        for cuts in itertools.combinations(range(1, len(rest)), len(groups) - 1):
            parts = [rest[a:b] for a, b in zip((0, *cuts), (*cuts, len(rest)))]
            widest = max(used(part) for part in parts)
            if widest < best:
                best, groups = widest, [[columns[0], *part] for part in parts]
    return groups


def _column(df: Columns, column: str) -> tuple[list, bool]:
    """A table column's values (Python objects) and whether it holds numbers (not booleans)."""
    if isinstance(df, Mapping):
        values = df[column]
        return values.tolist(), values.dtype.kind in "iufc"
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(df[column]) and not pd.api.types.is_bool_dtype(
        df[column])
    return df[column].tolist(), numeric


def fit_tables(df: Columns, columns: Sequence[str], title: str = "",
               width: int = PIPED_WIDTH) -> list[Table]:
    """`columns` of `df` as rich tables no wider than `width`: headers whole when everything
    fits, else broken after underscores; when the columns still do not fit, more tables that
    repeat `columns[0]` with the columns left over. Titles, headers and cells are plain `Text`
    (text from a trace or an arch file is shown as written, never read as markup, on any
    console)."""
    read = {c: _column(df, c) for c in columns}
    numeric = {c: read[c][1] for c in columns}
    cells = {c: column_text(c, read[c][0]) for c in columns}
    heads = {c: header(c) for c in columns}
    key = columns[0]
    widths = {c: max(_cell_width(cells[c], numeric[c], c == key), len(heads[c]))
              for c in columns}
    if sum(widths.values()) + 3 * len(columns) + 1 > width:
        widths = {c: max(_cell_width(cells[c], numeric[c], c == key),
                         *(len(p) for p in header_pieces(heads[c]))) for c in columns}
        heads = {c: wrap_header(heads[c], widths[c]) for c in columns}
    groups = _groups(columns, widths, width)
    tables = []
    for i, group in enumerate(groups):
        name = title if i == 0 else f"{title} (continued, {i + 1} of {len(groups)})"
        table = Table(title=Text(name) if title else None, show_lines=False)
        for c in group:
            table.add_column(Text(heads[c]), justify="right" if numeric[c] else "left",
                             min_width=widths[c], max_width=widths[c], overflow="fold")
        for r in range(len(cells[key])):
            table.add_row(*(Text(cells[c][r]) for c in group))
        tables.append(table)
    return tables


def print_table(df: Columns, columns: Sequence[str], title: str = "",
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


UNIT_SUFFIXES = (
    ("_bytes_per_cycle", "bytes/cycle"), ("_pj_per_byte", "pJ/byte"), ("_pj_per_bit", "pJ/bit"),
    ("_per_cycle", "per cycle"), ("_mhz", "MHz"), ("_ghz", "GHz"), ("_bytes", "bytes"),
    ("_bits", "bits"), ("_pj", "pJ"), ("_mw", "mW"), ("_w", "W"), ("_nm", "nm"), ("_s", "s"),
    ("_us", "us"), ("_mm2", "mm²"), ("_fraction", "share, 0..1"), ("_gbps", "GB/s"),
    ("_tflops", "TFLOP/s"),
)
"""Field-name endings and the unit they mean (the schemas put units in field names)."""


@dataclass(frozen=True)
class FieldRow:
    """One YAML key of an architecture kind: `key` (dotted path; `[]` marks a list item and
    `[dataflow=x]` the variant a key belongs to), `type`, `default` ('required' when there is
    none), `bounds`, `unit` and `doc` (the schema's own words)."""

    key: str
    type: str
    default: str
    bounds: str
    unit: str
    doc: str


def _attribute_docs(model: type) -> dict[str, str]:
    """The docstrings written under each field of `model` and its bases (first paragraph)."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not hasattr(cls, "model_fields") or cls.__module__.startswith("pydantic"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split("\n\n")[0].split())
    return docs


def _type_name(annotation: object) -> str:
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin in (tuple, list):
        inner = args[0] if args else object
        return f"list of {_type_name(inner)}"
    if origin is dict:
        return f"mapping {_type_name(args[0])} -> {_type_name(args[1])}"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(metadata: Sequence[object]) -> str:
    signs = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("max_length", "items <="),
             ("min_length", "items >="), ("pattern", "matches"))
    out = []
    for item in metadata:
        for attr, sign in signs:
            value = getattr(item, attr, None)
            if value is not None:
                out.append(f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}")
    return ", ".join(out)


def _unit(name: str) -> str:
    return next((unit for ending, unit in UNIT_SUFFIXES if name.endswith(ending)), "")


def _models_in(annotation: object) -> list[type]:
    """The pydantic models a field holds (itself, list items or union variants)."""
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def schema_rows(model: type, prefix: str = "") -> list[FieldRow]:
    """Every key of the pydantic `model` (an architecture kind's `Config`), nested models
    flattened into dotted keys, with what the schema says of each."""
    import typing

    from pydantic_core import PydanticUndefined

    docs = _attribute_docs(model)
    rows = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        nested = _models_in(field.annotation)
        is_list = typing.get_origin(field.annotation) in (tuple, list)
        if field.is_required():
            default = "required"
        elif field.default is PydanticUndefined:
            default = "(empty)"
        elif nested and not is_list and len(nested) == 1:
            default = "(see below)"
        else:
            value = field.default
            default = ("(empty)" if value in ((), [], {}, "") else "none" if value is None
                       else str(value))
        disc = field.discriminator if isinstance(field.discriminator, str) else None
        doc = docs.get(name, "")
        if disc is not None and not doc:
            doc = f"one of {len(nested)} variants, chosen by its `{disc}` key"
        elif len(nested) == 1 and not doc:
            doc = " ".join((nested[0].__doc__ or "").split("\n\n")[0].split())
        rows.append(FieldRow(key, _type_name(field.annotation), default,
                             _bounds(field.metadata), _unit(name), doc))
        for sub in nested:
            if disc is not None:
                tag = typing.get_args(sub.model_fields[disc].annotation)[0]
                inner = f"{key}[{disc}={tag}]."
            else:
                inner = f"{key}[]." if is_list else f"{key}."
            rows += [r for r in schema_rows(sub, inner) if r.key != inner + (disc or "")]
    return rows
