"""Validate a mapping against an architecture schema: pydantic's errors become one `ArchError`
paragraph naming the source, the key path and what is allowed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from accelsim.arch.schema import ArchBase
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
        problems = "; ".join(_describe(e, kinds) for e in exc.errors()[:6])
        raise ArchError(f"{source}: invalid architecture description: {problems}.") from None
    load_tech_table(arch.tech.table)
    return arch


def _describe(err: dict, kinds: Sequence[str]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p in kinds))
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
    where = f"'{loc}': " if loc else ""
    value = err.get("input")
    if isinstance(value, (dict, list, tuple)):
        return f"{where}{err['msg']}"
    shown = repr(value)
    return f"{where}{err['msg']} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
