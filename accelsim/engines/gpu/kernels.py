"""Time models of GPU kernels for one layer's matrix products, and their break-even points.

Every kernel is timed as `max(FLOPs / (peak x efficiency), bytes / (bandwidth x bandwidth
efficiency)) + launch overhead`, plus the separate kernels it needs to put the activation in
its format on every call (activations change with every input). A layer is `groups`
products A[M, K] x W[K, N] (`accelsim.engines.shared_gemm_operand`); A, the activation, is the
sparse operand. Kernel types:

* `dense` (cuBLAS / cuDNN implicit GEMM): the fastest of the library's algorithms, as its
  heuristics pick one (`dense_time`):
  - tiled GEMM on the unit of `peak_tflops` (tensor cores; CUDA cores for fp32): one
    candidate per CTA tile in the GPU's `gemm_tiles` and split-K factor s in 1..`split_k_max`.
    All groups share one grid of groups x ceil(M / tile_m) x ceil(N / tile_n) x s CTAs, run
    in waves of one CTA per SM; split-K only fills the SMs (s > 1 needs
    s x ceil(M / tile_m) x ceil(N / tile_n) <= SMs). A CTA always costs its whole tile
    (padded rows and columns are computed, as on tensor cores):
    2 x tile_m x tile_n x (ceil(K / s) + k_half) FLOPs at the SM's share of peak x
    `compute_efficiency` x the tile's `efficiency`, so k_half is the pipeline fill and
    epilogue of one CTA in K steps. Operands are read from DRAM once (of the stored input, at
    most the elements A uses: a strided 1x1 conv reads 1 / stride^2 of it), the output written
    once, and a split s > 1 writes and reads back (s - 1) partial outputs in fp32 (serial
    split-K). Time = max(waves x CTA time, bytes / bandwidth).
  - the CUDA-core path (GEMV, small products, direct/depthwise convolution): fine-grained
    work spread over all SMs (no wave quantisation), each operand read once, at
    `gemv_compute_efficiency` of the CUDA-core peak.
  Every candidate's time is non-decreasing in M, N and K and the candidates only get fewer as
  M or N grows, so the fastest one's time is non-decreasing too: dense time never falls when
  the product grows.
* `csr` (cuSPARSE SpMM, Sputnik-like kernels): 2 x nnz x N FLOPs on CUDA cores at an
  efficiency that falls for short rows (r / (r + row_nnz_half), r = non-zeros per row);
  reads values + column indices + row pointers, the rows of W that non-zeros use (at most
  one per non-zero, at most all K) and writes the output. Conversion per call: a dense->CSR
  pass that reads A twice (count, then fill) and writes the CSR arrays.
* `bsr` (block-sparse on tensor cores): the dense tiled GEMM's candidates with K cut to the
  non-empty blocks of a block row, at the dense efficiency x `tile_efficiency`; W rows read
  as for csr, per non-empty block column.
* `nm` (cuSPARSELt N:M): the dense tiled GEMM's candidates at the sparse tensor-core peak x
  its own efficiency and k_half, never faster than m/n x the dense candidate's math; A
  compressed to n/m of its values plus `metadata_bits` per kept value. Conversion per call: a
  check (or prune) pass and a compress pass.
* `row_skip` (custom activation-sparse GEMV, TEAL/CATS/DejaVu style): for each pass over
  `rows_per_pass` rows of A, only the weight rows of columns where some of those rows is
  non-zero are read; thresholding is fused in the kernel, so there is no conversion.

On conv2d layers whose A is not the stored input (see `GemmDims.needs_im2col`), every kernel
but `dense` first materialises A with an im2col pass. Sparse kernels launch once per group.
A kernel with `conversion: none` assumes A arrives already in its format with a pattern known
ahead of time (compiled-in, as SparseRT): it is timed and reported but never chosen for
activations, whose pattern changes with every input.

No sparse kernel beats dense on an activation without zeros, by construction: at measure 1
csr and row_skip do the CUDA-core path's FLOPs at no more than its efficiency and move at
least its bytes, bsr does at least every dense tiled candidate's work, and `Config` refuses a
sparse kernel whose efficiency is above the dense kernel's on the same unit. N:M cannot run
an activation without zeros except by pruning it (lossy, said in the row's warnings).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator

from accelsim.arch.schema import StrictModel
from accelsim.engines.counts import ceil_div
from accelsim.engines.shared_gemm_operand import GemmDims, Operand, compressed_fraction

DTYPES: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
"""Math types: fp32 on CUDA cores, tf32 (fp32 storage) and the rest on tensor cores."""
DTYPE_BITS: dict[str, int] = {"fp32": 32, "tf32": 32, "fp16": 16, "bf16": 16, "int8": 8, "fp8": 8}
"""Bits per stored element of each math type."""

Conversion = Literal["per_call", "fused", "none"]

MAX_TILE_SIDE = 2**16
"""Largest CTA tile or sparse block side, elements."""
MAX_K_HALF = 1e12
"""Largest half-efficiency point (K steps, or non-zeros per row)."""
MAX_INDEX_BYTES = 16
"""Widest stored index, bytes."""
MAX_LAUNCHES = 1000
"""Most kernel launches of one conversion."""
MAX_GROUP = 64
"""Largest N:M group (m), elements."""
MAX_BITS = 64
"""Widest per-value metadata, bits."""
MAX_ROWS_PER_PASS = 2**31
"""Most rows of A one pass over the weights serves."""


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
    """Per dtype: share of the dense peak reached by the GPU's largest CTA tile (efficiency 1)
    on a large, long-K, wave-aligned GEMM."""
    k_half: float = Field(ge=0, le=MAX_K_HALF)
    """Pipeline fill and epilogue of one CTA, in K steps: a CTA over a K slice of k runs at
    k / (k + k_half) of its tile's rate."""
    gemv_compute_efficiency: float = Field(gt=0, le=1)
    """Share of the CUDA-core peak of the library's CUDA-core path (GEMV, small products,
    direct and depthwise convolution), which it picks when that is faster than tiled GEMM."""

    _dtypes = field_validator("compute_efficiency")(_check_dtypes)


