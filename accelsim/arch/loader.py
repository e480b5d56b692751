"""Read an architecture YAML file with a safe loader; which schema it is checked against is the
caller's (`accelsim.kinds.load_arch` knows every kind).

`read_yaml` is the one way accelsim reads a YAML file (architectures, tech tables, sweeps): the
safe loader, on the file's bytes (UTF-8, or UTF-16/32 with a byte-order mark, as YAML allows),
at most `MAX_YAML_BYTES`, with every way the parser can fail (bad bytes, bad syntax, nesting too
deep for the parser, an integer too long to convert) turned into one error naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from accelsim.errors import AccelsimError, ArchError

MAX_YAML_BYTES = 16 * 2**20
"""Largest YAML file read, bytes."""


def read_yaml(path: str | Path, error: type[AccelsimError] = ArchError, what: str = "YAML") -> Any:
    """The parsed contents of the YAML file `path`; `error` is raised, naming the file, when it
    cannot be read or parsed (`what` names the kind of file in the message, in the plural)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_YAML_BYTES:
            raise error(f"{path}: {size / 2**20:.1f} MiB is more than {what} files may be (at most "
                        f"{MAX_YAML_BYTES // 2**20} MiB); is this the right file?")
        data = p.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc}). Fix the syntax at the position shown; the "
                    "file must be UTF-8 (or UTF-16 with a byte-order mark).") from None
    except RecursionError:
        raise error(f"{path}: not valid YAML (nested too deeply to parse); {what} files need "
                    "only a few levels of nesting.") from None
    except ValueError as exc:
        raise error(f"{path}: not valid YAML ({exc}). Shorten the number shown.") from None


def read_arch_yaml(path: str | Path) -> Any:
    """The parsed contents of an architecture YAML file."""
    if not Path(path).is_file():
        raise ArchError(f"{path}: no such architecture file. Check the path.")
    return read_yaml(path, ArchError, "architecture")
