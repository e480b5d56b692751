"""`kind: gpu`: which GPU kernel runs a layer fastest at the sparsity its activations have.

Per layer and per kernel listed in the arch YAML (dense cuBLAS, cuSPARSE CSR/BSR, cuSPARSELt
N:M, a custom activation-sparse GEMV; time models in `accelsim.engines.gpu.kernels`), the
engine reports the kernel's time (`time_<kernel>_s`, conversions included), its break-even
with dense (`breakeven_density_<kernel>`, in the measure of A the kernel depends on, next to
that measure for this layer: `a_density`, `block_density_<kernel>`, `union_density_<kernel>`,
`nm_conformance_<kernel>`), the algorithm the dense library picked (`dense_algorithm`: CTA
tile and split-K, or `simt`) and the fastest kernel that may run this activation
(`best_kernel`). The layer's latency is that kernel's time; `cycles` = time x clock. Where the
chosen kernel is faster than dense but moves more DRAM bytes or uses more energy, or prunes A,
the layer's `warnings` say so in numbers.
`dense_equivalent()` is the same GPU with only its dense kernel, so `speedup_vs_dense` is
the best kernel's speed-up over dense (1.0 where dense wins). Each layer also gets its
break-even curve, saved with the results as the `breakeven` table: every kernel's time and
speed-up over dense at `breakeven.LAYER_CURVE_DENSITIES` (random zeros) and at the layer's own
density (`at_layer_density`), which is what reports draw.

Energy (an approximation, an upper bound on arithmetic): FLOPs executed are priced at
board power / peak FLOP/s of the unit that runs them (`tensor.flop`, `simt.flop`), i.e. as
if the whole board power went to arithmetic at peak; DRAM bytes are priced from the tech
table by the memory level's `dram_type`. Static power is not added (it is inside the
board-power figure). Expect energies within a factor of ~2-3 of a measured board.

Modules: `config` (the YAML schema), `count` (`simulate`), `kernels` (each kernel's YAML
fields and time model), `breakeven` (speed-up against density for one shape).
"""

from typing import Any

from accelsim.engines.gpu.config import Config

__all__ = ["Config", "simulate", "simulate_batch"]

UNPRICED_FIELDS = ("clock_mhz", "num_sms", "gemm_tiles", "split_k_max", "launch_overhead_s",
                   "kernels")
"""Fields the energy of an action does not depend on (FLOPs are priced from board power and
peaks, DRAM bytes from the memory level): points that differ only in these share their prices
(`accelsim.simulate.simulate_totals`)."""


def __getattr__(name: str) -> Any:
    """`simulate` (from `count`) and `simulate_batch` (from `batch`) when first used, so that
    the parser can read this package's names without importing the count step."""
    if name == "simulate":
        from accelsim.engines.gpu.count import simulate

        return simulate
    if name == "simulate_batch":
        from accelsim.engines.gpu.batch import simulate_batch

        return simulate_batch
    raise AttributeError(f"module 'accelsim.engines.gpu' has no attribute {name!r}")
