"""Time the dense systolic model against SCALE-Sim 3.0.0 on ResNet-18's 21 layers, one run.

Both tools run on this machine in the same invocation: SCALE-Sim in its own virtual env
(`benchmarks/scalesim_env.sh`), once in full (compute + memory model) and once compute-only
(its own classes up to the demand matrices). accelsim is timed as `simulate()` on the imported
topology (counts, energy and the result table), warm, best of `--repeat`. The script checks
that compute cycles are identical layer by layer, prints the speed ratios, and writes
`benchmarks/results/systolic_vs_scalesim.csv`.

    python benchmarks/bench_systolic_vs_scalesim.py [--dataflow ws] [--rows 128 --cols 128]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_scalesim_reference import (  # noqa: E402
    RUNNER,
    resnet18_layers,
    scalesim_python,
    write_topology_csv,
)
from timing import best_of  # noqa: E402

from accelsim.engines import systolic  # noqa: E402
from accelsim.engines.shared_gemm_operand import gemm_problem  # noqa: E402
from accelsim.kinds import parse_arch  # noqa: E402
from accelsim.simulate import simulate  # noqa: E402
from accelsim.workload.scalesim_import import read_scalesim_topology  # noqa: E402

OUT_CSV = HERE / "results" / "systolic_vs_scalesim.csv"


def run_scalesim(python: str, topology: Path, rows: int, cols: int, dataflow: str,
                 compute_only: bool) -> tuple[dict, float]:
    """SCALE-Sim's JSON output for the whole topology and the wall seconds of the subprocess."""
    cmd = [python, str(RUNNER), "--topology", str(topology), "--rows", str(rows),
           "--cols", str(cols), "--dataflow", dataflow]
    if compute_only:
        cmd.append("--compute-only")
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--cols", type=int, default=128)
    parser.add_argument("--dataflow", choices=["os", "ws", "is"], default="ws")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--scalesim-python", help="python of the SCALE-Sim env (default: create it)")
    args = parser.parse_args(argv)

    python = scalesim_python(args.scalesim_python)
    arch = parse_arch({"name": f"systolic-{args.rows}x{args.cols}-{args.dataflow}",
                       "kind": "systolic", "clock_mhz": 1000, "rows": args.rows,
                       "cols": args.cols, "dataflow": args.dataflow})
    with tempfile.TemporaryDirectory(prefix="bench-systolic-") as tmp:
        topology = Path(tmp) / "resnet18.csv"
        write_topology_csv(resnet18_layers(), topology)
        workload = read_scalesim_topology(topology)
        print(f"SCALE-Sim 3.0.0 full run, ResNet-18, {args.rows}x{args.cols} {args.dataflow} ...",
              file=sys.stderr)
        full, full_wall_s = run_scalesim(python, topology, args.rows, args.cols, args.dataflow, False)
        print("SCALE-Sim compute-only run ...", file=sys.stderr)
        comp, comp_wall_s = run_scalesim(python, topology, args.rows, args.cols, args.dataflow, True)

    start = time.perf_counter()
    result = simulate(workload, arch)
    first_s = time.perf_counter() - start
    ours_full_s = best_of(args.repeat, lambda: simulate(workload, arch))
    problems = [gemm_problem(layer) for layer in workload.layers]
    ours_compute_s = best_of(args.repeat, lambda: [
        systolic.compute_cycles(p, args.rows, args.cols, args.dataflow) for p in problems])

    ours_cycles = [int(c) for c in result.layers["compute_cycles"]]
    theirs = [int(r["total_cycles"]) - int(r["stall_cycles"] or 0) for r in full["results"]]
    theirs_comp = [int(r["total_cycles"]) for r in comp["results"]]
    identical = ours_cycles == theirs == theirs_comp
    rows = [
        {"tool": "scalesim-3.0.0", "mode": "full", "seconds": full["wall_s"],
         "process_seconds": full_wall_s},
        {"tool": "scalesim-3.0.0", "mode": "compute-only", "seconds": comp["wall_s"],
         "process_seconds": comp_wall_s},
        {"tool": "accelsim", "mode": "simulate (warm)", "seconds": ours_full_s,
         "process_seconds": ""},
        {"tool": "accelsim", "mode": "simulate (first call)", "seconds": first_s,
         "process_seconds": ""},
        {"tool": "accelsim", "mode": "compute cycles only", "seconds": ours_compute_s,
         "process_seconds": ""},
    ]
    for row in rows:
        row.update(layers=len(workload.layers), array=f"{args.rows}x{args.cols}",
                   dataflow=args.dataflow, cycles_identical=identical)
    OUT_CSV.parent.mkdir(exist_ok=True)
    with open(OUT_CSV, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    print(f"ResNet-18 ({len(workload.layers)} layers), {args.rows}x{args.cols}, {args.dataflow}")
    for row in rows:
        print(f"  {row['tool']:<15} {row['mode']:<22} {row['seconds']:.6f} s")
    print(f"  compute cycles identical on every layer: {identical} (total {sum(ours_cycles):,})")
    print(f"  speed-up, accelsim simulate vs SCALE-Sim full run:      "
          f"{full['wall_s'] / ours_full_s:,.0f}x")
    print(f"  speed-up, accelsim simulate vs SCALE-Sim compute-only:  "
          f"{comp['wall_s'] / ours_full_s:,.0f}x")
    print(f"  speed-up, compute cycles only vs SCALE-Sim compute-only: "
          f"{comp['wall_s'] / ours_compute_s:,.0f}x")
    print(f"wrote {OUT_CSV}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