class CsrKernel(_Kernel):
    """Unstructured sparse x dense (SpMM) on CUDA cores with A in CSR."""

    type: Literal["csr"]
    compute_efficiency: dict[str, float]
    """Per dtype: share of the CUDA-core peak reached with long rows."""
    row_nnz_half: float = Field(ge=0, le=MAX_K_HALF)
    """Non-zeros per row at which the kernel reaches half its long-row efficiency."""
    index_bytes: int = Field(4, gt=0, le=MAX_INDEX_BYTES)
    conversion: Conversion = "per_call"
    conversion_launches: int = Field(3, ge=0, le=MAX_LAUNCHES)
    """Kernel launches of the dense->CSR conversion (buffer sizing/analysis, scan, fill)."""

    _dtypes = field_validator("compute_efficiency")(_check_dtypes)


class BsrKernel(_Kernel):
    """Block-sparse (BSR / blocked-ELL) x dense on tensor cores."""

    type: Literal["bsr"]
    block_rows: int = Field(32, gt=0, le=MAX_TILE_SIDE)
    block_cols: int = Field(32, gt=0, le=MAX_TILE_SIDE)
    tile_efficiency: float = Field(gt=0, le=1)
    """Throughput of a block-sparse tile relative to the dense kernel's at the same shape."""
    index_bytes: int = Field(4, gt=0, le=MAX_INDEX_BYTES)
    conversion: Conversion = "per_call"
    conversion_launches: int = Field(3, ge=0, le=MAX_LAUNCHES)


class NmKernel(_Kernel):
    """N:M structured sparsity on sparse tensor cores (cuSPARSELt), A as the sparse operand."""

    type: Literal["nm"]
    n: int = Field(2, gt=0, le=MAX_GROUP)
    m: int = Field(4, gt=0, le=MAX_GROUP)
    metadata_bits: int = Field(2, gt=0, le=MAX_BITS)
    """Index bits stored per kept value (2 for 2:4)."""
    compute_efficiency: dict[str, float]
    """Per dtype: share of the sparse tensor-core peak reached at long K."""
    k_half: float = Field(ge=0, le=MAX_K_HALF)
    policy: Literal["exact", "prune"] = "exact"
    """`exact`: used only when every group of A conforms (lossless); `prune`: keep the n
    largest of every m (lossy, always applicable)."""
    conversion: Conversion = "per_call"
    conversion_launches: int = Field(2, ge=0, le=MAX_LAUNCHES)
    """Launches of the per-call check-or-prune and compress passes."""

    _dtypes = field_validator("compute_efficiency")(_check_dtypes)


