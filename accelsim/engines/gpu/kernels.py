"""Time models of GPU kernels for one layer's matrix products, and their break-even points.

Every kernel is timed as `max(FLOPs / (peak x efficiency), bytes / (bandwidth x bandwidth
efficiency)) + launch overhead`, plus the separate kernels it needs to put the activation in
its format on every call (activations change with every input). A layer is `groups`
products A[M, K] x W[K, N] (`accelsim.engines.shared_gemm_operand`); A, the activation, is the
sparse operand. Kernel types:

* `dense` (cuBLAS / cuDNN implicit GEMM): tensor-core peak x an efficiency that falls with
  wave quantisation (CTA tiles over SMs, split-K when tiles are fewer than SMs) and with a
  short reduction (K / (K + k_half)), or the library's GEMV path on CUDA cores (W streamed
  once per row of A) when that is faster; groups run one after another in one launch.
* `csr` (cuSPARSE SpMM, Sputnik-like kernels): 2 x nnz x N FLOPs on CUDA cores at an
  efficiency that falls for short rows (r / (r + row_nnz_half), r = non-zeros per row);
  reads values + column indices + row pointers, the rows of W that non-zeros use (at most
  one per non-zero, at most all K) and writes the output. Conversion per call: a dense->CSR
  pass that reads A twice (count, then fill) and writes the CSR arrays.
* `bsr` (block-sparse on tensor cores): dense math on every non-empty block at the dense
  kernel's efficiency x `tile_efficiency`, with the grid (and split-K) of the dense product
  and a pipeline as long as the non-empty blocks of a block row; W rows read as for csr, per
  non-empty block column.
* `nm` (cuSPARSELt N:M): sparse tensor-core peak x an efficiency rising with K; A compressed to
  n/m of its values plus `metadata_bits` per kept value; never more than m/n x the dense
  kernel's math rate. Conversion per call: a check (or prune) pass and a compress pass.
* `row_skip` (custom activation-sparse GEMV, TEAL/CATS/DejaVu style): for each pass over
  `rows_per_pass` rows of A, only the weight rows of columns where some of those rows is
  non-zero are read; thresholding is fused in the kernel, so there is no conversion.

On conv2d layers whose A is not the stored input (see `GemmDims.needs_im2col`), every kernel
but `dense` first materialises A with an im2col pass. Sparse kernels launch once per group.
A kernel with `conversion: none` assumes A arrives already in its format with a pattern known
ahead of time (compiled-in, as SparseRT): it is timed and reported but never chosen for
activations, whose pattern changes with every input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator

from accelsim.arch.schema import StrictModel
from accelsim.engines.counts import ceil_div
from accelsim.engines.shared_gemm_operand import GemmDims, Operand, compressed_fraction

DTYPES: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
"""Math types: fp32 on CUDA cores, tf32 (fp32 storage) and the rest on tensor cores."""
DTYPE_BITS: dict[str, int] = {"fp32": 32, "tf32": 32, "fp16": 16, "bf16": 16, "int8": 8, "fp8": 8}
"""Bits per stored element of each math type."""

Conversion = Literal["per_call", "fused", "none"]


def _check_dtypes(value: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(value) - set(DTYPES))
    if unknown:
        raise ValueError(f"unknown dtype(s) {unknown}; known: {list(DTYPES)}")
    bad = sorted(k for k, v in value.items() if not 0 < v <= 1)
    if bad:
        raise ValueError(f"efficiencies must be in (0, 1]; check {bad}")
    return value


class _Kernel(StrictModel):
    source: str = Field(min_length=1)
    """Where the parameters come from or what they were fitted to."""
    bandwidth_efficiency: float = Field(gt=0, le=1)
    """Share of peak DRAM bandwidth the kernel's memory traffic achieves."""


class DenseKernel(_Kernel):
    """A dense GEMM library kernel (cuBLAS, cuDNN implicit GEMM)."""

    type: Literal["dense"]
    compute_efficiency: dict[str, float]
    """Per dtype: share of the dense peak reached on a large, long-K, wave-aligned GEMM."""
    k_half: float = Field(ge=0)
    """Reduction length (per split) at which the pipeline reaches half its efficiency."""
    gemv_compute_efficiency: float = Field(gt=0, le=1)
    """Share of the CUDA-core peak of the library's GEMV path, which it picks for skinny
    products (few rows of A) when that is faster than tiled GEMM."""

    _dtypes = field_validator("compute_efficiency")(_check_dtypes)


