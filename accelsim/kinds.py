"""The one registry of hardware kinds: each `kind` of architecture description, the engine that
simulates it, and the schema that joins every kind's `Config` (what `load_arch` validates).

An engine (a module, or a package whose `__init__` exposes the contract) provides `Config` (a
subclass of `accelsim.arch.schema.ArchBase` with `kind: Literal[...]`) and
`simulate(layer, arch) -> LayerResult`. It may also provide `prepare(workload, arch) -> dict`,
which `accelsim.simulate.simulate` calls once per (workload, arch) before the layer loop (for
the arch and for its dense equivalent) for engines whose results depend on the whole network
(mapping, pipelining); `simulate` must still work on a layer that was never prepared. The
returned dict (JSON-safe) is stored in the run metadata under `engine_summary` (`arch` /
`dense`). It may provide `simulate_batch(layer, archs) -> accelsim.engines.batch.LayerBatch`,
the same counts for many design points of its kind at once (what a sweep uses; without it,
`accelsim.simulate.count_batch` loops over `simulate`). Adding a kind is adding its engine and
one line to `KINDS`.

Engines are imported when first used: `parse_arch` validates a mapping that names a known
`kind` with that kind's `Config` alone (the same checks and messages as the union), so a
command imports only the engines it runs.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from accelsim.arch.loader import read_arch_yaml
from accelsim.arch.schema import ArchBase
from accelsim.arch.validation import validate


@dataclass(frozen=True)
class Kind:
    """One kind of hardware: its engine (the module's dotted name, imported on first use), and
    the engine-specific result columns that `accelsim run` shows in its table (every column is
    in the saved results)."""

    module: str
    shown_columns: tuple[str, ...] = ()

    @property
    def engine(self) -> ModuleType:
        return importlib.import_module(self.module)


KINDS: dict[str, Kind] = {
    "systolic": Kind("accelsim.engines.systolic"),
    "zero_skip": Kind("accelsim.engines.zero_skip"),
    "gpu": Kind("accelsim.engines.gpu"),
    "sparse_tensor_core": Kind("accelsim.engines.sparse_tensor_core"),
    "neuromorphic": Kind("accelsim.engines.neuromorphic",
                         ("events", "synaptic_ops", "nps_used", "mapping")),
}


@functools.cache
def engine_for(kind: str) -> ModuleType:
    """The engine that simulates architectures of `kind`."""
    return KINDS[kind].engine


@functools.cache
def _schema() -> TypeAdapter:
    configs = tuple(k.engine.Config for k in KINDS.values())
    return TypeAdapter(Annotated[Union[configs], Field(discriminator="kind")])  # noqa: UP007


def parse_arch(data: Any, source: str = "<arch>") -> ArchBase:
    """Validate a mapping as an architecture description of any registered kind: with its
    kind's `Config` when it names a known kind (no other engine imported), else with the union
    of all, whose error names the kinds allowed."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind in KINDS:
        return validate(engine_for(kind).Config, data, source, list(KINDS))
    return validate(_schema(), data, source, list(KINDS))


def load_arch(path: str | Path) -> ArchBase:
    """Load an architecture YAML file (safe loader) and validate it."""
    return parse_arch(read_arch_yaml(path), str(path))
