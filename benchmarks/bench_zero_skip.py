"""Speed and memory of the zero-skip engine, and the trace-vs-uniform gap on the shipped traces.

1. Floor fractions: for every zero-skip config on every shipped trace in `workloads/`, the
   warm time of counting the workload (the engine on the arch and on its dense equivalent,
   layer by layer, as `accelsim.simulate` asks it, the i.i.d. rerun for `cycles_if_uniform`
   included), of the trace pass alone (`count_layer` on the real maps) and of the whole
   `simulate`, each over the time of a bare numpy pass over the same bitmaps (each traced
   layer's non-zero map made and counted, `np.count_nonzero(layer.nonzero())`, as
   `benchmarks/run_all.py` measures it), all in the same run; best of --repeat, every repeat on
   freshly loaded layers (nothing served from the engine's per-layer caches). The first
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
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.engines import zero_skip  # noqa: E402
from accelsim.engines.zero_skip.count import count_layer  # noqa: E402
from accelsim.engines.zero_skip.work import conv_view, operand_masks  # noqa: E402
from accelsim.kinds import load_arch  # noqa: E402
from accelsim.simulate import simulate  # noqa: E402
from accelsim.workload import Layer, load_workload  # noqa: E402
from tests import reference  # noqa: E402

CONFIGS = ["cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating"]

RSS_SCRIPT = """
import json, sys
import numpy as np
from accelsim.kinds import load_arch
from accelsim.simulate import simulate
from accelsim.workload import GemmShape, Layer, Workload, load_workload
config, case = sys.argv[1], sys.argv[2]
arch = load_arch(f"arch_configs/{config}.yaml")
if case.startswith("lm_head"):
    rng = np.random.default_rng(1)
    act = rng.standard_normal((64, 640)).astype(np.float16)
    act[rng.random(act.shape) < 0.5] = 0
    wmask = None
    if case == "lm_head+weights":
        wmask = np.random.default_rng(2).integers(0, 2, (640, 262144), dtype=np.uint8).view(bool)
    layer = Layer("lm_head", "linear", GemmShape(M=64, K=640, N=262144), act=act,
                  weight_mask=wmask)
else:
    path, name = case.split(":")
    layer = load_workload(path).layer(name)
workload = Workload("rss", [layer])
def high_water_kib():
    with open("/proc/self/status") as fh:
        return int(next(x for x in fh if x.startswith("VmHWM:")).split()[1])
before = high_water_kib()
simulate(workload, arch)
print(json.dumps({"before_kib": before, "peak_kib": high_water_kib()}))
"""
"""Peak RSS of one case in a fresh process: the kernel's high-water mark of this process
(`VmHWM`, which an exec starts afresh, unlike `ru_maxrss`), before and after `simulate`."""


def act_elements(layers: list[Layer]) -> int:
    return sum(math.prod(layer.shape.act_shape) for layer in layers)


def best_fresh(repeat: int, path: Path, fn) -> tuple[float, object]:
    """Best wall time of `fn(workload)` over `repeat` freshly loaded copies of the workload at
    `path` (so nothing is served from the engine's per-layer caches), and the last result."""
    best, out = math.inf, None
    for _ in range(repeat):
        wl = load_workload(path)
        start = time.perf_counter()
        out = fn(wl)
        best = min(best, time.perf_counter() - start)
    return best, out


def engine_pass(wl, arch, dense) -> None:
    """The engine's share of `simulate`: every layer on the arch and on its dense equivalent."""
    for layer in wl.layers:
        zero_skip.simulate(layer, arch)
        zero_skip.simulate(layer, dense)


def floor_fraction_rows(paths: list[Path], repeat: int) -> tuple[list[dict], list[pd.DataFrame]]:
    rows, results = [], []
    archs = {cfg: load_arch(ROOT / "arch_configs" / f"{cfg}.yaml") for cfg in CONFIGS}
    for cfg, arch in archs.items():
        start = time.perf_counter()
        simulate(load_workload(paths[0]), arch)
        archs[cfg] = (arch, time.perf_counter() - start)
    for path in paths:
        wl = load_workload(path)
        layers = [x for x in wl.layers if x.has_trace]
        elements = act_elements(layers)
        floor_s, _ = best_fresh(repeat, path, lambda w: [np.count_nonzero(x.nonzero())
                                                         for x in w.layers if x.has_trace])
        for cfg, (arch, cold_s) in archs.items():
            dense = arch.dense_equivalent()
            engine_pass(load_workload(path), arch, dense)   # compiles what this trace needs
            engine_s, _ = best_fresh(repeat, path, lambda w, a=arch, d=dense: engine_pass(w, a, d))
            trace_s, _ = best_fresh(repeat, path, lambda w, a=arch: [count_layer(x, a)
                                                                     for x in w.layers])
            sim_s, result = best_fresh(repeat, path, lambda w, a=arch: simulate(w, a))
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
    cases = [largest_layer(paths), "lm_head", "lm_head+weights"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for case in cases:
        for cfg in CONFIGS:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, cfg, case], cwd=ROOT,
                                  env=env, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - start
            rss = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"case": case, "config": cfg,
                         "rss_before_simulate_mb": rss["before_kib"] / 1024,
                         "peak_rss_mb": rss["peak_kib"] / 1024, "process_s": seconds})
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
