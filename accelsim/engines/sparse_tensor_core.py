"""`kind: sparse_tensor_core`: N:M structured sparsity (NVIDIA 2:4) on activations or weights.

A tensor-core array of `dense_macs_per_cycle` runs each layer as its implicit GEMM
(`accelsim.engines.shared_gemm_operand`): N:M groups run along the reduction axis (for conv2d, m
consecutive channels of one conv group at one input pixel; for linear, m consecutive input
features of a token; for weights, m consecutive reduction elements of one output channel at one
(r, s) tap). `nm_conformance` and `nm_dropped_fraction` of activations are N:M conformance and
excess as `accelsim.workload.stats.layer_nm_conformance` defines them (what `inspect`
reports): each read input pixel counted once, padding positions not counted. In sparse mode
the math runs `sparse_speedup` (at most m/n, 2x for 2:4) faster, the sparse operand moves
as n/m of its values plus `metadata_bits` per kept value (FP16 2:4: 0.5625x its dense
bytes, INT8: 0.625x), and the layer is a roofline: max(compute, DRAM bytes / bandwidth).

What happens to data that is not N:M (`policy`), decided per layer:

* `dense`: the sparse operand is used compressed only when every group already conforms (it
  is then assumed to arrive compressed: weights pruned offline, or activations written
  compressed by the producing layer); otherwise the layer runs dense. No extra pass.
* `compress-if-conforming`: activations arrive dense; a pass over them (its own kernel:
  read, check, and when every group conforms, write the compressed form) runs before the
  GEMM, which is sparse when they conform and dense when not. Weights are static: checked
  and compressed offline, so this is `dense` for them.
* `prune`: keep the n largest magnitudes of every group (lossy), always sparse. For
  activations a prune-and-compress pass (read dense, write compressed) runs before every
  GEMM; weights are pruned offline. When the trace holds the values it needs (activation
  values and weights), `prune_rel_error` = ||Y - Y_pruned|| / ||Y|| of the layer output.

Layers whose reduction segment is shorter than m (a depthwise conv: one channel per group; a
conv on a one-channel input; K < m) cannot use N:M and run dense (`nm_applicable` False,
`nm_conformance` NaN).

Energy: MACs priced from the tech table at the arch's precision, DRAM bytes by the memory
level, and the group selection of a compress/prune/check pass as `compress.compare` actions
(one comparator ~ one adder of the activation width, [D]).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import Field, PositiveFloat, ValidationInfo, field_validator

from accelsim.arch.energy import MAC_COMPUTE
from accelsim.arch.schema import MAX_BITS, ArchBase
from accelsim.arch.tech import load_tech_table
from accelsim.engines.batch import LayerBatch, layer_memo
from accelsim.engines.counts import LayerResult, ceil_div
from accelsim.engines.shared_gemm_operand import (
    binomial_at_most,
    compressed_fraction,
    gemm_dims,
    operand_for,
)
from accelsim.workload.kernels import keep_largest_mask
from accelsim.workload.layer import ConvShape, Layer
from accelsim.workload.output_error import layer_output, relative_output_error
from accelsim.workload.reduction import from_reduction_view, reduction_view, segment_length
from accelsim.workload.stats import layer_nm_excess, nm_conformance, nm_excess

Policy = Literal["dense", "prune", "compress-if-conforming"]
COMPRESS_COMPARE = "compress.compare"
MAX_MACS_PER_CYCLE = 2**32
"""Most dense MACs per cycle of one array."""
MAX_GROUP = 64
"""Largest N:M group (m), elements."""
MAX_LAUNCH_CYCLES = 1e12
"""Longest fixed start-up of one kernel, cycles."""
UNPRICED_FIELDS = ("clock_mhz", "dense_macs_per_cycle", "compute_efficiency", "n", "m",
                   "sparse_operand", "policy", "metadata_bits", "sparse_speedup",
                   "kernel_launch_cycles", "sparse_enabled")
"""Fields the energy of an action does not depend on (MACs and the compare adder are priced
from precision and tech, DRAM bytes from the memory level): points that differ only in these
share their prices (`accelsim.simulate.simulate_totals`)."""


class Config(ArchBase):
    """A tensor-core array with N:M sparse mode. Needs exactly one `dram` memory level."""

    kind: Literal["sparse_tensor_core"]
    dense_macs_per_cycle: int = Field(gt=0, le=MAX_MACS_PER_CYCLE)
    """Dense multiply-accumulates per cycle of the whole array, at most `MAX_MACS_PER_CYCLE`."""
    compute_efficiency: float = Field(1.0, gt=0, le=1)
    """Share of the dense MAC peak reached on a layer (tiling, pipeline fill)."""
    n: int = Field(2, gt=0, le=MAX_GROUP)
    m: int = Field(4, gt=0, le=MAX_GROUP)
    """Group size, at most `MAX_GROUP` elements."""
    sparse_operand: Literal["act", "weight"] = "act"
    policy: Policy = "dense"
    metadata_bits: int = Field(2, gt=0, le=MAX_BITS)
    """Index bits stored per kept value (2 for 2:4)."""
    sparse_speedup: PositiveFloat | None = None
    """Math speed-up of sparse mode over dense; m/n when not given, never more."""
    kernel_launch_cycles: float = Field(0.0, ge=0, le=MAX_LAUNCH_CYCLES)
    """Fixed cycles of starting each kernel, the GEMM and any compress/prune/check pass (a
    launch on a GPU; 0 for an accelerator that streams layers back to back)."""
    sparse_enabled: bool = True
    """False: the same hardware with its sparse mode switched off (the dense equivalent)."""

    @field_validator("dense_macs_per_cycle")
    @classmethod
    def _one_dram(cls, macs: int, info: ValidationInfo) -> int:
        if sum(1 for level in info.data.get("memory", ()) if level.kind == "dram") != 1:
            raise ValueError("memory: a sparse tensor core needs exactly one level of kind 'dram'")
        return macs

    @field_validator("m")
    @classmethod
    def _n_below_m(cls, m: int, info: ValidationInfo) -> int:
        n = info.data.get("n")
        if n is not None and n >= m:
            raise ValueError(f"n must be smaller than m (got {n}:{m})")
        return m

    @field_validator("sparse_speedup")
    @classmethod
    def _at_most_m_over_n(cls, speedup: float | None, info: ValidationInfo) -> float | None:
        n, m = info.data.get("n"), info.data.get("m")
        if speedup is not None and n and m and speedup > m / n:
            raise ValueError(f"sparse_speedup {speedup} exceeds m/n = {m / n}")
        return speedup

    @property
    def speedup(self) -> float:
        return self.sparse_speedup if self.sparse_speedup is not None else self.m / self.n

    def dense_equivalent(self) -> Config:
        return self.model_copy(update={"sparse_enabled": False})

    def extra_action_energy_pj(self) -> dict[str, float]:
        """A group-selection comparison costs one adder of the activation width [D]."""
        tech = load_tech_table(self.tech.table)
        p = self.precision
        return {COMPRESS_COMPARE: tech.op_energy_pj("add", p.number_format, p.act_bits)
                * tech.energy_factor(self.tech.node_nm)}


def weight_reduction_view(weight: np.ndarray, layer: Layer) -> np.ndarray:
    """Weights as [outputs, reduction]: rows are the vectors one output reduces over, with the
    same m-groups an N:M weight operand uses (conv: channels of one (k, r, s); linear: K)."""
    s = layer.shape
    if isinstance(s, ConvShape):
        return np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).reshape(-1, s.C // s.groups)
    w = weight.reshape(-1, s.K, s.N)
    return np.ascontiguousarray(w.transpose(0, 2, 1)).reshape(-1, s.K)


def _weight_from_view(view: np.ndarray, layer: Layer) -> np.ndarray:
    s = layer.shape
    if isinstance(s, ConvShape):
        cg = s.C // s.groups
        return np.ascontiguousarray(view.reshape(s.K, s.R, s.S, cg).transpose(0, 3, 1, 2))
    w = view.reshape(-1, s.N, s.K).transpose(0, 2, 1)
    return np.ascontiguousarray(w).reshape(s.weight_shape)


def keep_n_of_m(view: np.ndarray, n: int, m: int) -> np.ndarray:
    """`view` with all but the n largest magnitudes of every m consecutive row elements zeroed."""
    values = np.abs(view.astype(np.float64))
    keep = keep_largest_mask(values, m, np.full(values.shape[0], n, dtype=np.int64))
    return np.where(keep, view, np.zeros_like(view))


def prune_error(layer: Layer, operand: str, n: int, m: int) -> float:
    """Relative output error of pruning the operand to n:m; NaN without the values it needs."""
    if layer.act is None or layer.weight is None:
        return math.nan
    if operand == "act":
        view = reduction_view(layer.act, layer.shape)
        segments = view.reshape(-1, segment_length(layer.shape))  # groups restart per conv group
        pruned = from_reduction_view(keep_n_of_m(segments, n, m).reshape(view.shape), layer.shape)
        err = relative_output_error(layer.shape, layer.act, pruned, layer.weight)
        return math.nan if err is None else err
    view = weight_reduction_view(layer.weight, layer)
    delta = layer.weight.astype(np.float64) - _weight_from_view(keep_n_of_m(view, n, m), layer)
    num = float(np.linalg.norm(layer_output(layer.shape, layer.act, delta)))
    den = float(np.linalg.norm(layer_output(layer.shape, layer.act, layer.weight)))
    return num / den if den else (0.0 if num == 0 else math.nan)


def _weight_nm(layer: Layer, n: int, m: int) -> tuple[float, float]:
    """(share of conforming weight groups, share of weight non-zeros pruning drops)."""
    wnz = layer.weight_nonzero()
    if wnz is None:
        density = layer.weight_density
        return binomial_at_most(n, m, density), math.nan
    view = weight_reduction_view(wnz, layer)
    return nm_conformance(view, n, m), nm_excess(view, n, m)


def _nm_measures(layer: Layer, on_act: bool, n: int, m: int) -> tuple[float, float]:
    """(N:M conformance of the sparse operand, share of its non-zeros pruning drops); NaN
    where N:M does not apply, or the trace cannot say."""
    if not gemm_dims(layer).nm_applicable(m):
        return math.nan, math.nan
    if not on_act:
        return _weight_nm(layer, n, m)
    conformance = operand_for(layer).nm_conformance(n, m)
    excess = (layer_nm_excess(reduction_view(layer.nonzero(), layer.shape), layer.shape, n, m)
              if layer.has_trace else None)
    return conformance, math.nan if excess is None else excess  # None: a shapes-only layer


def simulate(layer: Layer, arch: Config) -> LayerResult:
    """Count cycles, MACs, bytes and compress-pass work of one layer (see module docstring)."""
    return _count(layer, arch, {})


def simulate_batch(layer: Layer, archs: Sequence[Config]) -> LayerBatch:
    """`simulate` on many design points at once, the same numbers: the layer's N:M statistics
    (conformance, excess, pruning error) measured once per (operand, n, m) and workload, and
    `_count`'s arithmetic on arrays over the points (points with a DRAM level of another name
    than the first point's run one by one)."""
    memo = layer_memo(layer).setdefault("sparse_tensor_core", {})
    f = _point_fields(archs)
    if f is None:
        return LayerBatch.from_results([_count(layer, arch, memo) for arch in archs])
    n = len(archs)
    dims = gemm_dims(layer)
    dram = archs[0].dram().name
    act_b, w_b, nn, mm = f["act_b"], f["w_b"], f["n"], f["m"]
    on_act, prune, checks = f["on_act"], f["prune"], f["checks"]
    fits = {m: dims.nm_applicable(m) for m in set(mm.tolist())}
    applicable = f["enabled"] & np.array([fits[m] for m in mm.tolist()], dtype=bool)
    measures = []
    for a in archs:
        key = (a.sparse_operand, a.n, a.m)
        if key not in memo:
            memo[key] = _nm_measures(layer, a.sparse_operand == "act", a.n, a.m)
        measures.append(memo[key])
    conformance = np.array([c for c, _ in measures], dtype=float)
    dropped = np.array([d for _, d in measures], dtype=float)
    conforming = conformance >= 1.0
    sparse = applicable & (prune | conforming)
    compress_pass = applicable & ((prune & on_act) | (checks & on_act & conforming))
    check_pass = applicable & ~prune & checks & on_act & ~conforming
    meta_bits = f["metadata_bits"]
    element_bits = np.where(on_act, f["act_bits"], f["weight_bits"])
    frac = nn / mm * (1.0 + meta_bits / element_bits)
    act_bytes = dims.act_elements * act_b
    weight_bytes = dims.weight_elements * w_b
    out_bytes = dims.out_elements * act_b
    sparse_bytes = np.where(on_act, act_bytes, weight_bytes)
    compressed = np.where(sparse, sparse_bytes * frac, sparse_bytes)
    metadata = np.where(sparse, sparse_bytes * nn / mm * meta_bits
                        / (8 * np.where(on_act, act_b, w_b)), 0.0)
    read = compressed + np.where(on_act, weight_bytes, act_bytes)
    read_bytes_per_cycle = f["read_bytes_per_cycle"]
    write_bytes_per_cycle = f["write_bytes_per_cycle"]
    memory_cycles = read / read_bytes_per_cycle + out_bytes / write_bytes_per_cycle
    dense_compute = layer.macs / (f["dense_macs_per_cycle"] * f["compute_efficiency"])
    speedup = f["speedup"]
    compute_cycles = np.where(sparse, dense_compute / speedup, dense_compute)
    main = np.maximum(compute_cycles, memory_cycles)
    passes = compress_pass | check_pass
    launch = f["launch"]
    pass_read = np.where(passes, act_bytes, 0.0)
    pass_write = np.where(compress_pass, act_bytes * frac, 0.0)
    pass_cycles = np.where(passes, pass_read / read_bytes_per_cycle
                           + pass_write / write_bytes_per_cycle + launch, 0.0)
    groups = -(-dims.act_elements // mm)
    compares = np.where(pass_cycles != 0,
                        groups * np.where(compress_pass, mm * (mm - 1) // 2, mm - 1), 0)
    macs_done = np.where(sparse, -(-(layer.macs * nn) // mm), layer.macs)
    cycles = main + launch + pass_cycles
    errors = np.full(n, math.nan)
    for i in np.flatnonzero(sparse & prune):
        key = ("error", archs[i].sparse_operand, archs[i].n, archs[i].m)
        if key not in memo:
            memo[key] = prune_error(layer, archs[i].sparse_operand, archs[i].n, archs[i].m)
        errors[i] = memo[key]
    peak = f["dense_macs_per_cycle"] * np.where(sparse, speedup, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        utilization = np.where(cycles != 0, np.minimum(1.0, layer.macs / (cycles * peak)), 0.0)
    weights_known = layer.weight_nonzero() is not None
    macs = np.full(n, layer.macs, dtype=np.int64)
    return LayerBatch(
        cycles=cycles, compute_cycles=compute_cycles, stall_cycles=cycles - compute_cycles,
        macs_dense=macs, macs_done=macs_done.astype(np.int64),
        macs_skipped=macs - macs_done.astype(np.int64), macs_gated=np.zeros(n, dtype=np.int64),
        dram_bytes=read + pass_read + out_bytes + pass_write, utilization=utilization,
        memory_bound=memory_cycles > compute_cycles,
        engine_mode=["trace" if (layer.has_trace if act else weights_known) else "statistical"
                     for act in on_act],
        actions={MAC_COMPUTE: macs_done.astype(float), f"{dram}.read_bytes": read + pass_read,
                 f"{dram}.write_bytes": out_bytes + pass_write,
                 COMPRESS_COMPARE: compares.astype(float)},
        columns={"nm_applicable": applicable.tolist(), "nm_conformance": conformance,
                 "sparse_mode": sparse.tolist(), "compressed_operand_bytes": compressed,
                 "metadata_bytes": metadata, "compress_cycles": pass_cycles,
                 "nm_dropped_fraction": np.where(prune, dropped, math.nan),
                 "prune_rel_error": errors},
        warnings=[pass_notes(bool(compress_pass[i]), bool(check_pass[i]), float(conformance[i]),
                             float(pass_cycles[i]), int(nn[i]), int(mm[i])) if passes[i] else []
                  for i in range(n)])


_FIELDS: dict[int, tuple[Sequence[Config], dict[str, np.ndarray] | None]] = {}
"""`_point_fields` of the last few archs sequences (a sweep's points, their dense
equivalents)."""


def _point_fields(archs: Sequence[Config]) -> dict[str, np.ndarray] | None:
    """The fields `simulate_batch` reads, as arrays over the points (None where the points'
    DRAM levels have different names), made once per archs sequence."""
    hit = _FIELDS.get(id(archs))
    if hit is not None and hit[0] is archs:
        return hit[1]
    drams = [a.dram() for a in archs]
    found = None
    if all(d.name == drams[0].name for d in drams):
        def field(get: Callable[[Config], object], dtype: type = float) -> np.ndarray:
            return np.array([get(a) for a in archs], dtype=dtype)

        found = {
            "act_bits": field(lambda a: a.precision.act_bits),
            "weight_bits": field(lambda a: a.precision.weight_bits),
            "n": field(lambda a: a.n, np.int64), "m": field(lambda a: a.m, np.int64),
            "on_act": field(lambda a: a.sparse_operand == "act", bool),
            "prune": field(lambda a: a.policy == "prune", bool),
            "checks": field(lambda a: a.policy == "compress-if-conforming", bool),
            "enabled": field(lambda a: a.sparse_enabled, bool),
            "metadata_bits": field(lambda a: a.metadata_bits),
            "read_bytes_per_cycle": np.array([d.read_bandwidth_bytes_per_cycle for d in drams]),
            "write_bytes_per_cycle": np.array([d.write_bandwidth for d in drams]),
            "dense_macs_per_cycle": field(lambda a: a.dense_macs_per_cycle, np.int64),
            "compute_efficiency": field(lambda a: a.compute_efficiency),
            "speedup": field(lambda a: a.speedup),
            "launch": field(lambda a: a.kernel_launch_cycles),
        }
        found["act_b"], found["w_b"] = found["act_bits"] / 8, found["weight_bits"] / 8
    if len(_FIELDS) >= 4:
        _FIELDS.clear()
    _FIELDS[id(archs)] = (archs, found)
    return found


def _count(layer: Layer, arch: Config, memo: dict) -> LayerResult:
    """`simulate`, with the trace statistics kept in `memo` (one layer, many archs)."""
    dims = gemm_dims(layer)
    p = arch.precision
    act_b, w_b = p.act_bits / 8, p.weight_bits / 8
    n, m = arch.n, arch.m
    on_act = arch.sparse_operand == "act"
    applicable = arch.sparse_enabled and dims.nm_applicable(m)
    key = (arch.sparse_operand, n, m)
    if key not in memo:
        memo[key] = _nm_measures(layer, on_act, n, m)
    conformance, dropped = memo[key]
    conforming = conformance >= 1.0
    if not applicable:
        sparse, compress_pass, check_pass = False, False, False
    elif arch.policy == "prune":
        sparse, compress_pass, check_pass = True, on_act, False
    elif arch.policy == "compress-if-conforming" and on_act:
        sparse, compress_pass, check_pass = conforming, conforming, not conforming
    else:
        sparse, compress_pass, check_pass = conforming, False, False

    frac = compressed_fraction(n, m, arch.metadata_bits, p.act_bits if on_act else p.weight_bits)
    act_bytes = dims.act_elements * act_b
    weight_bytes = dims.weight_elements * w_b
    out_bytes = dims.out_elements * act_b
    sparse_bytes = act_bytes if on_act else weight_bytes
    compressed = sparse_bytes * frac if sparse else sparse_bytes
    metadata = (sparse_bytes * n / m * arch.metadata_bits / (8 * (act_b if on_act else w_b))
                if sparse else 0.0)
    read = compressed + (weight_bytes if on_act else act_bytes)
    dram = arch.dram()
    memory_cycles = (read / dram.read_bandwidth_bytes_per_cycle
                     + out_bytes / dram.write_bandwidth)
    dense_compute = layer.macs / (arch.dense_macs_per_cycle * arch.compute_efficiency)
    compute_cycles = dense_compute / arch.speedup if sparse else dense_compute
    main = max(compute_cycles, memory_cycles)

    pass_read = act_bytes if (compress_pass or check_pass) else 0.0
    pass_write = act_bytes * frac if compress_pass else 0.0
    pass_cycles = 0.0
    if compress_pass or check_pass:
        pass_cycles = (pass_read / dram.read_bandwidth_bytes_per_cycle
                       + pass_write / dram.write_bandwidth + arch.kernel_launch_cycles)
    groups = ceil_div(dims.act_elements, m)
    compares = groups * (m * (m - 1) // 2 if compress_pass else m - 1) if pass_cycles else 0

    macs_done = ceil_div(layer.macs * n, m) if sparse else layer.macs
    cycles = main + arch.kernel_launch_cycles + pass_cycles
    actions = {
        MAC_COMPUTE: float(macs_done),
        f"{dram.name}.read_bytes": read + pass_read,
        f"{dram.name}.write_bytes": out_bytes + pass_write,
        COMPRESS_COMPARE: float(compares),
    }
    if sparse and arch.policy == "prune":
        if ("error", *key) not in memo:
            memo[("error", *key)] = prune_error(layer, arch.sparse_operand, n, m)
        error = memo[("error", *key)]
    else:
        error = math.nan
    dense_equivalent_peak = arch.dense_macs_per_cycle * (arch.speedup if sparse else 1.0)
    return LayerResult(
        cycles=cycles,
        compute_cycles=compute_cycles,
        stall_cycles=cycles - compute_cycles,
        macs_dense=layer.macs,
        macs_done=macs_done,
        macs_skipped=layer.macs - macs_done,
        dram_bytes=read + pass_read + out_bytes + pass_write,
        bound="memory" if memory_cycles > compute_cycles else "compute",
        engine_mode="trace" if (layer.has_trace if on_act else layer.weight_nonzero() is not None)
        else "statistical",
        utilization=min(1.0, layer.macs / (cycles * dense_equivalent_peak)) if cycles else 0.0,
        actions=actions,
        columns={
            "nm_applicable": applicable,
            "nm_conformance": conformance,
            "sparse_mode": sparse,
            "compressed_operand_bytes": compressed,
            "metadata_bytes": metadata,
            "compress_cycles": pass_cycles,
            "nm_dropped_fraction": dropped if arch.policy == "prune" else math.nan,
            "prune_rel_error": error,
        },
        warnings=pass_notes(compress_pass, check_pass, conformance, pass_cycles, n, m),
    )


def pass_notes(compress_pass: bool, check_pass: bool, conformance: float, pass_cycles: float,
               n: int, m: int) -> list[str]:
    """What a row pays for the pass over its activations before the GEMM (the reason such a
    design can be slower than dense on a small layer)."""
    if check_pass:
        share = ("no trace shows whether they conform" if math.isnan(conformance) else
                 f"{conformance:.0%} of their {m}-groups conform to {n}:{m}")
        return [f"a check pass over the activations ({pass_cycles:.3g} cycles, its kernel launch "
                f"included) runs before the GEMM, which runs dense: {share}"]
    if compress_pass:
        return [f"a compress pass over the activations ({pass_cycles:.3g} cycles, its kernel "
                f"launch included) runs before the sparse GEMM"]
    return []
