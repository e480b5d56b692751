"""DRAM traffic under `tiling: scalesim` against the real SCALE-Sim 3.0.0 on held-out cases:
shapes, arrays and SRAM sizes drawn apart from the reference table the rules were read against.

60 cases (seed `SEED`): non-square arrays (8x32, 32x8, 16x64, 12x14, 4x32, 64x16, 24x24, 16x16),
each SRAM 8-256 KiB on its own, convs (H, W 4-40, R in 1/3/5/7, stride 1-3, C, K 1-160),
single-channel single-filter convs (a depthwise layer's groups) and GEMMs (M, N 8-400, K 8-600),
all three dataflows, CALC bandwidth mode; cases estimated above 60,000 cycles are redrawn. Each
runs through `scalesim_runner.py` in SCALE-Sim's own venv. Prints the share of cases within 25 %
per operand and writes `benchmarks/results/scalesim_traffic_holdout.csv`.

    .venv/bin/python benchmarks/scalesim_traffic_holdout.py [--scalesim-python PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from make_scalesim_reference import RUNNER, scalesim_python  # noqa: E402

from accelsim.engines import traffic  # noqa: E402
from accelsim.engines.shared_gemm_operand import gemm_problem  # noqa: E402
from accelsim.kinds import parse_arch  # noqa: E402
from accelsim.workload import GemmShape, Layer  # noqa: E402
from accelsim.workload.scalesim_import import scalesim_conv_shape  # noqa: E402

SEED = 7
CASES = 60
OUT_CSV = HERE / "results" / "scalesim_traffic_holdout.csv"
ARRAYS = ((8, 32), (32, 8), (16, 64), (12, 14), (4, 32), (64, 16), (24, 24), (16, 16))
SRAM_KB = (8, 16, 32, 64, 128, 256)
MAX_CYCLES = 60000


def rough_cycles(pixels: int, window: int, filters: int, rows: int, cols: int, df: str) -> int:
    sr, sc, t = {"os": (pixels, filters, window), "ws": (window, filters, pixels),
                 "is": (window, pixels, filters)}[df]
    return math.ceil(sr / rows) * math.ceil(sc / cols) * (t + 2 * rows + cols)


def draw_cases() -> list[dict]:
    rng = random.Random(SEED)
    cases: list[dict] = []
    while len(cases) < CASES:
        kind = rng.choice(["conv", "conv", "single", "gemm"])
        rows, cols = rng.choice(ARRAYS)
        df = rng.choice(["os", "ws", "is"])
        kb = [rng.choice(SRAM_KB) for _ in range(3)]
        if kind == "gemm":
            m, n, k = rng.randint(8, 400), rng.randint(8, 400), rng.randint(8, 600)
            work = (m, k, n)
            case: dict = {"kind": "gemm", "M": m, "N": n, "K": k}
        else:
            r, st = rng.choice([1, 3, 5, 7]), rng.randint(1, 3)
            h, w = rng.randint(max(r, 4), 40), rng.randint(max(r, 4), 40)
            c = 1 if kind == "single" else rng.randint(1, 160)
            k = 1 if kind == "single" else rng.randint(1, 160)
            e, f = -(-(h - r + st) // st), -(-(w - r + st) // st)
            work = (e * f, r * r * c, k)
            case = {"kind": "conv", "H": h, "W": w, "R": r, "S": r, "C": c, "K": k, "stride": st}
        if rough_cycles(*work, rows, cols, df) > MAX_CYCLES:
            continue
        case.update({"name": f"holdout_{len(cases):03d}.{df}", "rows": rows, "cols": cols,
                     "dataflow": df, "ifmap_sram_kb": kb[0], "filter_sram_kb": kb[1],
                     "ofmap_sram_kb": kb[2]})
        cases.append(case)
    return cases


def ours(case: dict) -> dict:
    if case["kind"] == "gemm":
        layer = Layer("g", "linear", GemmShape(M=case["M"], K=case["K"], N=case["N"]))
    else:
        layer = Layer("c", "conv2d", scalesim_conv_shape(case["H"], case["W"], case["R"],
                                                         case["S"], case["C"], case["K"],
                                                         case["stride"]))
    memory = [{"name": "dram", "kind": "dram", "dram_type": "lpddr4",
               "read_bandwidth_bytes_per_cycle": 64}]
    for name, op in (("ifmap", "act"), ("filter", "weight"), ("ofmap", "out")):
        memory.append({"name": name, "kind": "sram", "size_bytes": case[f"{name}_sram_kb"] * 1024,
                       "read_bandwidth_bytes_per_cycle": 64, "holds": [op]})
    arch = parse_arch({"name": "s", "kind": "systolic", "clock_mhz": 100, "rows": case["rows"],
                       "cols": case["cols"], "dataflow": case["dataflow"], "memory": memory,
                       "tiling": "scalesim",
                       "precision": {"act_bits": 8, "weight_bits": 8, "acc_bits": 8}})
    t = traffic.layer_traffic(layer, arch, gemm_problem(layer), arch.rows, arch.cols,
                              arch.dataflow, "scalesim")
    return {"act": t.reads["dram", "act"], "weight": t.reads["dram", "weight"],
            "out": t.writes["dram", "out"] + t.writes["dram", "psum"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scalesim-python", default=None)
    args = parser.parse_args(argv)
    cases = draw_cases()
    done = subprocess.run([scalesim_python(args.scalesim_python), str(RUNNER)],
                          input=json.dumps(cases), capture_output=True, text=True, check=True)
    results = json.loads(done.stdout)["results"]
    rows = []
    for case, res in zip(cases, results, strict=True):
        mine = ours(case)
        rows.append({**case, "dram_ifmap_reads": res["dram_ifmap_reads"],
                     "dram_filter_reads": res["dram_filter_reads"],
                     "dram_ofmap_writes": res["dram_ofmap_writes"],
                     "ours_ifmap_reads": mine["act"], "ours_filter_reads": mine["weight"],
                     "ours_ofmap_writes": mine["out"]})
    table = pd.DataFrame(rows)
    OUT_CSV.parent.mkdir(exist_ok=True)
    table.to_csv(OUT_CSV, index=False)
    for theirs, mine in (("dram_ifmap_reads", "ours_ifmap_reads"),
                         ("dram_filter_reads", "ours_filter_reads"),
                         ("dram_ofmap_writes", "ours_ofmap_writes")):
        ratio = table[mine] / table[theirs]
        print(f"{theirs}: {ratio.between(0.8, 1.25).mean():.1%} within 25 %, "
              f"{((ratio > 2) | (ratio < 0.5)).sum()} beyond 2x, "
              f"range {ratio.min():.3f}-{ratio.max():.3f}")
    print(f"wrote {OUT_CSV.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
