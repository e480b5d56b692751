"""All speed figures side by side: one table on stdout, `benchmarks/results.csv`.

1. Dense systolic on ResNet-18 (21 layers, 128x128 WS) vs SCALE-Sim 3.0.0, full and
   compute-only, identical compute cycles: read from `benchmarks/results/systolic_vs_scalesim.csv`
   (written by `bench_systolic_vs_scalesim.py` in one run on one machine); `--with-scalesim`
   re-runs it first (needs its own SCALE-Sim venv, about 3 minutes).
2. Zero-skip engine (cnvlutin_like, scnn_like, eyeriss_gating, eie_like) on every shipped trace:
   the time of its count step (every layer on the arch and on its dense equivalent, the i.i.d.
   pass for `cycles_if_uniform` included) and of the whole `simulate`, on a freshly loaded copy
   of the trace (nothing served from the engine's per-layer caches; numba already compiled),
   over a plain numpy pass over the same bitmaps (build each layer's non-zero mask and count it:
   the least any trace-driven model must do); the count step again with the traffic model's
   caches emptied before each copy (the tiling searches, keyed by the maps' stored sizes, are
   remembered across copies of one trace but not for a new one); and the peak RSS of eie_like
   and scnn_like on a synthetic lm_head, M64 K640 N262144 (`benchmarks/peak_rss.py`, a fresh
   process each).
   `bench_zero_skip.py` breaks this down further.
3. Analytical layer evaluations per second on the MiniLM trace, per-point path
   (`simulate(workload, arch).totals()` per design point) against the batched path a sweep uses
   (`simulate_totals(workload, archs)`), same run: a grid of systolic points (rows x cols x
   dataflow x timing), of GPU points (SMs x clock x DRAM bandwidth) and of sparse tensor-core
   points (N:M x policy x array size). The per-point path is timed on the first points of each
   grid, the batched one on the whole grid (warm: per-workload statistics already measured);
   systolic also from cold (new arch objects, the traffic model's search caches emptied).
4. Sweep throughput: the shipped 501-point sweep `arch_configs/sweeps/cnvlutin_sweep.yaml` on
   digits_cnn through `run_sweep` with 1 and 2 local workers (pool start-up included; best of
   `--repeat` runs, each with no zero-skip count kept from an earlier one), against the
   per-point path on the first points.
5. CLI start: `accelsim run arch_configs/tpu_like_128x128_ws.yaml workloads/digits_cnn.npz` and
   `accelsim --help` as fresh processes (wall time of the whole process; best and median of
   `--repeat` runs); cold = NUMBA_CACHE_DIR pointed at an empty folder, warm = later runs.

    .venv/bin/python benchmarks/run_all.py [--with-scalesim] [--repeat 3] [--readme]

`--readme` rewrites the table under README.md's `## Speed` heading from the figures just taken.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.arch.schema import ArchBase  # noqa: E402
from accelsim.engines import traffic  # noqa: E402
from accelsim.engines import zero_skip as zero_skip_engine  # noqa: E402
from accelsim.engines.zero_skip import batch as zero_skip_batch  # noqa: E402
from accelsim.kinds import load_arch, parse_arch  # noqa: E402
from accelsim.simulate import simulate, simulate_totals  # noqa: E402
from accelsim.sweep import run_sweep  # noqa: E402
from accelsim.sweep_spec import expand, load_sweep  # noqa: E402
from accelsim.workload import Layer, Workload, load_workload  # noqa: E402
from benchmarks.peak_rss import peak_rss  # noqa: E402
from benchmarks.timing import best_fresh, best_of  # noqa: E402

HERE = Path(__file__).resolve().parent
SCALESIM_CSV = HERE / "results" / "systolic_vs_scalesim.csv"
OUT_CSV = HERE / "results.csv"
SWEEP = ROOT / "arch_configs" / "sweeps" / "cnvlutin_sweep.yaml"
README = ROOT / "README.md"
MINILM = ROOT / "workloads" / "minilm.npz"
TRACES = sorted((ROOT / "workloads").glob("*.npz"))
ZERO_SKIP_CONFIGS = ["cnvlutin_like", "scnn_like", "eyeriss_gating", "eie_like"]


def row(section: str, case: str, metric: str, value: float, unit: str, target: str = "",
        note: str = "") -> dict:
    return {"section": section, "case": case, "metric": metric, "value": value, "unit": unit,
            "target": target, "note": note}


def scalesim(rerun: bool) -> list[dict]:
    if rerun:
        subprocess.run([sys.executable, str(HERE / "bench_systolic_vs_scalesim.py")], check=True)
    df = pd.read_csv(SCALESIM_CSV)
    sec = {(r.tool, r.mode): r.seconds for r in df.itertuples()}
    ours, first = sec[("accelsim", "simulate (warm)")], sec[("accelsim", "simulate (first call)")]
    identical = bool(df["cycles_identical"].all())
    note = f"ResNet-18 21 layers, {df['array'].iloc[0]} {df['dataflow'].iloc[0]}; " \
           f"compute cycles identical: {identical}; from {SCALESIM_CSV.name}"
    full, compute_only = sec[("scalesim-3.0.0", "full")], sec[("scalesim-3.0.0", "compute-only")]
    return [
        row("systolic vs SCALE-Sim", "SCALE-Sim full", "seconds", full, "s", note=note),
        row("systolic vs SCALE-Sim", "SCALE-Sim compute-only", "seconds", compute_only, "s"),
        row("systolic vs SCALE-Sim", "accelsim simulate (warm)", "seconds", ours, "s"),
        row("systolic vs SCALE-Sim", "accelsim simulate (first call)", "seconds", first, "s"),
        row("systolic vs SCALE-Sim", "speed-up vs full", "ratio", full / ours, "x", ">= 100x"),
        row("systolic vs SCALE-Sim", "speed-up vs full (first call)", "ratio", full / first,
            "x"),
        row("systolic vs SCALE-Sim", "speed-up vs compute-only", "ratio", compute_only / ours,
            "x"),
    ]


def numpy_pass(workload: Workload) -> list[int]:
    """The floor any trace-driven model pays: each traced layer's non-zero map made and
    counted."""
    return [np.count_nonzero(x.nonzero()) for x in workload.layers if x.has_trace]


def act_elements(layers: list[Layer]) -> int:
    """Activation elements of `layers`."""
    return sum(math.prod(layer.shape.act_shape) for layer in layers)


def count_step(workload: Workload, arch: ArchBase) -> None:
    """The zero-skip engine's share of `simulate`: every layer on the arch and on its dense
    equivalent (`cycles_if_uniform`'s i.i.d. pass included)."""
    dense = arch.dense_equivalent()
    for layer in workload.layers:
        zero_skip_engine.simulate(layer, arch)
        zero_skip_engine.simulate(layer, dense)


def zero_skip(repeat: int) -> list[dict]:
    rows = []
    for config in ZERO_SKIP_CONFIGS:
        arch = load_arch(ROOT / "arch_configs" / f"{config}.yaml")
        for path in TRACES:
            workload = load_workload(path)
            layers = [layer for layer in workload.layers if layer.has_trace]
            elements = act_elements(layers)
            simulate(workload, arch)
            fresh = partial(load_workload, path)
            floor_s, _ = best_fresh(fresh, numpy_pass, repeat)
            count_s, _ = best_fresh(fresh, lambda w, a=arch: count_step(w, a), repeat)
            unseen_s, _ = best_fresh(partial(_unseen, path),
                                     lambda w, a=arch: count_step(w, a), repeat)
            simulate_s, _ = best_fresh(fresh, lambda w, a=arch: simulate(w, a), repeat)
            case = f"{config} on {path.stem}"
            rows += [
                row("zero-skip speed", case, "act elements/s (count step)", elements / count_s,
                    "1/s", note=f"{elements:,} act elements, {len(workload.layers)} layers"),
                row("zero-skip speed", case, "act elements/s (numpy pass)", elements / floor_s,
                    "1/s"),
                row("zero-skip speed", case, "count step / numpy pass", count_s / floor_s, "x",
                    "<= 3x"),
                row("zero-skip speed", case, "count step, tilings searched again / numpy pass",
                    unseen_s / floor_s, "x"),
                row("zero-skip speed", case, "simulate / numpy pass", simulate_s / floor_s, "x"),
            ]
    for config in ("eie_like", "scnn_like"):
        for case in ("lm_head", "lm_head+weights"):
            rss = peak_rss(config, case)
            rows.append(row("peak memory", f"{config} on {case}", "peak RSS",
                            rss["peak_rss_mb"], "MB", "< 1 GB",
                            f"{rss['rss_before_simulate_mb']:.0f} MB before simulate; linear "
                            "M64 K640 N262144"))
    return rows


def _unseen(path: Path) -> Workload:
    """A fresh copy of the trace at `path` with the traffic model's searches, geometries and
    arch contexts forgotten: its tiling searches, keyed by the stored sizes of the maps, are done
    again, as for a trace this process has not counted."""
    traffic.clear_caches()
    return load_workload(path)


def _variants(base: str, vary: dict[str, list]) -> list:
    """Every combination of `vary` (dotted paths into the base arch) on a shipped config."""
    import itertools

    data = load_arch(ROOT / "arch_configs" / f"{base}.yaml").model_dump(mode="json")
    out = []
    for i, values in enumerate(itertools.product(*vary.values())):
        d = json.loads(json.dumps(data))
        for path, value in zip(vary, values):
            node = d
            *head, last = path.split(".")
            for key in head:
                node = node[int(key)] if key.isdigit() else node[key]
            if isinstance(value, tuple):
                for k, v in zip(last.split("+"), value):
                    node[k] = v
            else:
                node[int(last) if last.isdigit() else last] = value
        d["name"] = f"{base}-{i}"
        out.append(parse_arch(d, f"benchmark point {i}"))
    return out


GRIDS = {
    "systolic": ("tpu_like_128x128_ws", {"rows": [8, 16, 32, 64, 128, 256],
                                         "cols": [8, 16, 32, 64, 128, 256],
                                         "dataflow": ["os", "ws", "is"],
                                         "timing": ["scalesim", "double_buffered"]}, 12),
    "gpu": ("a100", {"num_sms": [40, 80, 108, 132], "clock_mhz": [1000, 1410, 1800],
                     "memory.0.read_bandwidth_bytes_per_cycle": [500.0, 1000.0, 1446.1, 2500.0],
                     "split_k_max": [1, 4, 16], "launch_overhead_s": [2e-6, 4e-6]}, 4),
    "sparse_tensor_core": ("a100_sparse_tc", {"n+m": [(1, 2), (2, 4), (1, 4), (4, 8)],
                                              "policy": ["dense", "prune",
                                                         "compress-if-conforming"],
                                              "dense_macs_per_cycle": [1024, 16384, 110592],
                                              "kernel_launch_cycles": [0.0, 5640.0],
                                              "compute_efficiency": [0.5, 0.804, 1.0]}, 8),
}
"""kind: (shipped config, grid over its fields, points timed on the per-point path)."""


def layer_evals(repeat: int) -> list[dict]:
    workload = load_workload(MINILM)
    layers = len(workload.layers)
    rows = []
    for kind, (base, vary, per_point) in GRIDS.items():
        archs = _variants(base, vary)
        sample = archs[:per_point]
        simulate_totals(workload, archs)
        point_s = best_of(repeat, lambda s=sample: [simulate(workload, a).totals() for a in s])
        batch_s = best_of(repeat, lambda a=archs: simulate_totals(workload, a))
        per_point_rate = len(sample) * layers / point_s
        batched_rate = len(archs) * layers / batch_s
        note = (f"{len(archs)} {base} points x {layers} MiniLM layers batched; "
                f"{len(sample)} points per point")
        rows += [
            row("layer evaluations", kind, "per-point layer-evals/s", per_point_rate, "1/s",
                note=note),
            row("layer evaluations", kind, "batched layer-evals/s", batched_rate, "1/s",
                ">= 1e5"),
            row("layer evaluations", kind, "batched / per-point", batched_rate / per_point_rate,
                "x"),
        ]
        if kind == "systolic":
            fresh = iter([_variants(base, vary) for _ in range(repeat)])

            def cold(fresh=fresh) -> None:
                traffic.clear_caches()
                simulate_totals(workload, next(fresh))

            cold_rate = len(archs) * layers / best_of(repeat, cold)
            rows.append(row("layer evaluations", kind, "batched layer-evals/s (cold)", cold_rate,
                            "1/s", note="new arch objects and the traffic model's caches "
                            "emptied before each batched run (every tiling searched again)"))
    return rows


def sweep(repeat: int) -> list[dict]:
    from accelsim.sweep import run_point

    spec = load_sweep(SWEEP)
    start = time.perf_counter()
    points = expand(spec)
    expand_s = time.perf_counter() - start
    workload = str(spec.workloads[0])
    sample = points[:40]
    run_point(sample[0].arch, workload)
    per_point_s = best_of(repeat, lambda: [_per_point(p.arch, workload) for p in sample])
    per_point_rate = len(sample) / per_point_s
    rows = [row("sweep throughput", f"{len(points)}-point cnvlutin_sweep, per-point path",
                "points/s", per_point_rate, "1/s",
                note=f"simulate().totals() + area on the first {len(sample)} points, warm")]
    def whole_sweep(workers: int) -> None:
        zero_skip_batch.clear_counts()  # every run from cold: no count kept by an earlier one
        with tempfile.TemporaryDirectory() as tmp:
            run_sweep(spec, points, Path(tmp) / "out", workers=workers)

    for workers in (1, 2):
        run_s = best_of(repeat, lambda w=workers: whole_sweep(w))
        rows.append(row("sweep throughput", f"{len(points)}-point cnvlutin_sweep, {workers} "
                        f"worker{'s' if workers > 1 else ''}", "points/s", len(points) / run_s,
                        "1/s", "" if workers == 1 else "> 1 worker",
                        f"best run {run_s:.1f} s incl. journal and pool start-up; "
                        f"expand+validate {expand_s:.1f} s"))
    one, two = rows[1]["value"], rows[2]["value"]
    rows += [row("sweep throughput", "1 worker / per-point path", "ratio", one / per_point_rate,
                 "x"),
             row("sweep throughput", "2 workers / 1 worker", "ratio", two / one, "x", "> 1")]
    return rows


def _per_point(arch_data: dict, workload: str) -> dict:
    """One sweep point the way `accelsim sweep` ran it before batching: a full per-layer run."""
    from accelsim.sweep import _with_area, _workload

    arch = parse_arch(arch_data, "sweep point")
    return _with_area(simulate(_workload(workload), arch).totals(), arch)


def _process_s(cmd: list[str], env: dict, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def cli_start(repeat: int) -> list[dict]:
    run = [sys.executable, "-m", "accelsim.cli", "run", "arch_configs/tpu_like_128x128_ws.yaml",
           "workloads/digits_cnn.npz"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = _process_s(run, env, 1)[0]
        warm = _process_s(run, env, max(3, repeat + 2))
        helps = _process_s([sys.executable, "-m", "accelsim.cli", "--help"], env, 3)
        bare = _process_s([sys.executable, "-c", "import numpy, pydantic"], env, 3)
    load = os.getloadavg()[0]
    note = f"load average {load:.1f} on {os.cpu_count()} cores at the end"
    return [
        row("CLI start", "accelsim run tpu_like digits_cnn (cold, empty numba cache)", "seconds",
            cold, "s", note=note),
        row("CLI start", "accelsim run tpu_like digits_cnn (warm, best)", "seconds", min(warm),
            "s", "< 0.6 s"),
        row("CLI start", "accelsim run tpu_like digits_cnn (warm, median)", "seconds",
            float(np.median(warm)), "s"),
        row("CLI start", "accelsim --help (best)", "seconds", min(helps), "s"),
        row("CLI start", "python -c 'import numpy, pydantic' (best)", "seconds", min(bare), "s",
            note="the floor any command pays"),
    ]


def readme_table(df: pd.DataFrame) -> str:
    """The README's Speed table from the figures of one run."""
    v = {(r.section, r.case, r.metric): r.value for r in df.itertuples()}

    def get(section: str, case: str, metric: str) -> float:
        return v.get((section, case, metric), math.nan)

    lines = ["| what | figure |", "|---|---|"]
    sec = "systolic vs SCALE-Sim"
    if (sec, "SCALE-Sim full", "seconds") in v:
        ours = get(sec, "accelsim simulate (warm)", "seconds")
        same = "compute cycles identical: True" in " ".join(df["note"])
        first = get(sec, "accelsim simulate (first call)", "seconds")
        lines.append(f"| dense systolic, ResNet-18 (21 layers, 128x128 WS) vs SCALE-Sim 3.0.0 full "
                     f"run | {get(sec, 'SCALE-Sim full', 'seconds'):.1f} s vs {ours:.2g} s "
                     f"warm (a repeated `simulate` on the same arch: layer counts remembered) / "
                     f"{first:.2g} s first call: "
                     f"**{get(sec, 'speed-up vs full', 'ratio'):,.0f}x** / "
                     f"{get(sec, 'speed-up vs full (first call)', 'ratio'):,.0f}x"
                     f"{', compute cycles identical on every layer' if same else ''} (from "
                     f"{SCALESIM_CSV.name}) |")
        lines.append(f"| same vs SCALE-Sim compute-only | "
                     f"{get(sec, 'SCALE-Sim compute-only', 'seconds'):.2f} s vs {ours:.2g} s warm: "
                     f"{get(sec, 'speed-up vs compute-only', 'ratio'):,.0f}x |")
    for config in ZERO_SKIP_CONFIGS:
        found = [(p.stem, *(get("zero-skip speed", f"{config} on {p.stem}", m) for m in (
                     "count step / numpy pass", "count step, tilings searched again / numpy pass",
                     "simulate / numpy pass")))
                 for p in TRACES]
        found = [f for f in found if not math.isnan(f[1])]
        if found:
            lines.append(f"| zero-skip `{config}`: count step time over a numpy pass over the "
                         "same bitmaps, on a reloaded trace / with every tiling searched again "
                         "(whole `simulate`, reloaded) | " + ", ".join(
                             f"{t} {c:.2g}x / {u:.2g}x ({w:.2g}x)" for t, c, u, w in found)
                         + " (target <= 3x) |")
    sec = "peak memory"
    peaks = [(c, val) for (s_, c, m), val in v.items() if s_ == sec and m == "peak RSS"]
    if peaks:
        lines.append("| peak RSS of `simulate` on a synthetic lm_head (M64 K640 N262144) | "
                     + ", ".join(f"{c} {val:,.0f} MB" for c, val in peaks)
                     + " (target < 1 GB) |")
    for kind in GRIDS:
        sec = "layer evaluations"
        cold = get(sec, kind, "batched layer-evals/s (cold)")
        lines.append(f"| {kind} layer evaluations/s on MiniLM, per-point / batched | "
                     f"{get(sec, kind, 'per-point layer-evals/s'):,.0f} / "
                     f"**{get(sec, kind, 'batched layer-evals/s'):,.0f}** "
                     f"({get(sec, kind, 'batched / per-point'):.1f}x; target 1e5"
                     + ("" if math.isnan(cold) else
                        f"; {cold:,.0f} batched with every tiling searched again") + ") |")
    sec = "sweep throughput"
    cases = sorted(c for s_, c, m in v if s_ == sec and m == "points/s")
    per_point = next((c for c in cases if "per-point" in c), None)
    one = next((c for c in cases if c.endswith(", 1 worker")), None)
    two = next((c for c in cases if c.endswith(", 2 workers")), None)
    if per_point and one and two:
        lines.append(f"| shipped 501-point cnvlutin sweep, points/s: per-point path / 1 worker / "
                     f"2 workers | {get(sec, per_point, 'points/s'):.0f} / "
                     f"{get(sec, one, 'points/s'):.0f} / {get(sec, two, 'points/s'):.0f} "
                     f"({get(sec, '1 worker / per-point path', 'ratio'):.1f}x, 2 workers / 1: "
                     f"{get(sec, '2 workers / 1 worker', 'ratio'):.2f}x) |")
    sec = "CLI start"
    run = "accelsim run tpu_like digits_cnn"
    best, median = get(sec, f"{run} (warm, best)", "seconds"), get(sec, f"{run} (warm, median)",
                                                                    "seconds")
    cold = get(sec, f"{run} (cold, empty numba cache)", "seconds")
    lines.append(f"| `accelsim run tpu_like_128x128_ws digits_cnn` whole process, warm best / "
                 f"median / cold | {best:.2f} s / {median:.2f} s / {cold:.2f} s (target < 0.6 s) |")
    floor = get(sec, "python -c 'import numpy, pydantic' (best)", "seconds")
    lines.append(f"| `accelsim --help` / `python -c 'import numpy, pydantic'` | "
                 f"{get(sec, 'accelsim --help (best)', 'seconds'):.2f} s / {floor:.2f} s |")
    return "\n".join(lines)


def write_readme(df: pd.DataFrame, load: str) -> None:
    """Replace the table under `## Speed` in README.md (the lines starting with '|')."""
    text = README.read_text()
    head = text.index("\n## Speed\n")
    start = text.index("\n|", head) + 1
    end = start
    while end < len(text) and text.startswith("|", end):
        end = text.index("\n", end) + 1
    intro_end = text.rfind("\n", head, start - 1)
    intro = text[head:intro_end]
    lead = intro.rsplit("Latest figures", 1)[0]
    intro = f"{lead}Latest figures, {os.cpu_count()} cores\n({load}):\n\n"
    README.write_text(text[:head] + intro + readme_table(df) + "\n" + text[end:])
    print(f"rewrote the Speed table of {README}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-scalesim", action="store_true",
                        help="re-run SCALE-Sim first (own venv, ~3 min)")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best of)")
    parser.add_argument("--readme", action="store_true",
                        help="rewrite README.md's Speed table from this run")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    rows = scalesim(args.with_scalesim)
    for step in (lambda: zero_skip(args.repeat), lambda: layer_evals(args.repeat),
                 lambda: sweep(args.repeat), lambda: cli_start(args.repeat)):
        rows += step()
    df = pd.DataFrame(rows)
    df.to_csv(OUT_CSV, index=False)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60,
                           "display.float_format", "{:,.4g}".format):
        print(df.drop(columns="note").to_string(index=False))
    for note in df["note"][df["note"] != ""]:
        print(f"  note: {note}")
    print(f"wrote {OUT_CSV}")
    if args.readme:
        write_readme(df, f"load average {load_start:.1f} at the start, "
                         f"{os.getloadavg()[0]:.1f} at the end of the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
