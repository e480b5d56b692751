"""Sweep throughput of this checkout against an earlier commit, in one run: the shipped 501-point
`arch_configs/sweeps/cnvlutin_sweep.yaml` on digits_cnn through each tree's own `run_sweep`
(a git worktree of the commit beside this checkout, same venv), a fresh process per
measurement, the two trees alternated round by round. Each figure is the best of `--repeat`
sweeps in that process (no zero-skip count kept from an earlier one, pool start-up included),
after one untimed sweep per tree that fills its numba cache. An older tree that fails after
writing its points (e.g. its summary step under a newer pandas) is timed to the failure, its
points counted from the journal; the error is shown.

    .venv/bin/python benchmarks/sweep_against.py 15964b7 [--rounds 2] [--repeat 3]

Prints points/s per tree and worker count and writes `benchmarks/results/sweep_against.csv`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.timing import write_csv  # noqa: E402

OUT_CSV = ROOT / "benchmarks" / "results" / "sweep_against.csv"

SWEEP_SCRIPT = """
import json, math, sys, tempfile, time
from pathlib import Path
root = Path(sys.argv[1])
sys.path.insert(0, str(root))
from accelsim.sweep import run_sweep
from accelsim.sweep_spec import expand, load_sweep
try:
    from accelsim.engines.zero_skip.batch import clear_counts
except ImportError:
    def clear_counts():
        pass
spec = load_sweep(root / "arch_configs" / "sweeps" / "cnvlutin_sweep.yaml")
points = expand(spec)
workers, repeat = int(sys.argv[2]), int(sys.argv[3])
best, error, done = math.inf, "", 0
for _ in range(repeat):
    clear_counts()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        try:
            run_sweep(spec, points, Path(tmp) / "out", workers=workers)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:120]
        best = min(best, time.perf_counter() - start)
        done = sum(1 for _ in open(Path(tmp) / "out" / "points.jsonl"))
print(json.dumps({"points": done, "seconds": best, "error": error}))
"""


def timed_sweep(tree: Path, workers: int, repeat: int) -> dict:
    """{points, seconds, error} of the best of `repeat` sweeps of `tree`'s code."""
    out = subprocess.run([sys.executable, "-c", SWEEP_SCRIPT, str(tree), str(workers),
                          str(repeat)], cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the earlier commit, e.g. 15964b7")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="sweeps per process (best of)")
    args = parser.parse_args(argv)
    rev = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    here = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / rev
        subprocess.run(["git", "worktree", "add", "--detach", str(old), rev], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            trees = {rev: old, f"{here} (this checkout)": ROOT}
            for tree in trees.values():
                timed_sweep(tree, 1, 1)
            for rnd in range(1, args.rounds + 1):
                for name, tree in trees.items():
                    for workers in (1, 2):
                        got = timed_sweep(tree, workers, args.repeat)
                        rows.append({"round": rnd, "tree": name, "workers": workers,
                                     "points": got["points"], "best_s": round(got["seconds"], 3),
                                     "points_per_s": round(got["points"] / got["seconds"], 1),
                                     "error": got["error"]})
                        print(f"round {rnd}  {name:24s} {workers} worker(s)  "
                              f"{rows[-1]['points_per_s']:8.1f} points/s  {got['error']}",
                              flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT,
                           check=False, capture_output=True)
    best = {}
    for r in rows:
        key = (r["tree"], r["workers"])
        best[key] = max(best.get(key, 0.0), r["points_per_s"])
    for workers in (1, 2):
        ours = best[(f"{here} (this checkout)", workers)]
        print(f"{workers} worker(s): {ours:.0f} points/s here, {ours / best[(rev, 1)]:.1f}x "
              f"{rev}'s best with 1 worker, {ours / best[(rev, workers)]:.1f}x with {workers}")
    write_csv(OUT_CSV, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