class CsrKernel(_Kernel):
    """Unstructured sparse x dense (SpMM) on CUDA cores with A in CSR."""

    type: Literal["csr"]
    compute_efficiency: dict[str, float]
    """Per dtype: share of the CUDA-core peak reached with long rows."""
    row_nnz_half: float = Field(ge=0)
    """Non-zeros per row at which the kernel reaches half its long-row efficiency."""
    index_bytes: PositiveInt = 4
    conversion: Conversion = "per_call"
    conversion_launches: int = Field(3, ge=0)
    """Kernel launches of the dense->CSR conversion (buffer sizing/analysis, scan, fill)."""

    _dtypes = field_validator("compute_efficiency")(_check_dtypes)


class BsrKernel(_Kernel):
    """Block-sparse (BSR / blocked-ELL) x dense on tensor cores."""

    type: Literal["bsr"]
    block_rows: PositiveInt = 32
    block_cols: PositiveInt = 32
    tile_efficiency: float = Field(gt=0, le=1)
    """Throughput of a block-sparse tile relative to the dense kernel's at the same shape."""
    index_bytes: PositiveInt = 4
    conversion: Conversion = "per_call"
    conversion_launches: int = Field(3, ge=0)


class NmKernel(_Kernel):
    """N:M structured sparsity on sparse tensor cores (cuSPARSELt), A as the sparse operand."""

    type: Literal["nm"]
    n: PositiveInt = 2
    m: PositiveInt = 4
    metadata_bits: PositiveInt = 2
    """Index bits stored per kept value (2 for 2:4)."""
    compute_efficiency: dict[str, float]
    """Per dtype: share of the sparse tensor-core peak reached at long K."""
    k_half: float = Field(ge=0)
    policy: Literal["exact", "prune"] = "exact"
    """`exact`: used only when every group of A conforms (lossless); `prune`: keep the n
    largest of every m (lossy, always applicable)."""
    conversion: Conversion = "per_call"
    conversion_launches: int = Field(2, ge=0)
    """Launches of the per-call check-or-prune and compress passes."""

    _dtypes = field_validator("compute_efficiency")(_check_dtypes)


class RowSkipKernel(_Kernel):
    """Activation-sparse GEMV: a zero activation skips reading its weight row."""

    type: Literal["row_skip"]
    rows_per_pass: PositiveInt = 1
    """Rows of A (tokens) served by one pass over the weights."""
    compute_efficiency: dict[str, float]
    """Per dtype: share of the CUDA-core peak for the (rarely binding) math."""

    _dtypes = field_validator("compute_efficiency")(_check_dtypes)


Kernel = Annotated[DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel,
                   Field(discriminator="type")]


@dataclass(frozen=True)
class Machine:
    """One GPU at one math type: the numbers every kernel model needs."""

    dtype: str
    element_bytes: float
    tensor_flops_per_s: float
    """Dense peak of the unit a dense GEMM of this dtype runs on."""
    sparse_flops_per_s: float | None
    """N:M sparse tensor-core peak (dense-equivalent FLOP/s), None when there is none."""
    simt_flops_per_s: float
    """CUDA-core peak for this dtype (what cuSPARSE-style kernels run on)."""
    dram_bytes_per_s: float
    launch_s: float
    num_sms: int
    tile_m: int
    tile_n: int
    split_k_min_k: int


@dataclass(frozen=True)
class KernelTime:
    """Time and work of one kernel choice for a whole layer (all groups)."""

    total_s: float
    compute_s: float
    """Math time of the main kernel(s), all groups."""
    memory_s: float
    """DRAM time of the main kernel(s), all groups."""
    overhead_s: float
    """Launch overheads and the conversion kernels (format change, im2col)."""
    flops: float
    """FLOPs executed (2 per multiply-accumulate done)."""
    unit: Literal["tensor", "simt"]
    read_bytes: float
    write_bytes: float
    macs_done: int

    @property
    def bound(self) -> Literal["compute", "memory"]:
        return "memory" if self.memory_s > self.compute_s else "compute"


