"""The one place that maps an architecture `kind` to the engine module that simulates it.

An engine module exposes `Config` (a subclass of `accelsim.arch.schema.ArchBase` with
`kind: Literal[...]`) and `simulate(layer, arch) -> LayerResult`. It may also expose
`prepare(workload, arch) -> dict`, which `accelsim.simulate.simulate` calls once per
(workload, arch) before the layer loop (for the arch and for its dense equivalent) for
engines whose results depend on the whole network (mapping, pipelining); `simulate` must
still work on a layer that was never prepared. The returned dict (JSON-safe) is stored in the
run metadata under `engine_summary` (`arch` / `dense`).
"""

from types import ModuleType

from accelsim.engines import gpu, neuromorphic, sparse_tensor_core, systolic, zero_skip

ENGINES: dict[str, ModuleType] = {
    "systolic": systolic,
    "zero_skip": zero_skip,
    "gpu": gpu,
    "sparse_tensor_core": sparse_tensor_core,
    "neuromorphic": neuromorphic,
}


def engine_for(kind: str) -> ModuleType:
    return ENGINES[kind]
