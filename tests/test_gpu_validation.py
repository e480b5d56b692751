"""The GPU model against published figures (sources in arch_configs/a100.yaml and v100.yaml).

Each test states its tolerance and says which of its anchors were fitting targets and which are
predictions. Fitting targets (benchmarks/gpu_published_fit.py solves the model for a parameter so
that it reproduces them; the tests only check that the rounded YAML values still do): A100 dense
FP16 times at 4096^3 and 3072x10240x3072; cuSPARSE's 97 % break-even at 8192^3 (FP16 and FP32);
2:4 at 1.11x (4096^3) and 1.38x (3072x10240x3072); TEAL's 1.53x / 1.8x; on V100, Sputnik's 71 %,
cuSPARSE's 14x fewer non-zeros and SparseRT's 3.4x / 5.4x. Predictions (no parameter was fitted
to them, so only these count as validation): 2:4 "up to ~1.7x" on large GEMMs; cuSPARSE inside
95-98 % on the other large shapes; Sputnik's fitted share below the 27 % of peak it reports.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from accelsim.engines import gpu
from accelsim.engines.gpu.kernels import breakeven, crossing, csr_time, dense_time, nm_time, row_skip_time
from accelsim.engines.shared_gemm_operand import GemmDims, gemm_dims
from accelsim.kinds import load_arch
from accelsim.workload import GemmShape, Layer

CONFIGS = Path(__file__).resolve().parents[1] / "arch_configs"


def gpu_arch(name: str) -> gpu.Config:
    arch = load_arch(CONFIGS / f"{name}.yaml")
    assert isinstance(arch, gpu.Config)
    return arch


def dims(M: int, K: int, N: int) -> GemmDims:
    return gemm_dims(Layer("g", "linear", GemmShape(M=M, K=K, N=N)))


@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
@pytest.mark.parametrize("shape", [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 16384, 16384),
                                   (3072, 10240, 3072)])
def test_cusparse_breaks_even_between_95_and_98_percent_on_large_gemms(dtype, shape):
    """NVIDIA (2021): rarely competitive below 95 %; Gale et al. (2020): ~98 %. Tolerance: the
    published band itself, [95 %, 98 %] sparsity, conversion of the activation included.
    Fitting target at 8192^3 (97 %, per dtype); prediction on the other shapes."""
    arch = gpu_arch("a100").with_dtype(dtype)
    mc, dense = arch.machine(), arch.dense_kernel
    d = dims(*shape)
    density = breakeven("csr", arch.kernels["csr"], d, mc, dense, dense_time(d, mc, dense).total_s)
    assert 0.95 <= 1 - density <= 0.98


def _static(arch: gpu.Config, name: str):
    """The kernel as in the papers: a static sparse operand, no per-call conversion."""
    return arch.kernels[name].model_copy(update={"conversion": "none"})


def test_sputnik_beats_cublas_from_71_percent_on_the_lstm():
    """Gale et al. 2020, V100 FP32, LSTM input 8192 / hidden 2048 / batch 128 ->
    [8192, 10240] x [10240, 128]: break-even at 71 % sparsity. Tolerance +-2 points.
    Fitting targets: 71 % (Sputnik's share) and 14x (cuSPARSE's share); the 95-98 % band then
    follows from them. Prediction: Sputnik's fitted share stays below its reported 27 % of peak."""
    arch = gpu_arch("v100")
    mc, dense = arch.machine(), arch.dense_kernel
    d = dims(8192, 10240, 128)
    dense_s = dense_time(d, mc, dense).total_s
    sputnik = _static(arch, "sputnik")
    sparsity = 1 - crossing(lambda x: csr_time(d, x, mc, sputnik).total_s, dense_s)
    assert sparsity == pytest.approx(0.71, abs=0.02)
    cusparse = _static(arch, "csr")
    cusparse_sparsity = 1 - crossing(lambda x: csr_time(d, x, mc, cusparse).total_s, dense_s)
    # "cuSPARSE needs ~14x fewer non-zeros": tolerance 12x-16x, and inside the 95-98 % band
    assert (1 - sparsity) / (1 - cusparse_sparsity) == pytest.approx(14, abs=2)
    assert 0.95 <= cusparse_sparsity <= 0.98
    # Sputnik's share of FP32 peak stays below the 27 % the paper reports as its best
    assert sputnik.compute_efficiency["fp32"] <= 0.27


SPARSERT_SHAPES = [  # sparse weights [K_out, C] x activations [C, H*W] (and BERT-base FFN)
    (256, 64, 3136), (64, 256, 3136), (512, 128, 784), (128, 512, 784), (1024, 256, 196),
    (256, 1024, 196), (2048, 512, 49), (512, 2048, 49), (3072, 768, 128), (768, 3072, 128),
]


