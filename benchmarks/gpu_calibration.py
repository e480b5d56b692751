"""Measure dense and sparse GEMM kernels on a real GPU; fit the gpu engine's curves to them.

Measure (needs a CUDA GPU and torch):

    .venv/bin/python benchmarks/gpu_calibration.py measure [--out CSV] [--dtype fp16] [--quick]

times, across shapes and activation densities (zeros placed independently at random), with
CUDA events (median of --repeats after warm-up):

* `dense`: torch.matmul of the dense activation [M, K] and weights [K, N] (cuBLAS);
* `csr_convert`, `csr_spmm`: Tensor.to_sparse_csr() of the activation (cuSPARSE dense->CSR),
  then the CSR x dense product (cuSPARSE SpMM);
* `bsr_convert`, `bsr_spmm`: the same with to_sparse_bsr(32) (skipped where torch has no kernel);
* `2of4_compress`, `2of4_mm`: the activation pruned to 2:4, to_sparse_semi_structured(), then
  the semi-structured x dense product (cuSPARSELt or CUTLASS, as torch picks);
* `masked_gemv`: batch-1 GEMV that reads only the weight rows of non-zero activations,
  emulated as nonzero() + index_select + mv (a fused kernel such as TEAL's avoids the copy,
  so this is an upper bound on what skipping costs).

Each row of the CSV names the device, torch and CUDA versions and the method. Without a CUDA
GPU the script says so and exits without measuring (status 0).

Fit (no GPU needed):

    .venv/bin/python benchmarks/gpu_calibration.py fit CSV --arch arch_configs/h100.yaml

prints the efficiency parameters of the arch's kernels that best reproduce the measured times
(least squares in log time, one parameter at a time, the others as in the YAML), to be written
into the YAML with the CSV named as their source.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fitting import golden  # noqa: E402

SHAPES = [(4096, 4096, 4096), (8192, 8192, 8192), (3072, 10240, 3072), (2048, 4096, 11008),
          (1, 4096, 11008), (1, 11008, 4096), (1, 8192, 28672)]
QUICK_SHAPES = [(2048, 2048, 2048), (1, 4096, 11008)]
DENSITIES = [1.0, 0.5, 0.3, 0.1, 0.05, 0.02, 0.01, 0.005]
FIELDS = ["device", "torch_version", "cuda_version", "method", "dtype", "M", "K", "N", "density",
          "time_s", "repeats", "created"]


def _timer(torch, fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of fn() over `repeats` CUDA-event timed calls after 3 warm-ups."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e-3)
    return statistics.median(times)


def _prune_2_4(torch, a):
    """Keep the 2 largest magnitudes of every 4 consecutive elements along the last axis."""
    groups = a.reshape(a.shape[0], -1, 4)
    order = groups.abs().argsort(dim=-1, descending=True).argsort(dim=-1)
    keep = order < 2
    return (groups * keep).reshape(a.shape)


def measure(out: Path, dtype_name: str, quick: bool, repeats: int) -> int:
    try:
        import torch
    except ImportError:
        print("gpu_calibration: torch is not installed (pip install '.[capture]'); nothing measured.",
              file=sys.stderr)
        return 0
    if not torch.cuda.is_available():
        print("gpu_calibration: no CUDA GPU is visible to torch "
              f"(torch {torch.__version__}); nothing measured.", file=sys.stderr)
        return 0
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    dev = torch.device("cuda")
    device = torch.cuda.get_device_name(dev)
    meta = {"device": device, "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda or "", "dtype": dtype_name,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    rows: list[dict] = []
    gen = torch.Generator(device=dev).manual_seed(0)

    def record(method: str, shape: tuple[int, int, int], density: float, fn) -> None:
        try:
            seconds = _timer(torch, fn, repeats)
        except (RuntimeError, NotImplementedError) as exc:
            print(f"  {method} {shape} d={density}: not run ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:120]})", file=sys.stderr)
            return
        rows.append({**meta, "method": method, "M": shape[0], "K": shape[1], "N": shape[2],
                     "density": density, "time_s": seconds, "repeats": repeats})
        print(f"  {method:<14} {shape!s:<22} d={density:<6} {seconds * 1e3:9.4f} ms", file=sys.stderr)

    with torch.inference_mode():
        for M, K, N in QUICK_SHAPES if quick else SHAPES:
            shape = (M, K, N)
            w = torch.randn(K, N, device=dev, dtype=dtype, generator=gen)
            base = torch.randn(M, K, device=dev, dtype=dtype, generator=gen)
            record("dense", shape, 1.0, lambda base=base, w=w: base @ w)
            for density in DENSITIES:
                keep = torch.rand(M, K, device=dev, generator=gen) < density
                a = base * keep
                if M == 1:
                    x, wt = a[0], w

                    def gemv(x=x, wt=wt):
                        idx = x.nonzero().squeeze(1)
                        return x.index_select(0, idx) @ wt.index_select(0, idx)

                    record("masked_gemv", shape, density, gemv)
                    continue
                for fmt, convert in (("csr", lambda a: a.to_sparse_csr()),
                                     ("bsr", lambda a: a.to_sparse_bsr(32))):
                    try:
                        sparse = convert(a)
                    except (RuntimeError, NotImplementedError) as exc:
                        print(f"  {fmt} not available for {dtype_name}: {exc}", file=sys.stderr)
                        continue
                    record(f"{fmt}_convert", shape, density, lambda a=a, c=convert: c(a))
                    record(f"{fmt}_spmm", shape, density, lambda s=sparse, w=w: s @ w)
            if M > 1 and dtype != torch.float32:
                from torch.sparse import to_sparse_semi_structured

                a24 = _prune_2_4(torch, base)
                try:
                    sparse = to_sparse_semi_structured(a24)
                except (RuntimeError, ValueError) as exc:
                    print(f"  2:4 not available: {exc}", file=sys.stderr)
                    continue
                record("2of4_compress", shape, 0.5, lambda a24=a24: to_sparse_semi_structured(a24))
                record("2of4_mm", shape, 0.5, lambda sparse=sparse, w=w: torch.mm(sparse, w))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out}: {len(rows)} measurements on {device}", file=sys.stderr)
    return 0


# --- fit ---------------------------------------------------------------------------------------


def fit(csv_path: Path, arch_path: Path) -> dict[str, float]:
    """Per kernel parameter, the value minimising the squared log error to the measurements."""
    from accelsim.engines.gpu import Config
    from accelsim.engines.gpu.kernels import csr_time, dense_time, nm_time, row_skip_time
    from accelsim.engines.shared_gemm_operand import gemm_dims
    from accelsim.kinds import load_arch
    from accelsim.workload.layer import GemmShape, Layer

    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise SystemExit(f"{csv_path}: no measurements")
    arch = load_arch(arch_path)
    if not isinstance(arch, Config):
        raise SystemExit(f"{arch_path}: not a gpu architecture")
    arch = arch.with_dtype(rows[0]["dtype"])
    mc, dt = arch.machine(), arch.dtype

    def dims(r: dict):
        return gemm_dims(Layer("g", "linear", GemmShape(M=int(r["M"]), K=int(r["K"]), N=int(r["N"]))))

    def by(method: str) -> list[dict]:
        return [r for r in rows if r["method"] == method]

    def err(pairs: list[tuple[float, float]]) -> float:
        return sum(math.log(model / float(measured)) ** 2 for model, measured in pairs)

    found: dict[str, float] = {}
    dense = arch.dense_kernel
    big = [r for r in by("dense") if int(r["M"]) > 1]
    if big:
        def dense_err(s: float) -> float:
            k = dense.model_copy(update={"compute_efficiency": {dt: s}})
            return err([(dense_time(dims(r), mc, k).total_s, r["time_s"]) for r in big])

        found[f"dense.compute_efficiency.{dt}"] = golden(dense_err, 0.05, 1.0, iterations=80)
        dense = dense.model_copy(update={"compute_efficiency": {
            **dense.compute_efficiency, dt: found[f"dense.compute_efficiency.{dt}"]}})
    csr_rows = by("csr_spmm")
    if csr_rows and "csr" in arch.kernels:
        csr = arch.kernels["csr"].model_copy(update={"conversion": "none"})

        def csr_err(s: float) -> float:
            k = csr.model_copy(update={"compute_efficiency": {dt: s}})
            return err([(csr_time(dims(r), float(r["density"]), mc, k).total_s, r["time_s"])
                        for r in csr_rows])

        found[f"csr.compute_efficiency.{dt}"] = golden(csr_err, 1e-4, 1.0, iterations=80)
    nm_rows = by("2of4_mm")
    if nm_rows and "2of4" in arch.kernels and mc.sparse_flops_per_s:
        nm = arch.kernels["2of4"].model_copy(update={"conversion": "none"})

        def nm_err(s: float) -> float:
            k = nm.model_copy(update={"compute_efficiency": {dt: s}})
            return err([(nm_time(dims(r), mc, k, dense).total_s, r["time_s"]) for r in nm_rows])

        found[f"2of4.compute_efficiency.{dt}"] = golden(nm_err, 0.05, 1.0, iterations=80)
    gemv_rows = by("masked_gemv")
    if gemv_rows and "act_sparse_gemv" in arch.kernels:
        gemv = arch.kernels["act_sparse_gemv"]

        def gemv_err(bw: float) -> float:
            k = gemv.model_copy(update={"bandwidth_efficiency": bw})
            return err([(row_skip_time(dims(r), float(r["density"]), mc, k).total_s, r["time_s"])
                        for r in gemv_rows])

        found["act_sparse_gemv.bandwidth_efficiency"] = golden(gemv_err, 0.05, 1.0, iterations=80)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="time the kernels on this machine's CUDA GPU")
    m.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_calibration.csv")
    m.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default="fp16")
    m.add_argument("--repeats", type=int, default=20)
    m.add_argument("--quick", action="store_true", help="two small shapes only")
    f = sub.add_parser("fit", help="fit an arch's kernel efficiencies to a measured CSV")
    f.add_argument("csv", type=Path)
    f.add_argument("--arch", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "measure":
        return measure(args.out, args.dtype, args.quick, args.repeats)
    for key, value in fit(args.csv, args.arch).items():
        print(f"{key:<44} {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