def wave_efficiency(M: int, N: int, K: int, mc: Machine) -> tuple[float, int]:
    """(Share of SM slots doing useful tiles, split-K factor) for a tile_m x tile_n CTA grid.

    With fewer tiles than SMs the reduction is split (as cuBLAS does) into up to
    num_sms // tiles parts of at least `split_k_min_k`; waves = ceil(work units / SMs).
    """
    grid = ceil_div(M, mc.tile_m) * ceil_div(N, mc.tile_n)
    split = 1
    if grid < mc.num_sms:
        split = max(1, min(mc.num_sms // grid, K // max(1, mc.split_k_min_k)))
    units = grid * split
    waves = ceil_div(units, mc.num_sms)
    return units / (waves * mc.num_sms), split


def gemm_efficiency(M: int, N: int, K: float, mc: Machine, peak_share: float, k_half: float) -> float:
    """Share of peak for one [M, K] x [K, N] product: peak_share x waves x K / (K + k_half)."""
    wave, split = wave_efficiency(M, N, max(1, int(K)), mc)
    k = K / split
    return peak_share * wave * (k / (k + k_half) if k_half else 1.0)


def _efficiency(table: dict[str, float], dtype: str, kernel: str) -> float:
    from accelsim.errors import ArchError

    if dtype not in table:
        raise ArchError(
            f"kernel '{kernel}' has no compute_efficiency for dtype '{dtype}' (it has "
            f"{sorted(table)}); add one, with its source, to the architecture YAML."
        )
    return table[dtype]


def _im2col(d: GemmDims, mc: Machine) -> tuple[float, float, float]:
    """(seconds, read bytes, write bytes) of materialising A when the kernel needs it."""
    if not d.needs_im2col:
        return 0.0, 0.0, 0.0
    read, write = d.act_elements * mc.element_bytes, d.a_elements * mc.element_bytes
    return (read + write) / mc.dram_bytes_per_s + mc.launch_s, read, write


def dense_time(d: GemmDims, mc: Machine, k: DenseKernel, name: str = "dense") -> KernelTime:
    """Dense product of all groups in one launch: the faster of the library's tiled GEMM on
    tensor cores (each operand read once) and its GEMV path on CUDA cores (W streamed once per
    row of A, what a library picks for skinny products)."""
    b = mc.element_bytes
    eff = gemm_efficiency(d.M, d.N, d.K, mc, _efficiency(k.compute_efficiency, mc.dtype, name),
                          k.k_half)
    flops = 2.0 * d.macs
    bandwidth = mc.dram_bytes_per_s * k.bandwidth_efficiency
    gemm_read = (d.act_elements + d.weight_elements) * b
    write = d.out_elements * b
    gemm = (flops / (mc.tensor_flops_per_s * eff), (gemm_read + write) / bandwidth, gemm_read)
    gemv_read = d.groups * d.M * (d.K * d.N + d.K) * b
    gemv = (flops / (mc.simt_flops_per_s * k.gemv_compute_efficiency),
            (gemv_read + write) / bandwidth, gemv_read)
    unit: Literal["tensor", "simt"] = "tensor" if max(gemm[:2]) <= max(gemv[:2]) else "simt"
    compute, memory, read = gemm if unit == "tensor" else gemv
    return KernelTime(max(compute, memory) + mc.launch_s, compute, memory, mc.launch_s, flops,
                      unit, read, write, d.macs)


def _conversion(d: GemmDims, mc: Machine, conversion: Conversion, launches: int, reads_of_a: int,
                written_bytes: float, bandwidth_efficiency: float) -> tuple[float, float, float]:
    """(seconds, read bytes, write bytes) of putting A in a kernel's format on every call."""
    if conversion != "per_call":
        return 0.0, 0.0, 0.0
    im2col_s, im2col_read, im2col_write = _im2col(d, mc)
    read = reads_of_a * d.a_elements * mc.element_bytes
    seconds = (read + written_bytes) / (mc.dram_bytes_per_s * bandwidth_efficiency)
    return (seconds + launches * mc.launch_s + im2col_s, read + im2col_read,
            written_bytes + im2col_write)


def csr_time(d: GemmDims, density: float, mc: Machine, k: CsrKernel, name: str = "csr") -> KernelTime:
    """CSR SpMM at A density `density` (non-zeros / elements of A)."""
    b, idx = mc.element_bytes, k.index_bytes
    nnz = density * d.M * d.K
    per_row = density * d.K
    share = _efficiency(k.compute_efficiency, mc.dtype, name)
    flops = 2.0 * nnz * d.N
    # efficiency share * r / (r + half): each row costs as if it held `half` more non-zeros
    compute = 2.0 * d.M * d.N * (per_row + k.row_nnz_half) / (mc.simt_flops_per_s * share)
    csr_bytes = nnz * (b + idx) + (d.M + 1) * idx
    read = csr_bytes + min(d.K, nnz) * d.N * b
    write = d.M * d.N * b
    memory = (read + write) / (mc.dram_bytes_per_s * k.bandwidth_efficiency)
    conv_s, conv_read, conv_write = _conversion(d, mc, k.conversion, k.conversion_launches, 2,
                                                d.groups * csr_bytes, k.bandwidth_efficiency)
    g = d.groups
    overhead = g * mc.launch_s + conv_s
    total = g * max(compute, memory) + overhead
    return KernelTime(total, g * compute, g * memory, overhead, g * flops, "simt",
                      g * read + conv_read, g * write + conv_write, round(g * nnz * d.N))


def bsr_time(d: GemmDims, block_density: float, mc: Machine, k: BsrKernel, dense: DenseKernel,
             name: str = "bsr") -> KernelTime:
    """Block-sparse x dense at block density `block_density` (non-empty / all blocks of A)."""
    b, idx = mc.element_bytes, k.index_bytes
    row_blocks, col_blocks = ceil_div(d.M, k.block_rows), ceil_div(d.K, k.block_cols)
    blocks = block_density * row_blocks * col_blocks
    block_elems = blocks * k.block_rows * k.block_cols
    share = _efficiency(dense.compute_efficiency, mc.dtype, name) * k.tile_efficiency
    wave, split = wave_efficiency(d.M, d.N, d.K, mc)
    k_split = max(float(k.block_cols), block_density * col_blocks * k.block_cols) / split
    eff = share * wave * (k_split / (k_split + dense.k_half) if dense.k_half else 1.0)
    flops = 2.0 * block_elems * d.N
    compute = flops / (mc.tensor_flops_per_s * eff) if flops else 0.0
    bsr_bytes = block_elems * b + idx * (blocks + row_blocks + 1)
    read = bsr_bytes + min(d.K, blocks * k.block_cols) * d.N * b
    write = d.M * d.N * b
    memory = (read + write) / (mc.dram_bytes_per_s * k.bandwidth_efficiency)
    conv_s, conv_read, conv_write = _conversion(d, mc, k.conversion, k.conversion_launches, 2,
                                                d.groups * bsr_bytes, k.bandwidth_efficiency)
    g = d.groups
    overhead = g * mc.launch_s + conv_s
    total = g * max(compute, memory) + overhead
    macs = min(d.macs, round(g * block_elems * d.N))
    return KernelTime(total, g * compute, g * memory, overhead, 2.0 * macs, "tensor",
                      g * read + conv_read, g * write + conv_write, macs)


def nm_time(d: GemmDims, mc: Machine, k: NmKernel, dense: DenseKernel, name: str = "2of4") -> KernelTime:
    """N:M sparse tensor-core GEMM with A compressed (time independent of A's density)."""
    from accelsim.errors import ArchError

    if mc.sparse_flops_per_s is None:
        raise ArchError(
            f"kernel '{name}' needs a sparse tensor-core peak for dtype '{mc.dtype}': add it "
            "under sparse_peak_tflops (with its source) or remove the kernel."
        )
    b = mc.element_bytes
    share = _efficiency(k.compute_efficiency, mc.dtype, name)
    eff = gemm_efficiency(d.M, d.N, d.K, mc, share, k.k_half)
    dense_eff = gemm_efficiency(d.M, d.N, d.K, mc,
                                _efficiency(dense.compute_efficiency, mc.dtype, "dense"),
                                dense.k_half)
    dense_compute = 2.0 * d.M * d.K * d.N / (mc.tensor_flops_per_s * dense_eff)
    compute = max(2.0 * d.M * d.K * d.N / (mc.sparse_flops_per_s * eff),
                  dense_compute * k.n / k.m)
    a_bytes = d.M * d.K * b * compressed_fraction(k.n, k.m, k.metadata_bits, 8 * b)
    read = a_bytes + d.K * d.N * b
    write = d.M * d.N * b
    memory = (read + write) / (mc.dram_bytes_per_s * k.bandwidth_efficiency)
    pruned = d.a_elements * b if k.policy == "prune" else 0.0
    conv_s, conv_read, conv_write = _conversion(d, mc, k.conversion, k.conversion_launches, 2,
                                                d.groups * a_bytes + pruned,
                                                k.bandwidth_efficiency)
    g = d.groups
    overhead = g * mc.launch_s + conv_s
    total = g * max(compute, memory) + overhead
    macs = ceil_div(d.macs * k.n, k.m)
    return KernelTime(total, g * compute, g * memory, overhead, 2.0 * macs, "tensor",
                      g * read + conv_read, g * write + conv_write, macs)


def row_skip_time(d: GemmDims, union_density: float, mc: Machine, k: RowSkipKernel,
                  name: str = "act_sparse_gemv") -> KernelTime:
    """Activation-sparse GEMV at union density `union_density` (see `Operand.union_density`)."""
    b = mc.element_bytes
    passes = ceil_div(d.M, k.rows_per_pass)
    weight_bytes = passes * union_density * d.K * d.N * b
    read = weight_bytes + d.M * d.K * b
    write = d.M * d.N * b
    macs_per_group = d.M * union_density * d.K * d.N
    flops = 2.0 * macs_per_group
    eff = _efficiency(k.compute_efficiency, mc.dtype, name)
    compute = flops / (mc.simt_flops_per_s * eff) if flops else 0.0
    memory = (read + write) / (mc.dram_bytes_per_s * k.bandwidth_efficiency)
    im2col_s, im2col_read, im2col_write = _im2col(d, mc)
    g = d.groups
    overhead = g * mc.launch_s + im2col_s
    total = g * max(compute, memory) + overhead
    return KernelTime(total, g * compute, g * memory, overhead, g * flops, "simt",
                      g * read + im2col_read, g * write + im2col_write,
                      min(d.macs, round(g * macs_per_group)))


def own_measure(k: DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel,
                op: Operand) -> float:
    """The statistic of A a kernel's time depends on (its break-even is expressed in it):
    density (csr), block density (bsr), union density (row_skip), N:M conformance (nm; NaN
    where groups of m do not fit in a slice of A, as in a depthwise conv)."""
    if isinstance(k, CsrKernel):
        return op.density
    if isinstance(k, BsrKernel):
        return op.block_density(k.block_rows, k.block_cols)
    if isinstance(k, RowSkipKernel):
        return op.union_density(k.rows_per_pass)
    if isinstance(k, NmKernel):
        return op.nm_conformance(k.n, k.m) if op.dims.nm_applicable(k.m) else math.nan
    return 1.0


def time_at(name: str, k: DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel,
            d: GemmDims, measure: float, mc: Machine, dense: DenseKernel) -> KernelTime:
    """A kernel's time when its own measure of A (see `own_measure`) is `measure`."""
    if isinstance(k, DenseKernel):
        return dense_time(d, mc, k, name)
    if isinstance(k, CsrKernel):
        return csr_time(d, measure, mc, k, name)
    if isinstance(k, BsrKernel):
        return bsr_time(d, measure, mc, k, dense, name)
    if isinstance(k, RowSkipKernel):
        return row_skip_time(d, measure, mc, k, name)
    return nm_time(d, mc, k, dense, name)


def available(k: DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel, mc: Machine) -> bool:
    """Whether the GPU can run the kernel at its dtype (N:M needs sparse tensor cores)."""
    return not isinstance(k, NmKernel) or mc.sparse_flops_per_s is not None


def eligible(k: DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel, op: Operand) -> bool:
    """Whether a kernel may run this (dynamic) activation: not a static-pattern kernel; an N:M
    kernel only where m-groups fit in a slice of A, and (exact) when every group conforms."""
    if isinstance(k, DenseKernel | RowSkipKernel):
        return True
    if k.conversion == "none":
        return False
    if isinstance(k, NmKernel):
        return op.dims.nm_applicable(k.m) and (k.policy == "prune" or op.nm_all_conform(k.n, k.m))
    return True


def crossing(time_of: Callable[[float], float], target_s: float, iterations: int = 60) -> float:
    """Largest x in (0, 1] with time_of(x) <= target_s, for time_of non-decreasing in x.

    1.0 when even x = 1 is no slower; NaN when no x > 0 is (it never breaks even). Bisection
    to 2**-iterations.
    """
    if time_of(1.0) <= target_s:
        return 1.0
    if time_of(0.0) > target_s:
        return math.nan
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if time_of(mid) <= target_s:
            lo = mid
        else:
            hi = mid
    return lo if lo > 0.0 else math.nan


def breakeven(name: str, k: DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel,
              d: GemmDims, mc: Machine, dense: DenseKernel, dense_s: float) -> float:
    """The kernel's break-even point with dense, in its own measure of A.

    csr: density; bsr: block density; row_skip: union density — the largest value at which it
    is no slower than dense (NaN: never). nm: its time does not depend on density; it can run
    only at density <= n/m (exact) or at any density (prune), so its break-even is n/m (exact)
    or 1.0 (prune) when it beats dense, NaN when it does not or cannot run (depthwise).
    """
    if isinstance(k, DenseKernel):
        return 1.0
    if isinstance(k, NmKernel):
        if not d.nm_applicable(k.m) or nm_time(d, mc, k, dense, name).total_s > dense_s:
            return math.nan
        return 1.0 if k.policy == "prune" else k.n / k.m
    return crossing(lambda x: time_at(name, k, d, x, mc, dense).total_s, dense_s)
