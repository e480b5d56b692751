"""The one place that maps an architecture `kind` to the engine module that simulates it.

An engine module exposes `Config` (a subclass of `accelsim.arch.schema.ArchBase` with
`kind: Literal[...]`) and `simulate(layer, arch) -> LayerResult`.
"""

from types import ModuleType

from accelsim.engines import systolic, zero_skip

ENGINES: dict[str, ModuleType] = {
    "systolic": systolic,
    "zero_skip": zero_skip,
}


def engine_for(kind: str) -> ModuleType:
    return ENGINES[kind]
