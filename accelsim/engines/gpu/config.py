"""The YAML schema of `kind: gpu`: peaks per math type, DRAM bandwidth, launch overhead and
the kernel choices a layer may run with (see `accelsim.engines.gpu`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from accelsim.arch.schema import ArchBase, StrictModel
from accelsim.arch.validation import validate
from accelsim.engines.gpu.kernels import (
    DTYPE_BITS,
    DTYPES,
    MAX_TILE_SIDE,
    CsrKernel,
    DenseKernel,
    Kernel,
    Machine,
    RowSkipKernel,
)

Dtype = Literal["fp32", "tf32", "fp16", "bf16", "int8", "fp8"]

MAX_SMS = 2**16
"""Most streaming multiprocessors."""
MAX_TFLOPS = 1e6
"""Largest peak of one unit, TFLOP/s."""
MAX_TILES = 64
"""Most CTA tiles the dense library chooses from."""
MAX_SPLIT_K = 1024
"""Largest split-K factor (each factor is one candidate the dense model times)."""
MAX_LAUNCH_S = 1.0
"""Longest launch overhead, s."""
MAX_BOARD_POWER_W = 1e5
"""Largest board power, W."""
MAX_KERNELS = 64
"""Most kernel choices."""

Tflops = Annotated[float, Field(gt=0, le=MAX_TFLOPS)]
"""A peak in TFLOP/s, above 0 and at most `MAX_TFLOPS`."""

TENSOR_FLOP = "tensor.flop"
SIMT_FLOP = "simt.flop"


def _precision_of(dtype: str) -> dict[str, Any]:
    bits = DTYPE_BITS[dtype]
    return {"act_bits": bits, "weight_bits": bits, "acc_bits": 32,
            "number_format": "int" if dtype == "int8" else "fp"}


class GemmTile(StrictModel):
    """One CTA tile of the dense library's tiled GEMM (see `accelsim.engines.gpu.kernels`)."""

    m: int = Field(gt=0, le=MAX_TILE_SIDE)
    """Rows of the output (of A) one CTA computes."""
    n: int = Field(gt=0, le=MAX_TILE_SIDE)
    """Columns of the output (of W) one CTA computes."""
    efficiency: float = Field(gt=0, le=1)
    """Throughput of this tile relative to the dense kernel's `compute_efficiency` (the
    largest tile is 1): smaller tiles reuse each operand less."""


