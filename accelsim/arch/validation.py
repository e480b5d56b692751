"""Validate a mapping against an architecture schema: pydantic's errors become one `ArchError`
paragraph naming the source, the key path and what is allowed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from accelsim.arch.schema import BOOL_FOR_NUMBER, ArchBase
from accelsim.arch.tech import load_tech_table
from accelsim.errors import ArchError

Arch = TypeVar("Arch", bound=ArchBase)


def validate(schema: type[Arch] | TypeAdapter, data: Any, source: str,
             kinds: Sequence[str] = ()) -> Arch:
    """`data` validated as `schema` (one kind's `Config`, or a union discriminated on `kind`
    whose tags are `kinds`), with its tech table checked to exist."""
    if not isinstance(data, dict):
        raise ArchError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}.")
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            arch = schema.model_validate(data)
        else:
            arch = schema.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, kinds, data) for e in exc.errors()[:6])
        raise ArchError(f"{source}: invalid architecture description: {problems}.") from None
    _check_priced(arch, source)
    return arch


def _check_priced(arch: ArchBase, source: str) -> None:
    """Refuse what the arch's tech table cannot price, naming the key: a DRAM type it has no
    energy for, a number format without add and multiply entries."""
    try:
        table = load_tech_table(arch.tech.table)
    except ArchError as exc:
        raise ArchError(f"{source}: 'tech.table': {exc}") from None
    dram = table.energy_pj["dram_per_bit"]
    for i, level in enumerate(arch.memory):
        if level.kind == "dram" and level.dram_type is not None and level.dram_type not in dram:
            raise ArchError(
                f"{source}: 'memory.{i}.dram_type' {level.dram_type[:40]!r} has no energy in tech "
                f"table {table.path} (energy_pj.dram_per_bit knows {sorted(dram)}). Use a known "
                "type, or add it to the table with its source.")
    fmt = arch.precision.number_format
    for op in ("add", "mult"):
        if not any(k.startswith(fmt) and k[len(fmt):].isdigit() for k in table.energy_pj[op]):
            raise ArchError(
                f"{source}: 'precision.number_format' {fmt!r}: tech table {table.path} has no "
                f"'{op}' entries for it (keys such as '{fmt}8'). Add them with their source, or "
                "use a format the table has.")


def key_path(loc: tuple, data: Any, keep_last: bool = True) -> str:
    """The dotted key path, as written in the file, of a pydantic error location: the tags
    pydantic adds for a tagged union (`kind`, `dataflow`, a kernel's `type`) are the parts not
    found in the data, and are left out (with `keep_last`, the last part is kept: a missing
    key)."""
    parts, node = [], data
    for i, part in enumerate(loc):
        found = (isinstance(node, dict) and part in node) or (
            isinstance(node, (list, tuple)) and isinstance(part, int) and 0 <= part < len(node))
        if found:
            node = node[part]
        elif not keep_last or i < len(loc) - 1:
            continue
        parts.append(str(part))
    return ".".join(parts)


def _describe(err: dict, kinds: Sequence[str], data: Any) -> str:
    loc = key_path(tuple(p for p in err["loc"] if not (isinstance(p, str) and p in kinds)), data,
                   keep_last=err["type"] != BOOL_FOR_NUMBER)
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{loc}' (check its spelling; see the kind's documented fields)"
    if kind == "missing":
        return f"missing required key '{loc}'"
    if kind == "union_tag_invalid" and loc:
        ctx = err["ctx"]
        return (f"'{loc}': unknown {ctx['discriminator']} {ctx['tag']!r}; "
                f"allowed: {ctx['expected_tags']}")
    if kind == "union_tag_invalid":
        return f"unknown kind {err['input'].get('kind')!r}; known kinds: {', '.join(kinds)}"
    if kind == "union_tag_not_found":
        return f"missing 'kind'; known kinds: {', '.join(kinds)}"
    if kind == BOOL_FOR_NUMBER:
        key = ".".join(p for p in (loc, err["ctx"]["key"]) if p)
        return f"'{key}' is a boolean where a number is expected; write the number"
    where = f"'{loc}': " if loc else ""
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, (dict, list, tuple)):
        return f"{where}{msg}"
    shown = repr(value)
    return f"{where}{msg} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