class RowSkipKernel(_Kernel):
    """Activation-sparse GEMV: a zero activation skips reading its weight row."""

    type: Literal["row_skip"]
    rows_per_pass: int = Field(1, gt=0, le=MAX_ROWS_PER_PASS)
    """Rows of A (tokens) served by one pass over the weights."""
    compute_efficiency: dict[str, float]
    """Per dtype: share of the CUDA-core peak for the (rarely binding) math."""

    _dtypes = field_validator("compute_efficiency")(_check_dtypes)


Kernel = Annotated[DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel,
                   Field(discriminator="type")]


@dataclass(frozen=True)
class Machine:
    """One GPU at one math type: the numbers every kernel model needs. The per-GPU numbers
    may instead be arrays over P GPUs that share the rest (`accelsim.engines.gpu.batch`): every
    time model then gives each figure as an array over them, by the same arithmetic."""

    dtype: str
    element_bytes: float
    tensor_flops_per_s: float | np.ndarray
    """Dense peak of the unit a dense GEMM of this dtype runs on, FLOP/s."""
    sparse_flops_per_s: float | np.ndarray | None
    """N:M sparse tensor-core peak (dense-equivalent FLOP/s), None when there is none."""
    simt_flops_per_s: float | np.ndarray
    """CUDA-core peak for this dtype (what cuSPARSE-style kernels run on), FLOP/s."""
    dram_bytes_per_s: float | np.ndarray
    launch_s: float | np.ndarray
    num_sms: int | np.ndarray
    tiles: tuple[tuple[int, int, float], ...]
    """CTA tiles the dense library chooses from: (rows of C, columns of C, throughput
    relative to the kernel's `compute_efficiency`)."""
    split_k_max: int | np.ndarray
    """Largest split-K factor the dense library uses."""
    acc_bytes: float = 4.0
    """Bytes per partial output a split-K reduction stores (fp32 / int32 accumulators)."""


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
    algorithm: str = ""
    """The algorithm a tiled kernel picked: `<tile_m>x<tile_n>/split<s>`, or `simt` for the
    dense library's CUDA-core path; empty for kernels that have one algorithm."""
    weight_read_bytes: float = 0.0
    """Bytes of the second operand (W, or a KV cache) the kernel reads from DRAM, all groups:
    part of `read_bytes`."""

    @property
    def bound(self) -> Literal["compute", "memory"]:
        return "memory" if self.memory_s > self.compute_s else "compute"