class Config(ArchBase):
    """A GPU: peaks per math type, DRAM bandwidth, launch overhead and its kernel choices.

    `memory` must hold exactly one `dram` level (HBM), whose read bandwidth (bytes/cycle at
    `clock_mhz`) is the peak DRAM bandwidth. `precision` follows `dtype` when left out.
    """

    kind: Literal["gpu"]
    dtype: Dtype = "fp16"
    """Math type every layer runs in."""
    num_sms: int = Field(gt=0, le=MAX_SMS)
    peak_tflops: dict[str, Tflops]
    """Dense peak per dtype of the unit a dense GEMM uses (tensor cores; CUDA cores for fp32)."""
    sparse_peak_tflops: dict[str, Tflops] = Field(default_factory=dict)
    """N:M (2:4) sparse tensor-core peak per dtype, dense-equivalent FLOP/s."""
    simt_peak_tflops: dict[str, Tflops]
    """CUDA-core (non-tensor) peak per dtype, what cuSPARSE-style kernels run on."""
    gemm_tiles: list[GemmTile] = Field(min_length=1, max_length=MAX_TILES)
    """CTA tiles the dense library's heuristic chooses from; at least one has efficiency 1."""
    split_k_max: int = Field(16, gt=0, le=MAX_SPLIT_K)
    """Largest split-K factor the dense library uses."""
    launch_overhead_s: float = Field(gt=0, le=MAX_LAUNCH_S)
    board_power_w: float = Field(gt=0, le=MAX_BOARD_POWER_W)
    kernels: dict[str, Kernel] = Field(max_length=MAX_KERNELS)

    @model_validator(mode="before")
    @classmethod
    def _precision_from_dtype(cls, data: Any) -> Any:
        if isinstance(data, dict) and "precision" not in data and data.get("dtype", "fp16") in DTYPES:
            data = {**data, "precision": _precision_of(data.get("dtype", "fp16"))}
        return data

    @field_validator("dtype")
    @classmethod
    def _precision_matches(cls, dtype: str, info: ValidationInfo) -> str:
        precision = info.data.get("precision")
        want = _precision_of(dtype)
        if precision is not None and any(getattr(precision, key) != want[key]
                                         for key in ("act_bits", "weight_bits", "number_format")):
            raise ValueError(f"precision does not match dtype '{dtype}' ({want}); leave "
                             "precision out for a GPU")
        return dtype

    @field_validator("peak_tflops", "simt_peak_tflops", "sparse_peak_tflops")
    @classmethod
    def _peaks_known(cls, peaks: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        unknown = sorted(set(peaks) - set(DTYPES))
        if unknown:
            raise ValueError(f"unknown dtype(s) {unknown}; known: {list(DTYPES)}")
        dtype = info.data.get("dtype")
        if info.field_name != "sparse_peak_tflops" and dtype is not None and dtype not in peaks:
            raise ValueError(f"no entry for the GPU's dtype '{dtype}' (has {sorted(peaks)})")
        return peaks

    @field_validator("num_sms")
    @classmethod
    def _one_dram(cls, num_sms: int, info: ValidationInfo) -> int:
        if sum(1 for level in info.data.get("memory", ()) if level.kind == "dram") != 1:
            raise ValueError("memory: a GPU needs exactly one level of kind 'dram' (its HBM/GDDR)")
        return num_sms

    @field_validator("kernels")
    @classmethod
    def _kernels_named(cls, kernels: dict[str, Kernel]) -> dict[str, Kernel]:
        bad = sorted(name for name in kernels if not re.fullmatch(r"[a-z0-9_]+", name))
        if bad:
            raise ValueError(f"kernel names must be lower-case letters, digits and '_': {bad}")
        dense = [name for name, k in kernels.items() if isinstance(k, DenseKernel)]
        if dense != ["dense"]:
            raise ValueError("needs exactly one kernel of type 'dense', named 'dense' (has "
                             f"{dense or 'none'})")
        return kernels

    @field_validator("gemm_tiles")
    @classmethod
    def _one_full_tile(cls, tiles: list[GemmTile]) -> list[GemmTile]:
        if max(t.efficiency for t in tiles) != 1.0:
            raise ValueError("one tile needs efficiency 1 (the tile compute_efficiency refers to)")
        return tiles

    @model_validator(mode="after")
    def _sparse_not_above_dense(self) -> Config:
        """A sparse kernel may not stream DRAM or use CUDA cores better than the dense library:
        with it, no sparse kernel beats dense on an activation without zeros (DESIGN.md §5)."""
        dense = self.dense_kernel
        for name, k in self.kernels.items():
            if name == "dense":
                continue
            if k.bandwidth_efficiency > dense.bandwidth_efficiency:
                raise ValueError(
                    f"kernels.{name}.bandwidth_efficiency {k.bandwidth_efficiency} is above the "
                    f"dense kernel's {dense.bandwidth_efficiency}: a sparse kernel cannot stream "
                    "DRAM faster than the dense library")
            if isinstance(k, CsrKernel | RowSkipKernel):
                over = {dt: e for dt, e in k.compute_efficiency.items()
                        if e > dense.gemv_compute_efficiency}
                if over:
                    raise ValueError(
                        f"kernels.{name}.compute_efficiency {over} is above the dense kernel's "
                        f"gemv_compute_efficiency {dense.gemv_compute_efficiency}: a sparse "
                        "kernel cannot use the CUDA cores better than the dense library")
        return self

    @property
    def dense_kernel(self) -> DenseKernel:
        return self.kernels["dense"]

    def machine(self) -> Machine:
        """The numbers kernel time models need, at this GPU's dtype."""
        sparse = self.sparse_peak_tflops.get(self.dtype)
        return Machine(
            dtype=self.dtype,
            element_bytes=DTYPE_BITS[self.dtype] / 8,
            tensor_flops_per_s=self.peak_tflops[self.dtype] * 1e12,
            sparse_flops_per_s=None if sparse is None else sparse * 1e12,
            simt_flops_per_s=self.simt_peak_tflops[self.dtype] * 1e12,
            dram_bytes_per_s=self.dram().read_bandwidth_bytes_per_cycle * self.clock_hz,
            launch_s=self.launch_overhead_s,
            num_sms=self.num_sms,
            tiles=tuple((t.m, t.n, t.efficiency) for t in self.gemm_tiles),
            split_k_max=self.split_k_max,
        )

    def with_dtype(self, dtype: str) -> Config:
        """The same GPU running `dtype` (validated as a fresh description)."""
        data = self.model_dump(mode="json")
        data.pop("precision")
        data["dtype"] = dtype
        return validate(Config, data, f"{self.name} with dtype {dtype}")

    def dense_equivalent(self) -> Config:
        """The same GPU with only its dense kernel."""
        return self.model_copy(update={"kernels": {"dense": self.dense_kernel}})

    def extra_action_energy_pj(self) -> dict[str, float]:
        """Board power / peak, per FLOP of each unit at this dtype: an upper bound (see module)."""
        joule_to_pj = 1e12
        return {
            TENSOR_FLOP: self.board_power_w / (self.peak_tflops[self.dtype] * 1e12) * joule_to_pj,
            SIMT_FLOP: self.board_power_w / (self.simt_peak_tflops[self.dtype] * 1e12) * joule_to_pj,
        }
