"""Fit the GPU kernel efficiency parameters to published figures; print them and the anchors.

No GPU is needed: every anchor is a published measurement (sources in arch_configs/a100.yaml
and v100.yaml). Each fit solves the engine's own time model (accelsim.engines.gpu.kernels) for
the parameter, so the YAML values printed here reproduce the anchors by construction; the
rounded values in the YAML files are checked against the anchors in tests/test_gpu_validation.py.

    .venv/bin/python benchmarks/gpu_published_fit.py [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys
from collections.abc import Callable
from pathlib import Path

from accelsim.engines.gpu import Config
from accelsim.engines.gpu.kernels import breakeven, crossing, csr_time, dense_time, nm_time, row_skip_time
from accelsim.engines.shared_gemm_operand import GemmDims, gemm_dims
from accelsim.kinds import load_arch
from accelsim.workload.layer import GemmShape, Layer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fitting import golden  # noqa: E402

# [I57] / [TUT]: (M, K, N, dense ms, 2:4 ms) on A100 80GB, FP16, sparse weights (static).
A100_24 = [(4096, 4096, 4096, 0.6080, 0.5458), (3072, 10240, 3072, 0.870, 0.630)]
# [TEAL]: Llama-2-7B MLP GEMVs at batch 1; speed-up at 40 % and 50 % activation sparsity.
TEAL_SHAPES = [(1, 4096, 11008), (1, 4096, 11008), (1, 11008, 4096)]
TEAL = [(0.40, 1.53), (0.50, 1.80)]
# [GALE]: LSTM, input 8192, hidden 2048, batch 128 -> sparse [4*2048, 8192+2048] x dense [., 128].
LSTM = (8192, 10240, 128)
SPUTNIK_BREAKEVEN_SPARSITY = 0.71
CUSPARSE_NNZ_RATIO = 14.0
# SparseRT (Wang, PACT 2020), V100 FP32: geometric-mean speed-up over dense on 1x1 conv and FC
# layers, sparse weights [K_out, C] x dense activations [C, H*W]: ResNet-50 1x1 convs at 224x224,
# batch 1, and BERT-base FFN layers at 128 tokens. SparseRT compares kernel run times, so this
# anchor leaves launch overhead out.
SPARSERT_SHAPES = [
    (256, 64, 3136), (64, 256, 3136), (512, 128, 784), (128, 512, 784), (1024, 256, 196),
    (256, 1024, 196), (2048, 512, 49), (512, 2048, 49), (3072, 768, 128), (768, 3072, 128),
]
SPARSERT = [(0.90, 3.4), (0.95, 5.4)]
CSR_LARGE = (8192, 8192, 8192)
CSR_TARGET_SPARSITY = 0.97


def dims(m: int, k: int, n: int) -> GemmDims:
    return gemm_dims(Layer("g", "linear", GemmShape(M=m, K=k, N=n)))


def with_kernel(cfg: Config, name: str, **update: object) -> Config:
    kernels = dict(cfg.kernels)
    kernels[name] = kernels[name].model_copy(update=update)
    return cfg.model_copy(update={"kernels": kernels})


def bisect(f: Callable[[float], float], lo: float, hi: float, iterations: int = 80) -> float:
    """Root of a monotone f on [lo, hi] (f(lo) and f(hi) of opposite signs)."""
    flo = f(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        fm = f(mid)
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return 0.5 * (lo + hi)


def fit_a100(rows: list[dict]) -> None:
    cfg = load_arch(ROOT / "arch_configs" / "a100.yaml")
    assert isinstance(cfg, Config)
    mc = cfg.machine()
    dense = cfg.dense_kernel

    def dense_err(share: float) -> float:
        k = dense.model_copy(update={"compute_efficiency": {"fp16": share}})
        return sum(math.log(dense_time(dims(m, kk, n), mc, k).total_s / (t * 1e-3)) ** 2
                   for m, kk, n, t, _ in A100_24)

    share = golden(dense_err, 0.3, 1.0)
    dense = dense.model_copy(update={"compute_efficiency": {**dense.compute_efficiency, "fp16": share}})
    cfg = with_kernel(cfg, "dense", compute_efficiency=dense.compute_efficiency)
    rows.append({"gpu": cfg.name, "kernel": "dense", "parameter": "compute_efficiency.fp16",
                 "value": share, "anchor": "I57 4096^3 0.608 ms; TUT 3072x10240x3072 0.870 ms"})

    nm = cfg.kernels["2of4"].model_copy(update={"conversion": "none"})
    target = [d_ms / s_ms for _, _, _, d_ms, s_ms in A100_24]

    def speedups(nm_share: float, k_half: float) -> list[float]:
        k = nm.model_copy(update={"compute_efficiency": {"fp16": nm_share}, "k_half": k_half})
        out = []
        for m, kk, n, _, _ in A100_24:
            dd = dims(m, kk, n)
            out.append(dense_time(dd, mc, dense).total_s / nm_time(dd, mc, k, dense).total_s)
        return out

    def share_for(k_half: float) -> float:
        return bisect(lambda s: speedups(s, k_half)[0] - target[0], 0.05, 3.0)

    k_half = bisect(lambda kh: speedups(share_for(kh), kh)[1] - target[1], 1.0, 10000.0)
    nm_share = share_for(k_half)
    big = dims(16384, 65536, 16384)
    k_big = nm.model_copy(update={"compute_efficiency": {"fp16": nm_share}, "k_half": k_half})
    asymptote = dense_time(big, mc, dense).total_s / nm_time(big, mc, k_big, dense).total_s
    rows.append({"gpu": cfg.name, "kernel": "2of4", "parameter": "compute_efficiency.fp16",
                 "value": nm_share, "anchor": f"I57 1.11x at 4096^3; asymptote {asymptote:.2f}x"})
    rows.append({"gpu": cfg.name, "kernel": "2of4", "parameter": "k_half", "value": k_half,
                 "anchor": "TUT 1.38x at 3072x10240x3072"})

    csr = cfg.kernels["csr"]
    large = dims(*CSR_LARGE)
    for dtype in ("fp16", "fp32"):
        cfg_d = cfg.with_dtype(dtype)
        mc_d = cfg_d.machine()
        dense_d = cfg_d.dense_kernel
        dense_s = dense_time(large, mc_d, dense_d).total_s

        def csr_gap(s: float, mc_d=mc_d, dense_d=dense_d, dense_s=dense_s, dtype=dtype) -> float:
            k = csr.model_copy(update={"compute_efficiency": {dtype: s}})
            return breakeven("csr", k, large, mc_d, dense_d, dense_s) - (1 - CSR_TARGET_SPARSITY)

        value = bisect(csr_gap, 1e-4, 1.0)
        rows.append({"gpu": cfg.name, "kernel": "csr", "parameter": f"compute_efficiency.{dtype}",
                     "value": value, "anchor": f"break-even {CSR_TARGET_SPARSITY:.0%} sparsity at "
                                               f"{CSR_LARGE}, conversion per call"})

    gemv = cfg.kernels["act_sparse_gemv"]

    def teal_err(bw: float) -> float:
        k = gemv.model_copy(update={"bandwidth_efficiency": bw})
        err = 0.0
        for sparsity, speedup in TEAL:
            dense_s = sum(dense_time(dims(*s), mc, dense).total_s for s in TEAL_SHAPES)
            sparse_s = sum(row_skip_time(dims(*s), 1 - sparsity, mc, k).total_s for s in TEAL_SHAPES)
            err += math.log(dense_s / sparse_s / speedup) ** 2
        return err

    bw = golden(teal_err, 0.3, 1.0)
    rows.append({"gpu": cfg.name, "kernel": "act_sparse_gemv", "parameter": "bandwidth_efficiency",
                 "value": bw, "anchor": "TEAL 1.53x at 40 %, 1.8x at 50 % (Llama-2-7B MLP)"})


def fit_v100(rows: list[dict]) -> None:
    cfg = load_arch(ROOT / "arch_configs" / "v100.yaml")
    assert isinstance(cfg, Config)
    mc, dense = cfg.machine(), cfg.dense_kernel
    lstm = dims(*LSTM)
    dense_s = dense_time(lstm, mc, dense).total_s

    def static_breakeven(name: str, share: float) -> float:
        k = cfg.kernels[name].model_copy(update={"compute_efficiency": {"fp32": share},
                                                 "conversion": "none"})
        return crossing(lambda x: csr_time(lstm, x, mc, k).total_s, dense_s)

    sputnik_density = 1 - SPUTNIK_BREAKEVEN_SPARSITY
    sputnik = bisect(lambda s: static_breakeven("sputnik", s) - sputnik_density, 1e-3, 1.0)
    rows.append({"gpu": cfg.name, "kernel": "sputnik", "parameter": "compute_efficiency.fp32",
                 "value": sputnik, "anchor": "GALE: beats cuBLAS from 71 % sparsity, LSTM shape"})
    cusparse_density = sputnik_density / CUSPARSE_NNZ_RATIO
    cusparse = bisect(lambda s: static_breakeven("csr", s) - cusparse_density, 1e-5, 1.0)
    rows.append({"gpu": cfg.name, "kernel": "csr", "parameter": "compute_efficiency.fp32",
                 "value": cusparse, "anchor": "GALE: 14x fewer non-zeros than Sputnik, LSTM shape"})

    srt = cfg.kernels["sparsert"]
    kernel_only = dataclasses.replace(mc, launch_s=0.0)

    def geo_speedup(share: float, half: float, density: float) -> float:
        k = srt.model_copy(update={"compute_efficiency": {"fp32": share}, "row_nnz_half": half})
        logs = [math.log(dense_time(dims(*s), kernel_only, dense).total_s
                         / csr_time(dims(*s), density, kernel_only, k).total_s)
                for s in SPARSERT_SHAPES]
        return math.exp(sum(logs) / len(logs))

    def share_for(half: float) -> float:
        d90, s90 = SPARSERT[0]
        return bisect(lambda s: geo_speedup(s, half, 1 - d90) - s90, 1e-3, 3.0)

    d95, s95 = SPARSERT[1]
    half = bisect(lambda h: geo_speedup(share_for(h), h, 1 - d95) - s95, 0.0, 500.0)
    rows.append({"gpu": cfg.name, "kernel": "sparsert", "parameter": "compute_efficiency.fp32",
                 "value": share_for(half), "anchor": "SparseRT 3.4x at 90 % (geo-mean)"})
    rows.append({"gpu": cfg.name, "kernel": "sparsert", "parameter": "row_nnz_half",
                 "value": half, "anchor": "SparseRT 5.4x at 95 % (geo-mean)"})


def bound_violations(rows: list[dict]) -> list[str]:
    """Fitted CUDA-core shares above their GPU's dense CUDA-core path (`gemv_compute_efficiency`):
    a YAML holding them is refused, since a sparse kernel would then beat dense without zeros."""
    limits = {}
    for name in ("a100", "v100"):
        cfg = load_arch(ROOT / "arch_configs" / f"{name}.yaml")
        assert isinstance(cfg, Config)
        limits[cfg.name] = (cfg, cfg.dense_kernel.gemv_compute_efficiency)
    found = []
    for r in rows:
        cfg, limit = limits[r["gpu"]]
        kernel = cfg.kernels[r["kernel"]]
        if (r["parameter"].startswith("compute_efficiency.") and kernel.type in ("csr", "row_skip")
                and r["value"] > limit):
            found.append(f"{r['gpu']} {r['kernel']} {r['parameter']} = {r['value']:.4f} is above the "
                         f"dense gemv_compute_efficiency {limit}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="also write the fitted values to this CSV")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    fit_a100(rows)
    fit_v100(rows)
    for r in rows:
        print(f"{r['gpu']:<24} {r['kernel']:<16} {r['parameter']:<26} {r['value']:>10.4f}  {r['anchor']}")
    for note in bound_violations(rows):
        print(f"warning: {note}", file=sys.stderr)
    if args.csv:
        with args.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