@pytest.mark.parametrize(("sparsity", "speedup"), [(0.90, 3.4), (0.95, 5.4)])
def test_sparsert_like_efficiency_on_1x1_conv_and_fc(sparsity, speedup):
    """Wang, PACT 2020 (V100 FP32): geometric-mean speed-up over dense of 3.4x at 90 % and 5.4x
    at 95 % on 1x1 conv / FC layers, kernel times (no launch overhead). Tolerance +-10 %.
    Both are fitting targets (share and row_nnz_half), not validation."""
    arch = gpu_arch("v100")
    mc = dataclasses.replace(arch.machine(), launch_s=0.0)
    srt = _static(arch, "sparsert")
    logs = [math.log(dense_time(dims(*s), mc, arch.dense_kernel).total_s
                     / csr_time(dims(*s), 1 - sparsity, mc, srt).total_s) for s in SPARSERT_SHAPES]
    assert math.exp(sum(logs) / len(logs)) == pytest.approx(speedup, rel=0.10)


def _nm_speedup(arch: gpu.Config, shape: tuple[int, int, int], static: bool = True) -> float:
    mc, dense = arch.machine(), arch.dense_kernel
    k = _static(arch, "2of4") if static else arch.kernels["2of4"]
    d = dims(*shape)
    return dense_time(d, mc, dense).total_s / nm_time(d, mc, k, dense).total_s


def test_two_four_published_speedups_on_a100():
    """CUDALibrarySamples #57: 1.11x at 4096^3 FP16 (tolerance +-0.05); PyTorch 2:4 tutorial:
    1.38x at [3072, 10240] x [10240, 3072] (+-0.07); torchao: 'up to 1.7x' on large GEMMs
    (largest over big shapes within [1.5, 1.8]). Sparse weights, as measured there.
    1.11x and 1.38x are fitting targets (share and k_half); 'up to 1.7x' is a prediction."""
    a100 = gpu_arch("a100")
    assert _nm_speedup(a100, (4096, 4096, 4096)) == pytest.approx(1.11, abs=0.05)
    assert _nm_speedup(a100, (3072, 10240, 3072)) == pytest.approx(1.38, abs=0.07)
    large = [(8192, 8192, 8192), (16384, 16384, 16384), (8192, 32768, 8192), (16384, 65536, 16384)]
    assert 1.5 <= max(_nm_speedup(a100, s) for s in large) <= 1.8
    # with the activation as the operand, check and compress passes run every call
    assert _nm_speedup(a100, (4096, 4096, 4096), static=False) < _nm_speedup(a100, (4096,) * 3)


def test_dense_times_match_the_measured_a100_baselines():
    """Measured dense FP16 on A100: 0.608 ms at 4096^3 (#57), 0.870 ms at 3072x10240x3072
    (tutorial). Tolerance +-5 %. Both are fitting targets (one share, least squares)."""
    a100 = gpu_arch("a100")
    mc, dense = a100.machine(), a100.dense_kernel
    assert dense_time(dims(4096, 4096, 4096), mc, dense).total_s == pytest.approx(0.608e-3, rel=0.05)
    assert dense_time(dims(3072, 10240, 3072), mc, dense).total_s == pytest.approx(0.870e-3, rel=0.05)


LLAMA2_7B_MLP = [(1, 4096, 11008), (1, 4096, 11008), (1, 11008, 4096)]  # gate, up, down


@pytest.mark.parametrize(("sparsity", "low", "high"), [(0.40, 1.45, 1.65), (0.50, 1.70, 1.90)])
def test_batch1_decode_mlp_speedup_from_activation_sparsity(sparsity, low, high):
    """TEAL (ICLR 2025): 1.53x at 40 % and 1.8x at 50 % single-batch decode. Tolerance:
    [1.45, 1.65] and [1.70, 1.90] for the Llama-2-7B MLP GEMVs on A100 FP16. Both are fitting
    targets (one bandwidth share, least squares)."""
    arch = gpu_arch("a100")
    mc = arch.machine()
    gemv = arch.kernels["act_sparse_gemv"]
    dense_s = sum(dense_time(dims(*s), mc, arch.dense_kernel).total_s for s in LLAMA2_7B_MLP)
    sparse_s = sum(row_skip_time(dims(*s), 1 - sparsity, mc, gemv).total_s for s in LLAMA2_7B_MLP)
    assert low <= dense_s / sparse_s <= high
    # and the engine picks that kernel for such a layer
    layer = Layer("up", "linear", GemmShape(M=1, K=4096, N=11008),
                  declared_act_density=1 - sparsity)
    res = gpu.simulate(layer, arch)
    assert res.columns["best_kernel"] == "act_sparse_gemv"


def test_decode_gain_disappears_with_many_tokens_per_pass():
    """Skipping a weight row needs the activation zero in every row of the pass: at batch 64
    with independent zeros at 50 %, (almost) no weight row can be skipped."""
    arch = gpu_arch("a100")
    layer = Layer("up", "linear", GemmShape(M=64, K=4096, N=11008), declared_act_density=0.5)
    gemv = arch.kernels["act_sparse_gemv"].model_copy(update={"rows_per_pass": 64})
    arch = arch.model_copy(update={"kernels": {**arch.kernels, "act_sparse_gemv": gemv}})
    res = gpu.simulate(layer, arch)
    assert res.columns["union_density_act_sparse_gemv"] > 0.999
    assert res.columns["best_kernel"] == "dense"