@functools.lru_cache(maxsize=64)
def _candidates(tiles: tuple[tuple[int, int, float], ...],
                split_k_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tile rows, tile columns, tile efficiency, split) of every tiled-GEMM candidate, in
    the order ties are broken: tiles as listed, then the smaller split."""
    rows = [(m, n, e, s) for m, n, e in tiles for s in range(1, split_k_max + 1)]
    tm, tn, eff, split = (np.array(c, dtype=float) for c in zip(*rows))
    return tm, tn, eff, split


@functools.lru_cache(maxsize=64)
def _labels(tiles: tuple[tuple[int, int, float], ...], split_k_max: int) -> tuple[str, ...]:
    """`<tile_m>x<tile_n>/split<s>` of every tiled-GEMM candidate, in `_candidates` order,
    then `simt` (the dense library's CUDA-core path, index -1)."""
    tm, tn, _, split = _candidates(tiles, split_k_max)
    return (*(f"{int(m)}x{int(n)}/split{int(s)}" for m, n, s in zip(tm, tn, split)), "simt")


def _split_k_cap(mc: Machine) -> int:
    """The largest split-K factor of the machine's GPU(s): the range of the candidates."""
    split = mc.split_k_max
    return split if isinstance(split, int) else int(split.max())


def _column(x: float | np.ndarray) -> float | np.ndarray:
    """A per-GPU number as a column against the candidates (axis -1); one GPU's as it is."""
    return x[:, None] if isinstance(x, np.ndarray) and x.ndim else x


@dataclass(frozen=True)
class Tiled:
    """Per tiled-GEMM candidate (the last axis, in `_candidates` order; a leading axis over the
    GPUs of a machine of arrays): math seconds and split-K workspace bytes of one launch."""

    compute_s: np.ndarray
    workspace_bytes: np.ndarray
    """Partial outputs written and read back by a split-K reduction (0 at split 1)."""

    def label(self, i: int, mc: Machine) -> str:
        return _labels(mc.tiles, _split_k_cap(mc))[i]


def tiled_gemm(M: int, N: int, K: float, groups: int, mc: Machine,
               flops_per_s: float | np.ndarray, k_half: float) -> Tiled:
    """Math time of every tiled candidate for `groups` products [M, K] x [K, N] in one grid.

    A CTA computes its whole tile over its K slice plus `k_half` steps of fill at the SM's share
    (`flops_per_s` / SMs) x the tile's efficiency; CTAs run in waves of one per SM. As cuBLAS's
    heuristics do, a product is split along K only to fill the SMs: split s > 1 is a candidate
    only while s x its tiles <= SMs and s <= the GPU's `split_k_max` (infinite time
    otherwise). Each candidate's time is non-decreasing in M, N and K, and the set of
    candidates only shrinks as M or N grows.
    """
    grid, work, cta_flops, eff, split, workspace = _tile_shapes(
        M, N, K, groups, mc.tiles, _split_k_cap(mc), mc.acc_bytes, k_half)
    sms = _column(mc.num_sms)
    waves = np.ceil(work / sms)
    cta_s = cta_flops / (_column(flops_per_s) / sms * eff)
    allowed = ((split == 1) | (grid * split <= sms)) & (split <= _column(mc.split_k_max))
    return Tiled(np.where(allowed, waves * cta_s, np.inf), workspace)


@functools.lru_cache(maxsize=4096)
def _tile_shapes(M: int, N: int, K: float, groups: int, tiles: tuple[tuple[int, int, float], ...],
                 split_k_max: int, acc_bytes: float, k_half: float) -> tuple[np.ndarray, ...]:
    """What `tiled_gemm` needs of the product and the tile menu alone, per candidate: (CTAs
    of one split, CTAs of all groups and splits, FLOPs of one CTA, tile efficiency, split,
    split-K workspace bytes): the same for every GPU with this menu (a sweep's points). Not
    to be written to."""
    tm, tn, eff, split = _candidates(tiles, split_k_max)
    grid = np.ceil(M / tm) * np.ceil(N / tn)
    cta_flops = 2.0 * tm * tn * (np.ceil(K / split) + k_half)
    workspace = 2.0 * (split - 1.0) * groups * M * N * acc_bytes
    return grid, groups * grid * split, cta_flops, eff, split, workspace


def _fastest(compute: np.ndarray, memory: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per GPU, the candidate (last axis) with the least max(compute, memory): (index,
    compute, memory), with the candidate axis dropped."""
    if compute.ndim == 1 and memory.ndim == 1:  # one GPU
        i = int(np.argmin(np.maximum(compute, memory)))
        return i, compute[i], memory[i]
    shape = np.broadcast_shapes(compute.shape, memory.shape)
    compute, memory = np.broadcast_to(compute, shape), np.broadcast_to(memory, shape)
    i = np.argmin(np.maximum(compute, memory), axis=-1)
    rows = np.arange(shape[0])
    return i, compute[rows, i], memory[rows, i]


def _efficiency(table: dict[str, float], dtype: str, kernel: str) -> float:
    from accelsim.errors import ArchError

    if dtype not in table:
        raise ArchError(
            f"kernel '{kernel}' has no compute_efficiency for dtype '{dtype}' (it has "
            f"{sorted(table)}); add one, with its source, to the architecture YAML."
        )
    return table[dtype]


Number = float | np.ndarray
"""A machine-dependent figure: a float for one GPU, an array over the GPUs of a machine of
arrays."""


@dataclass(frozen=True)
class Times:
    """One kernel's time and work for a whole layer (all groups) on the GPU(s) of a `Machine`:
    what depends on the machine is a float for one GPU, an array over the GPUs for a machine
    of arrays (`accelsim.engines.gpu.batch`); `point` gives one GPU's `KernelTime`."""

    total_s: Number
    compute_s: Number
    memory_s: Number
    overhead_s: Number
    flops: float
    tensor: bool | np.ndarray
    """Whether the kernel runs on the `peak_tflops` unit (else on CUDA cores)."""
    read_bytes: Number
    write_bytes: Number
    macs_done: int
    weight_read_bytes: float
    choice: int | np.ndarray | None = None
    """Index of the picked algorithm in `labels` (the tiled candidates, then -1: the dense
    library's CUDA-core path); None for kernels with one algorithm."""
    labels: tuple[str, ...] = ()

    def algorithm(self, i: int | None = None) -> str:
        """`KernelTime.algorithm` of GPU i (None: of the one GPU)."""
        if self.choice is None:
            return ""
        return self.labels[int(self.choice if i is None or np.ndim(self.choice) == 0
                               else self.choice[i])]

    def algorithms(self, n: int) -> list[str]:
        """`algorithm` of each of the n GPUs of a machine of arrays."""
        if self.choice is None:
            return [""] * n
        return [self.labels[c] for c in np.broadcast_to(self.choice, (n,)).tolist()]

    def point(self, i: int | None = None) -> KernelTime:
        """GPU i's `KernelTime` (None: the one GPU's)."""

        def at(x: Number) -> float:
            return float(x if i is None or np.ndim(x) == 0 else x[i])

        tensor = bool(self.tensor if i is None or np.ndim(self.tensor) == 0 else self.tensor[i])
        return KernelTime(at(self.total_s), at(self.compute_s), at(self.memory_s),
                          at(self.overhead_s), self.flops, "tensor" if tensor else "simt",
                          at(self.read_bytes), at(self.write_bytes), self.macs_done,
                          self.algorithm(i), self.weight_read_bytes)


def _im2col(d: GemmDims, mc: Machine) -> tuple[Number, float, float]:
    """(seconds, read bytes, write bytes) of materialising A when the kernel needs it."""
    if not d.needs_im2col:
        return 0.0, 0.0, 0.0
    read, write = d.act_elements * mc.element_bytes, d.a_elements * mc.element_bytes
    return (read + write) / mc.dram_bytes_per_s + mc.launch_s, read, write


def dense_times(d: GemmDims, mc: Machine, k: DenseKernel, name: str = "dense") -> Times:
    """Dense product of all groups in one launch: the fastest of the library's tiled GEMM
    candidates and its CUDA-core path (see the module docstring)."""
    b = mc.element_bytes
    flops = 2.0 * d.macs
    bandwidth = mc.dram_bytes_per_s * k.bandwidth_efficiency
    read = (min(d.act_elements, d.a_elements) + d.weight_elements) * b
    write = d.out_elements * b
    tiled = tiled_gemm(d.M, d.N, d.K, d.groups, mc,
                       mc.tensor_flops_per_s * _efficiency(k.compute_efficiency, mc.dtype, name),
                       k.k_half)
    i, compute, memory = _fastest(tiled.compute_s,
                                  (read + write + tiled.workspace_bytes) / _column(bandwidth))
    simt_compute = flops / (mc.simt_flops_per_s * k.gemv_compute_efficiency)
    simt_memory = (read + write) / bandwidth
    on_tensor = np.maximum(compute, memory) <= np.maximum(simt_compute, simt_memory)
    half = 0.5 * tiled.workspace_bytes[i]
    return Times(
        np.where(on_tensor, np.maximum(compute, memory), np.maximum(simt_compute, simt_memory))
        + mc.launch_s, np.where(on_tensor, compute, simt_compute),
        np.where(on_tensor, memory, simt_memory), mc.launch_s, flops, on_tensor,
        np.where(on_tensor, read + half, read), np.where(on_tensor, write + half, write),
        d.macs, d.weight_elements * b, np.where(on_tensor, i, -1),
        _labels(mc.tiles, _split_k_cap(mc)))


def dense_time(d: GemmDims, mc: Machine, k: DenseKernel, name: str = "dense") -> KernelTime:
    """`dense_times` on a GPU."""
    return dense_times(d, mc, k, name).point()


def _conversion(d: GemmDims, mc: Machine, conversion: Conversion, launches: int, reads_of_a: int,
                written_bytes: float, bandwidth_efficiency: float) -> tuple[Number, float, float]:
    """(seconds, read bytes, write bytes) of putting A in a kernel's format on every call."""
    if conversion != "per_call":
        return 0.0, 0.0, 0.0
    im2col_s, im2col_read, im2col_write = _im2col(d, mc)
    read = reads_of_a * d.a_elements * mc.element_bytes
    seconds = (read + written_bytes) / (mc.dram_bytes_per_s * bandwidth_efficiency)
    return (seconds + launches * mc.launch_s + im2col_s, read + im2col_read,
            written_bytes + im2col_write)


def csr_times(d: GemmDims, density: float, mc: Machine, k: CsrKernel, name: str = "csr") -> Times:
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
    return Times(g * np.maximum(compute, memory) + overhead, g * compute, g * memory, overhead,
                 g * flops, False, g * read + conv_read, g * write + conv_write,
                 round(g * nnz * d.N), g * min(d.K, nnz) * d.N * b)


def csr_time(d: GemmDims, density: float, mc: Machine, k: CsrKernel, name: str = "csr") -> KernelTime:
    """`csr_times` on a GPU."""
    return csr_times(d, density, mc, k, name).point()


def bsr_times(d: GemmDims, block_density: float, mc: Machine, k: BsrKernel, dense: DenseKernel,
              name: str = "bsr") -> Times:
    """Block-sparse x dense at block density `block_density` (non-empty / all blocks of A)."""
    b, idx = mc.element_bytes, k.index_bytes
    row_blocks, col_blocks = ceil_div(d.M, k.block_rows), ceil_div(d.K, k.block_cols)
    blocks = block_density * row_blocks * col_blocks
    block_elems = blocks * k.block_rows * k.block_cols
    share = _efficiency(dense.compute_efficiency, mc.dtype, name) * k.tile_efficiency
    k_busy = max(float(k.block_cols), block_density * col_blocks * k.block_cols)
    tiled = tiled_gemm(d.M, d.N, k_busy, 1, mc, mc.tensor_flops_per_s * share, dense.k_half)
    bsr_bytes = block_elems * b + idx * (blocks + row_blocks + 1)
    read = bsr_bytes + min(d.K, blocks * k.block_cols) * d.N * b
    write = d.M * d.N * b
    i, compute, memory = _fastest(
        tiled.compute_s, (read + write + tiled.workspace_bytes)
        / _column(mc.dram_bytes_per_s * k.bandwidth_efficiency))
    half = 0.5 * tiled.workspace_bytes[i]
    conv_s, conv_read, conv_write = _conversion(d, mc, k.conversion, k.conversion_launches, 2,
                                                d.groups * bsr_bytes, k.bandwidth_efficiency)
    g = d.groups
    overhead = g * mc.launch_s + conv_s
    macs = min(d.macs, round(g * block_elems * d.N))
    return Times(g * np.maximum(compute, memory) + overhead, g * compute, g * memory, overhead,
                 2.0 * macs, True, g * (read + half) + conv_read, g * (write + half) + conv_write,
                 macs, g * min(d.K, blocks * k.block_cols) * d.N * b, i,
                 _labels(mc.tiles, _split_k_cap(mc)))


def bsr_time(d: GemmDims, block_density: float, mc: Machine, k: BsrKernel, dense: DenseKernel,
             name: str = "bsr") -> KernelTime:
    """`bsr_times` on a GPU."""
    return bsr_times(d, block_density, mc, k, dense, name).point()


def nm_times(d: GemmDims, mc: Machine, k: NmKernel, dense: DenseKernel, name: str = "2of4") -> Times:
    """N:M sparse tensor-core GEMM with A compressed (time independent of A's density)."""
    from accelsim.errors import ArchError

    if mc.sparse_flops_per_s is None:
        raise ArchError(
            f"kernel '{name}' needs a sparse tensor-core peak for dtype '{mc.dtype}': add it "
            "under sparse_peak_tflops (with its source) or remove the kernel."
        )
    b = mc.element_bytes
    share = _efficiency(k.compute_efficiency, mc.dtype, name)
    dense_share = _efficiency(dense.compute_efficiency, mc.dtype, "dense")
    sparse = tiled_gemm(d.M, d.N, d.K, 1, mc, mc.sparse_flops_per_s * share, k.k_half)
    as_dense = tiled_gemm(d.M, d.N, d.K, 1, mc, mc.tensor_flops_per_s * dense_share, dense.k_half)
    compute_c = np.maximum(sparse.compute_s, as_dense.compute_s * k.n / k.m)
    a_bytes = d.M * d.K * b * compressed_fraction(k.n, k.m, k.metadata_bits, 8 * b)
    read = a_bytes + d.K * d.N * b
    write = d.M * d.N * b
    i, compute, memory = _fastest(
        compute_c, (read + write + sparse.workspace_bytes)
        / _column(mc.dram_bytes_per_s * k.bandwidth_efficiency))
    half = 0.5 * sparse.workspace_bytes[i]
    pruned = d.a_elements * b if k.policy == "prune" else 0.0
    conv_s, conv_read, conv_write = _conversion(d, mc, k.conversion, k.conversion_launches, 2,
                                                d.groups * a_bytes + pruned,
                                                k.bandwidth_efficiency)
    g = d.groups
    overhead = g * mc.launch_s + conv_s
    macs = ceil_div(d.macs * k.n, k.m)
    return Times(g * np.maximum(compute, memory) + overhead, g * compute, g * memory, overhead,
                 2.0 * macs, True, g * (read + half) + conv_read, g * (write + half) + conv_write,
                 macs, g * d.K * d.N * b, i, _labels(mc.tiles, _split_k_cap(mc)))


def nm_time(d: GemmDims, mc: Machine, k: NmKernel, dense: DenseKernel, name: str = "2of4") -> KernelTime:
    """`nm_times` on a GPU."""
    return nm_times(d, mc, k, dense, name).point()


def row_skip_times(d: GemmDims, union_density: float, mc: Machine, k: RowSkipKernel,
                   name: str = "act_sparse_gemv") -> Times:
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
    return Times(g * np.maximum(compute, memory) + overhead, g * compute, g * memory, overhead,
                 g * flops, False, g * read + im2col_read, g * write + im2col_write,
                 min(d.macs, round(g * macs_per_group)), g * weight_bytes)


def row_skip_time(d: GemmDims, union_density: float, mc: Machine, k: RowSkipKernel,
                  name: str = "act_sparse_gemv") -> KernelTime:
    """`row_skip_times` on a GPU."""
    return row_skip_times(d, union_density, mc, k, name).point()


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


def times_at(name: str, k: DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel,
             d: GemmDims, measure: float, mc: Machine, dense: DenseKernel) -> Times:
    """A kernel's `Times` on the GPU(s) of `mc` when its own measure of A (see
    `own_measure`) is `measure`."""
    if isinstance(k, DenseKernel):
        return dense_times(d, mc, k, name)
    if isinstance(k, CsrKernel):
        return csr_times(d, measure, mc, k, name)
    if isinstance(k, BsrKernel):
        return bsr_times(d, measure, mc, k, dense, name)
    if isinstance(k, RowSkipKernel):
        return row_skip_times(d, measure, mc, k, name)
    return nm_times(d, mc, k, dense, name)


def time_at(name: str, k: DenseKernel | CsrKernel | BsrKernel | NmKernel | RowSkipKernel,
            d: GemmDims, measure: float, mc: Machine, dense: DenseKernel) -> KernelTime:
    """A kernel's time on one GPU when its own measure of A (see `own_measure`) is `measure`."""
    return times_at(name, k, d, measure, mc, dense).point()


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
