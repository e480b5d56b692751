"""The one place that maps an architecture `kind` to the engine module that simulates it.

An engine module exposes `Config` (a subclass of `accelsim.arch.schema.ArchBase` with
`kind: Literal[...]`) and `simulate(layer, arch) -> LayerResult`.
"""

from types import ModuleType

from accelsim.engines import gpu, sparse_tensor_core, systolic, zero_skip

ENGINES: dict[str, ModuleType] = {
    "systolic": systolic,
    "zero_skip": zero_skip,
    "gpu": gpu,
    "sparse_tensor_core": sparse_tensor_core,
}


def engine_for(kind: str) -> ModuleType:
    return ENGINES[kind]
