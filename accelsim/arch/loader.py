"""Read an architecture YAML file with a safe loader; which schema it is checked against is the
caller's (`accelsim.kinds.load_arch` knows every kind)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from accelsim.errors import ArchError


def read_arch_yaml(path: str | Path) -> Any:
    """The parsed contents of an architecture YAML file."""
    p = Path(path)
    if not p.is_file():
        raise ArchError(f"{path}: no such architecture file. Check the path.")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ArchError(f"{path}: not valid YAML ({exc}). Fix the syntax at the position shown.") from None
