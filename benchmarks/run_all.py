"""All speed figures side by side: one table on stdout, `benchmarks/results.csv`.

1. Dense systolic on ResNet-18 (21 layers, 128x128 WS) vs SCALE-Sim 3.0.0, full and
   compute-only, identical compute cycles: read from `benchmarks/results/systolic_vs_scalesim.csv`
   (written by `bench_systolic_vs_scalesim.py` in one run on one machine); `--with-scalesim`
   re-runs it first (needs its own SCALE-Sim venv, about 3 minutes).
2. Zero-skip engine (cnvlutin_like) on every shipped trace: activation elements per second of a
   warm `simulate`, against a plain numpy pass over the same bitmaps (build each layer's
   non-zero mask and count it: the least any trace-driven model must do).
3. Sweep throughput: the shipped 500-point sweep `arch_configs/sweeps/cnvlutin_sweep.yaml` on
   digits_cnn with the local pool (`--workers`, default 2), pool start-up included.
4. CLI cold vs warm start: `accelsim run arch_configs/cnvlutin_like.yaml workloads/digits_cnn.npz`
   as a fresh process; cold = NUMBA_CACHE_DIR pointed at an empty folder (JIT compile), warm =
   the second run on that cache.

    .venv/bin/python benchmarks/run_all.py [--with-scalesim] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.kinds import load_arch  # noqa: E402
from accelsim.simulate import simulate  # noqa: E402
from accelsim.sweep import run_sweep  # noqa: E402
from accelsim.sweep_spec import expand, load_sweep  # noqa: E402
from accelsim.workload import load_workload  # noqa: E402
from benchmarks.timing import best_of  # noqa: E402

HERE = Path(__file__).resolve().parent
SCALESIM_CSV = HERE / "results" / "systolic_vs_scalesim.csv"
OUT_CSV = HERE / "results.csv"
SWEEP = ROOT / "arch_configs" / "sweeps" / "cnvlutin_sweep.yaml"
TRACES = ["digits_cnn", "minilm", "efficientnet_lite0", "crepe_full"]


def row(section: str, case: str, metric: str, value: float, unit: str, target: str = "",
        note: str = "") -> dict:
    return {"section": section, "case": case, "metric": metric, "value": value, "unit": unit,
            "target": target, "note": note}


def scalesim(rerun: bool) -> list[dict]:
    if rerun:
        subprocess.run([sys.executable, str(HERE / "bench_systolic_vs_scalesim.py")], check=True)
    df = pd.read_csv(SCALESIM_CSV)
    sec = {(r.tool, r.mode): r.seconds for r in df.itertuples()}
    ours = sec[("accelsim", "simulate (warm)")]
    identical = bool(df["cycles_identical"].all())
    note = f"ResNet-18 21 layers, {df['array'].iloc[0]} {df['dataflow'].iloc[0]}; " \
           f"compute cycles identical: {identical}; from {SCALESIM_CSV.name}"
    full, compute_only = sec[("scalesim-3.0.0", "full")], sec[("scalesim-3.0.0", "compute-only")]
    return [
        row("systolic vs SCALE-Sim", "SCALE-Sim full", "seconds", full, "s", note=note),
        row("systolic vs SCALE-Sim", "SCALE-Sim compute-only", "seconds", compute_only, "s"),
        row("systolic vs SCALE-Sim", "accelsim simulate (warm)", "seconds", ours, "s"),
        row("systolic vs SCALE-Sim", "speed-up vs full", "ratio", full / ours, "x", ">= 100x"),
        row("systolic vs SCALE-Sim", "speed-up vs compute-only", "ratio", compute_only / ours,
            "x"),
    ]


def zero_skip(repeat: int) -> list[dict]:
    arch = load_arch(ROOT / "arch_configs" / "cnvlutin_like.yaml")
    rows = []
    for name in TRACES:
        path = ROOT / "workloads" / f"{name}.npz"
        if not path.is_file():
            continue
        workload = load_workload(path)
        layers = [layer for layer in workload.layers if layer.has_trace]
        elements = sum(math.prod(layer.shape.act_shape) for layer in layers)
        simulate(workload, arch)
        engine_s = best_of(repeat, lambda w=workload: simulate(w, arch))
        floor_s = best_of(repeat, lambda ls=layers: [np.count_nonzero(x.nonzero()) for x in ls])
        rows += [
            row("zero-skip speed", name, "act elements/s (engine)", elements / engine_s, "1/s",
                note=f"{elements:,} act elements, {len(workload.layers)} layers, cnvlutin_like"),
            row("zero-skip speed", name, "act elements/s (numpy pass)", elements / floor_s, "1/s"),
            row("zero-skip speed", name, "numpy pass / engine time", floor_s / engine_s, "ratio",
                "1.0 = at the floor"),
        ]
    return rows


def sweep(workers: int) -> list[dict]:
    spec = load_sweep(SWEEP)
    start = time.perf_counter()
    points = expand(spec)
    expand_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_sweep(spec, points, Path(tmp) / "out", workers=workers)
        run_s = time.perf_counter() - start
    return [
        row("sweep throughput", f"{len(points)} points, digits_cnn, {workers} workers",
            "points/s", len(points) / run_s, "1/s",
            note=f"run {run_s:.1f} s incl. pool start-up; expand+validate {expand_s:.1f} s"),
    ]


def cli_start() -> list[dict]:
    cmd = [sys.executable, "-m", "accelsim.cli", "run", "arch_configs/cnvlutin_like.yaml",
           "workloads/digits_cnn.npz", "--format", "csv"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return [
        row("CLI start", "accelsim run digits_cnn (cold, empty numba cache)", "seconds",
            times[0], "s"),
        row("CLI start", "accelsim run digits_cnn (warm, numba cache)", "seconds",
            min(times[1:]), "s", "< 2 s"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-scalesim", action="store_true",
                        help="re-run SCALE-Sim first (own venv, ~3 min)")
    parser.add_argument("--workers", type=int, default=2, help="sweep workers (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best of)")
    args = parser.parse_args(argv)
    rows = scalesim(args.with_scalesim)
    for step in (lambda: zero_skip(args.repeat), lambda: sweep(args.workers), cli_start):
        rows += step()
    df = pd.DataFrame(rows)
    df.to_csv(OUT_CSV, index=False)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60,
                           "display.float_format", "{:,.4g}".format):
        print(df.drop(columns="note").to_string(index=False))
    for note in df["note"][df["note"] != ""]:
        print(f"  note: {note}")
    print(f"wrote {OUT_CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
