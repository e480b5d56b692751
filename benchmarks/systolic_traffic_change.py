"""How the results of one kind moved with the tiling traffic model: every shipped config of the
kind (`--kind`, systolic by default) on every shipped trace, totals (cycles, energy, DRAM bytes)
of this tree against a git revision, and the wall time of one warm `simulate` of each
(`simulate_s`, one run on this machine: read the ratio, not the seconds).

The revision's `accelsim/` and `arch_configs/tech/` are unpacked with `git archive` into a
temporary folder and run in a subprocess with that folder first on `sys.path`, so both sides run
on this machine in one invocation; config keys the old code does not know (`tiling`, `pe`) are
left out on its side. Writes `benchmarks/results/<kind>_traffic_change.csv`.

    .venv/bin/python benchmarks/systolic_traffic_change.py [--before 276ebbc^]
    .venv/bin/python benchmarks/systolic_traffic_change.py --kind zero_skip --before 6a0d962^
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NEW_KEYS = ("tiling", "pe")
"""Config keys the revision before the tiling model does not know."""

TOTALS = r'''
import glob, json, sys, time
import yaml
from accelsim.kinds import parse_arch
from accelsim.simulate import simulate
from accelsim.workload import load_workload
root, drop, kind = sys.argv[1], sys.argv[2].split(",") if sys.argv[2] else [], sys.argv[3]
out = {}
for cfg in sorted(glob.glob(root + "/arch_configs/*.yaml")):
    spec = yaml.safe_load(open(cfg))
    if spec.get("kind") != kind:
        continue
    for key in drop:
        spec.pop(key, None)
    arch = parse_arch(spec)
    for trace in sorted(glob.glob(root + "/workloads/*.npz")):
        workload = load_workload(trace)
        simulate(workload, arch)  # warm: imports, tech tables, caches of the first run
        start = time.perf_counter()
        tot = simulate(workload, arch).totals()
        wall = time.perf_counter() - start
        out[cfg.rsplit("/", 1)[1] + "|" + trace.rsplit("/", 1)[1]] = {
            **{k: tot[k] for k in ("cycles", "energy_pj", "dram_bytes")}, "simulate_s": wall}
print(json.dumps(out))
'''


def totals(python_path: Path | None, drop: tuple[str, ...], kind: str) -> dict:
    """{'config|trace': {cycles, energy_pj, dram_bytes}} of the configs of `kind` from the code
    at `python_path` (this tree when None)."""
    env_path = [str(python_path)] if python_path else []
    cmd = [sys.executable, "-c", f"import sys; sys.path[:0] = {env_path!r}\n{TOTALS}",
           str(ROOT), ",".join(drop), kind]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir())
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="276ebbc^",
                        help="git revision to compare with (default: before the tiling model)")
    parser.add_argument("--kind", default="systolic",
                        help="the kind of the configs compared (default: systolic)")
    args = parser.parse_args(argv)
    out_csv = RESULTS / f"{args.kind}_traffic_change.csv"
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", args.before, "accelsim", "arch_configs/tech"],
                                 cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        before = totals(Path(tmp), NEW_KEYS, args.kind)
    after = totals(None, (), args.kind)
    rows = []
    for key, old in before.items():
        config, trace = key.split("|")
        new = after[key]
        rows.append({"config": config, "trace": trace,
                     **{f"{k}_before": old[k] for k in old}, **{f"{k}_after": new[k] for k in new},
                     **{f"{k}_ratio": new[k] / old[k] if old[k] else float("nan") for k in old}})
    table = pd.DataFrame(rows)
    out_csv.parent.mkdir(exist_ok=True)
    table.to_csv(out_csv, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[["config", "trace", "cycles_ratio", "energy_pj_ratio", "dram_bytes_ratio",
                     "simulate_s_ratio"]]
              .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out_csv.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
