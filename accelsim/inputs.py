"""What a file given to accelsim is, recognised by its content rather than its name, so that a
trace where an architecture is expected (or a sweep spec given to `run`) is named as what it is,
with the command that takes it, before anything is simulated.

`kind_of(path)` reads at most the first bytes of a binary file and parses a YAML file with the
same bounded safe loader the architecture reader uses (`accelsim.arch.loader.read_yaml`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from accelsim.arch.loader import read_yaml
from accelsim.errors import AccelsimError

FileKind = Literal["trace", "arch", "sweep", "tech", "llm_model", "topology", "compare_folder",
                   "sweep_folder", "folder", "missing", "unknown"]

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""First bytes of a zip archive (a `.npz` trace is one), with and without members."""

WHAT: dict[str, str] = {
    "trace": "a workload trace (.npz)",
    "arch": "an architecture description (YAML with a `kind`)",
    "sweep": "a sweep spec (YAML with `base` and `parameters`)",
    "tech": "a tech table (YAML with `energy_pj` prices)",
    "llm_model": "an LLM shape file (YAML with `hidden_size`)",
    "topology": "a SCALE-Sim topology (CSV)",
    "compare_folder": "a compare results folder",
    "sweep_folder": "a sweep results folder",
    "folder": "a folder",
    "missing": "missing (no such file)",
    "unknown": "not a file accelsim recognises",
}
"""Each kind of file in words, as errors name it."""

USE: dict[str, str] = {
    "trace": "give it as the workload: `accelsim run ARCH.yaml {path}`, or `accelsim inspect "
             "{path}`",
    "arch": "give it as the architecture: `accelsim run {path} WORKLOAD.npz`",
    "sweep": "run it with `accelsim sweep {path} --out DIR`",
    "tech": "name it from an architecture file (`tech: {{table: NAME}}`); it is not run on its own",
    "llm_model": "build a workload from it with `accelsim import-llm {path} -o MODEL.npz`",
    "topology": "convert it first: `accelsim import-scalesim {path} -o MODEL.npz`",
    "compare_folder": "build a report from it with `accelsim report {path} -o report.html`",
    "sweep_folder": "build a report from it with `accelsim report {path} -o report.html`",
}
"""What to do with each kind of file instead."""


def kind_of(path: str | os.PathLike[str]) -> FileKind:
    """What the file or folder at `path` is, from its content ('unknown' when it is none of
    accelsim's files or cannot be read; the reader for the expected kind then says why)."""
    p = Path(path)
    if p.is_dir():
        if (p / "sweep.json").is_file():
            return "sweep_folder"
        if (p / "workload.json").is_file() or (p / "comparison.json").is_file():
            return "compare_folder"
        return "folder"
    if not p.exists():
        return "missing"
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return "unknown"
    if head.startswith(ZIP_MAGIC):
        return "trace"
    if _looks_like_topology(head):
        return "topology"
    try:
        data = read_yaml(p)
    except AccelsimError:
        return "unknown"
    if not isinstance(data, dict):
        return "unknown"
    if "kind" in data:
        return "arch"
    if "base" in data and "parameters" in data:
        return "sweep"
    if "energy_pj" in data and "node_nm" in data:
        return "tech"
    if "hidden_size" in data:
        return "llm_model"
    return "unknown"


def _looks_like_topology(head: bytes) -> bool:
    """A SCALE-Sim topology: a CSV whose header row names the layer and its dimensions."""
    first = head.split(b"\n", 1)[0].lower()
    return first.count(b",") >= 3 and first.startswith(b"layer") and (
        b"ifmap" in first or b" m," in first or b",m," in first)


def mismatch(path: str | Path, expected: FileKind, role: str) -> str | None:
    """None when `path` is of the `expected` kind (or cannot be told: the reader of that kind
    then gives its own error), else one paragraph saying what the file is, what `role` needs
    and what to do with the file instead."""
    found = kind_of(path)
    if found in (expected, "unknown", "missing"):
        return None
    hint = USE.get(found, "")
    return (f"{path}: this is {WHAT[found]}, but {role} needs {WHAT[expected]}."
            + (f" To use this file, {hint.format(path=path)}." if hint else ""))


def check_swapped(arch: object, workload: object, usage: str) -> None:
    """Raise `AccelsimError` when the architecture argument is a trace and the workload
    argument an architecture (both given as paths): the two were given in the wrong order;
    `usage` shows the right one."""
    if not all(isinstance(p, (str, os.PathLike)) for p in (arch, workload)):
        return
    if kind_of(arch) == "trace" and kind_of(workload) == "arch":
        raise AccelsimError(f"{arch} is a workload trace and {workload} an architecture "
                            f"description: the two are in the wrong order. Give the "
                            f"architecture first: {usage}.")


def check(path: str | Path, expected: FileKind, role: str) -> None:
    """Raise `AccelsimError` with `mismatch`'s paragraph when `path` is another kind of file."""
    message = mismatch(path, expected, role)
    if message is not None:
        raise AccelsimError(message)
