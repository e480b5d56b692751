"""Load architecture YAML into the pydantic model of its `kind`, with errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import Field, TypeAdapter, ValidationError

from accelsim.arch.schema import ArchBase
from accelsim.arch.tech import load_tech_table
from accelsim.errors import ArchError


def _adapter() -> TypeAdapter:
    from accelsim.engines.registry import ENGINES

    configs = tuple(engine.Config for engine in ENGINES.values())
    return TypeAdapter(Annotated[Union[configs], Field(discriminator="kind")])  # noqa: UP007


def _describe(err: dict) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p in _kinds()))
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
        return f"unknown kind {err['input'].get('kind')!r}; known kinds: {', '.join(_kinds())}"
    if kind == "union_tag_not_found":
        return f"missing 'kind'; known kinds: {', '.join(_kinds())}"
    where = f"'{loc}': " if loc else ""
    value = err.get("input")
    if isinstance(value, (dict, list, tuple)):
        return f"{where}{err['msg']}"
    shown = repr(value)
    return f"{where}{err['msg']} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"


def _kinds() -> list[str]:
    from accelsim.engines.registry import ENGINES

    return list(ENGINES)


def parse_arch(data: Any, source: str = "<arch>") -> ArchBase:
    """Validate a mapping as an architecture description."""
    if not isinstance(data, dict):
        raise ArchError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}.")
    try:
        arch = _adapter().validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors()[:6])
        raise ArchError(f"{source}: invalid architecture description: {problems}.") from None
    load_tech_table(arch.tech.table)
    return arch


def load_arch(path: str | Path) -> ArchBase:
    """Load an architecture YAML file (safe loader) and validate it."""
    p = Path(path)
    if not p.is_file():
        raise ArchError(f"{path}: no such architecture file. Check the path.")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ArchError(f"{path}: not valid YAML ({exc}). Fix the syntax at the position shown.") from None
    return parse_arch(data, str(path))
