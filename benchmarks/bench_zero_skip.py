"""Speed and memory of the zero-skip engine, and the trace-vs-uniform gap on the shipped traces.

1. Floor fractions: for every zero-skip config on every shipped trace in `workloads/`, the
   warm time of counting the workload (the engine on the arch and on its dense equivalent,
   layer by layer, as `accelsim.simulate` asks it, the i.i.d. rerun for `cycles_if_uniform`
   included), of the trace pass alone (`count_layer` on the real maps) and of the whole
   `simulate`, each over the time of a bare numpy pass over the same bitmaps (each traced
   layer's non-zero map made and counted, `np.count_nonzero(layer.nonzero())`, as
   `benchmarks/run_all.py` measures it), all in the same run; best of --repeat, every repeat on
   freshly loaded layers (nothing served from the engine's per-layer caches), repeated until the
   repeats add up to 0.3 s for short cases (`benchmarks.timing.best_fresh`). The first
   `simulate` of each config is timed too (numba compiles into an empty cache).
2. Peak RSS (a subprocess per case, its `VmHWM`; Linux): every config on the largest shipped
   layer (most activation plus weight elements) and on a synthetic lm_head, linear M64 K640
   N262144 at 50 % random activation density, without and with a traced 50 % weight mask.
3. Per dataflow, the numba path against its slow twin (tests/reference.py) on a small real map.
4. The per-layer table of cycles on the real trace next to `cycles_if_uniform`.

    .venv/bin/python benchmarks/bench_zero_skip.py [--out benchmarks/results] [--repeat 3]
        [--no-rss]

Writes `zero_skip_speed.csv`, `zero_skip_rss.csv` and `zero_skip_gap.csv` under --out and prints
them.
"""

from __future__ import annotations

import os
import tempfile

os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="accelsim-numba-cold-")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.engines.zero_skip.count import count_layer  # noqa: E402
from accelsim.engines.zero_skip.work import conv_view, operand_masks  # noqa: E402
from accelsim.kinds import load_arch  # noqa: E402
from accelsim.simulate import simulate  # noqa: E402
from accelsim.workload import Layer, load_workload  # noqa: E402
from benchmarks.peak_rss import peak_rss  # noqa: E402
from benchmarks.run_all import ZERO_SKIP_CONFIGS, act_elements, count_step, numpy_pass  # noqa: E402
from benchmarks.timing import best_fresh  # noqa: E402
from tests import reference  # noqa: E402


def floor_fraction_rows(paths: list[Path], repeat: int) -> tuple[list[dict], list[pd.DataFrame]]:
    rows, results = [], []
    archs = {cfg: load_arch(ROOT / "arch_configs" / f"{cfg}.yaml") for cfg in ZERO_SKIP_CONFIGS}
    for cfg, arch in archs.items():
        start = time.perf_counter()
        simulate(load_workload(paths[0]), arch)
        archs[cfg] = (arch, time.perf_counter() - start)
    for path in paths:
        wl = load_workload(path)
        layers = [x for x in wl.layers if x.has_trace]
        elements = act_elements(layers)
        fresh = partial(load_workload, path)
        floor_s, _ = best_fresh(fresh, numpy_pass, repeat)
        for cfg, (arch, cold_s) in archs.items():
            count_step(fresh(), arch)   # compiles what this trace needs
            engine_s, _ = best_fresh(fresh, lambda w, a=arch: count_step(w, a), repeat)
            trace_s, _ = best_fresh(fresh, lambda w, a=arch: [count_layer(x, a)
                                                              for x in w.layers], repeat)
            sim_s, result = best_fresh(fresh, lambda w, a=arch: simulate(w, a), repeat)
            rows.append({"workload": path.stem, "config": cfg, "layers": len(wl.layers),
                         "act_elements": elements, "floor_s": floor_s, "engine_s": engine_s,
                         "trace_pass_s": trace_s, "simulate_s": sim_s,
                         "engine_over_floor": engine_s / floor_s,
                         "trace_pass_over_floor": trace_s / floor_s,
                         "simulate_over_floor": sim_s / floor_s,
                         "act_elements_per_s": elements / engine_s,
                         "first_simulate_s": cold_s if path == paths[0] else float("nan")})
            results.append(result.layers.assign(workload=path.stem, config=cfg))
    return rows, results


