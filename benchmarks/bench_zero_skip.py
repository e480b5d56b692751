"""Speed of the zero-skip engine, and the trace-vs-uniform gap on the shipped traces.

For every shipped trace in `workloads/` on every zero-skip config: seconds for a cold run
(numba compiles into an empty cache directory first) and a warm run of `simulate`, and input
activation elements processed per second. Then, per dataflow, the numba path against its
slow reference twin (tests/reference.py) on the same small real bitmap. Finally the per-layer
table of cycles on the real trace next to `cycles_if_uniform`, the density-only prediction.

    .venv/bin/python benchmarks/bench_zero_skip.py [--out benchmarks/results]

Writes `zero_skip_speed.csv` and `zero_skip_gap.csv` under --out and prints both.
"""

from __future__ import annotations

import os
import tempfile

os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="accelsim-numba-cold-")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.engines.zero_skip.count import count_layer  # noqa: E402
from accelsim.engines.zero_skip.work import conv_view, operand_masks  # noqa: E402
from accelsim.kinds import load_arch  # noqa: E402
from accelsim.simulate import simulate  # noqa: E402
from accelsim.workload import Layer, load_workload  # noqa: E402
from tests import reference  # noqa: E402

CONFIGS = ["cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating"]


def act_elements(layers: list[Layer]) -> int:
    return sum(math.prod(layer.shape.act_shape) for layer in layers)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def speed_rows(workloads: dict[str, object]) -> tuple[list[dict], list[pd.DataFrame]]:
    rows, results = [], []
    for cfg in CONFIGS:
        arch = load_arch(ROOT / "arch_configs" / f"{cfg}.yaml")
        for name, wl in workloads.items():
            elements = act_elements(wl.layers)
            cold, _ = timed(lambda arch=arch, wl=wl: simulate(wl, arch))
            warm, result = timed(lambda arch=arch, wl=wl: simulate(wl, arch))
            rows.append({"what": "simulate", "workload": name, "config": cfg,
                         "act_elements": elements, "cold_s": cold, "warm_s": warm,
                         "act_elements_per_s": elements / warm})
            df = result.layers.assign(workload=name, config=cfg)
            results.append(df)
    return rows, results


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
        fast, res = timed(lambda arch=arch: count_layer(layer, arch))
        slow, ref_out = timed(ref)
        ref_cycles = ref_out[0]
        assert res.compute_cycles == ref_cycles, (cfg, res.compute_cycles, ref_cycles)
        rows.append({"what": "kernel_vs_twin", "workload": layer.name, "config": cfg,
                     "act_elements": elements, "warm_s": fast, "reference_s": slow,
                     "act_elements_per_s": elements / fast,
                     "reference_act_elements_per_s": elements / slow})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    paths = sorted((ROOT / "workloads").glob("*.npz"))
    if not paths:
        print("no shipped traces in workloads/", file=sys.stderr)
        return 1
    workloads = {p.stem: load_workload(p) for p in paths}
    rows, results = speed_rows(workloads)
    digits = workloads.get("digits_cnn")
    if digits is not None:
        conv = next(x for x in digits.layers if x.op == "conv2d")
        small = Layer(f"{conv.name}[:4]", "conv2d",
                      conv.shape.__class__(**{**conv.shape.__dict__, "N": 4}),
                      act_mask=conv.nonzero()[:4])
        rows += twin_rows(small)
    args.out.mkdir(parents=True, exist_ok=True)
    speed = pd.DataFrame(rows)
    speed.to_csv(args.out / "zero_skip_speed.csv", index=False)
    gap = pd.concat(results, ignore_index=True)
    gap = gap.assign(uniform_over_trace=gap["cycles_if_uniform"] / gap["cycles"])
    cols = ["workload", "config", "layer", "act_density", "cycles", "cycles_if_uniform",
            "uniform_over_trace", "speedup_vs_dense", "energy_saving_vs_dense"]
    gap[cols].to_csv(args.out / "zero_skip_gap.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(speed.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        print()
        print(gap[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(f"\nwrote {args.out / 'zero_skip_speed.csv'} and {args.out / 'zero_skip_gap.csv'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