def largest_layer(paths: list[Path]) -> str:
    """'path:layer' of the shipped layer with the most activation plus weight elements."""
    best, where = -1, ""
    for path in paths:
        for layer in load_workload(path).layers:
            size = math.prod(layer.shape.act_shape) + math.prod(layer.shape.weight_shape)
            if size > best:
                best, where = size, f"{path.relative_to(ROOT)}:{layer.name}"
    return where


def rss_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for case in [largest_layer(paths), "lm_head", "lm_head+weights"]:
        for cfg in ZERO_SKIP_CONFIGS:
            rows.append({"case": case, "config": cfg, **peak_rss(cfg, case)})
    return rows


def twin_rows(layer: Layer) -> list[dict]:
    """Numba path (engine count, which includes the bitmap preparation) vs reference twin."""
    v = conv_view(layer, *operand_masks(layer))
    vp = conv_view(layer, *operand_masks(layer), planar=True)
    cases = {
        "cnvlutin_like": lambda: reference.channel_lanes_reference(
            v.act, v.K, v.R, v.S, v.groups, v.stride, v.padding, v.dilation, 16, 16, 256, True,
            True, 1, 1),
        "scnn_like": lambda: reference.planar_cartesian_reference(
            vp.act, vp.weight, vp.groups, vp.stride, vp.padding, vp.dilation, 8, 8, 4, 4, 1024,
            True, True, True, -1, 0),
        "eie_like": lambda: reference.row_broadcast_reference(
            v.act, v.weight, v.groups, v.stride, v.padding, v.dilation, 64, True, True, True, 8, 1),
    }
    rows = []
    elements = act_elements([layer])
    for cfg, ref in cases.items():
        arch = load_arch(ROOT / "arch_configs" / f"{cfg}.yaml")
        start = time.perf_counter()
        res = count_layer(layer, arch)
        fast = time.perf_counter() - start
        start = time.perf_counter()
        ref_cycles = ref()[0]
        slow = time.perf_counter() - start
        assert res.compute_cycles == ref_cycles, (cfg, res.compute_cycles, ref_cycles)
        rows.append({"workload": layer.name, "config": cfg, "act_elements": elements,
                     "engine_s": fast, "reference_s": slow,
                     "reference_over_engine": slow / fast})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best of)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    args = parser.parse_args()
    paths = sorted((ROOT / "workloads").glob("*.npz"))
    if not paths:
        print("no shipped traces in workloads/", file=sys.stderr)
        return 1
    rows, results = floor_fraction_rows(paths, args.repeat)
    speed = pd.DataFrame(rows)
    twins = pd.DataFrame()
    digits = ROOT / "workloads" / "digits_cnn.npz"
    if digits.is_file():
        conv = next(x for x in load_workload(digits).layers if x.op == "conv2d")
        small = Layer(f"{conv.name}[:4]", "conv2d",
                      conv.shape.__class__(**{**conv.shape.__dict__, "N": 4}),
                      act_mask=conv.nonzero()[:4])
        twins = pd.DataFrame(twin_rows(small))
    args.out.mkdir(parents=True, exist_ok=True)
    speed.to_csv(args.out / "zero_skip_speed.csv", index=False)
    gap = pd.concat(results, ignore_index=True)
    gap = gap.assign(uniform_over_trace=gap["cycles_if_uniform"] / gap["cycles"])
    cols = ["workload", "config", "layer", "act_density", "cycles", "cycles_if_uniform",
            "uniform_over_trace", "speedup_vs_dense", "energy_saving_vs_dense"]
    gap[cols].to_csv(args.out / "zero_skip_gap.csv", index=False)
    fmt = {"float_format": lambda x: f"{x:.4g}", "index": False}
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(speed.to_string(**fmt))
        print()
        print(twins.to_string(**fmt))
        print()
        print(gap[cols].to_string(**fmt))
    written = [args.out / "zero_skip_speed.csv", args.out / "zero_skip_gap.csv"]
    if not args.no_rss:
        rss = pd.DataFrame(rss_rows(paths))
        rss.to_csv(args.out / "zero_skip_rss.csv", index=False)
        print()
        print(rss.to_string(**fmt))
        written.append(args.out / "zero_skip_rss.csv")
    print("\nwrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
