"""What the tiling traffic model costs the zero-skip engine: for every zero-skip config on every
shipped trace, the time of counting every layer (`count_layer`, on freshly loaded layers) and the
share of it spent in `memory_traffic` (the tiling search and the access columns), with the
search caches cleared first (`cold`) and kept from the run before (`warm`), best of --repeat, in
one run on this machine (read the shares, not the seconds).

Also the spread behind sizing compressed tiles by a layer's average stored size: on
`eyeriss_gating`, for every traced layer whose tiling has more than one pixel tile, its input
map split along images x rows into that many equal bands, the densest band's density over the
layer's mean (`max_over_mean`).

    .venv/bin/python benchmarks/zero_skip_traffic_cost.py [--repeat 3]

Writes `benchmarks/results/zero_skip_traffic_cost.csv` and `zero_skip_tile_density.csv` and
prints them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.engines import traffic  # noqa: E402
from accelsim.engines.zero_skip import count  # noqa: E402
from accelsim.kinds import load_arch  # noqa: E402
from accelsim.workload import load_workload  # noqa: E402
from accelsim.workload.layer import ConvShape  # noqa: E402

CONFIGS = ["cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating"]
OUT_CSV = ROOT / "benchmarks" / "results" / "zero_skip_traffic_cost.csv"
DENSITY_CSV = ROOT / "benchmarks" / "results" / "zero_skip_tile_density.csv"


class Timed:
    """`count.memory_traffic`, wrapped to add up the seconds spent in it."""

    def __init__(self) -> None:
        self.inner = count.memory_traffic
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def one_pass(arch, trace: Path, timed: Timed, cold: bool) -> tuple[float, float]:
    """(seconds counting every layer of `trace` on `arch`, seconds of it in memory_traffic)."""
    layers = load_workload(trace).layers
    if cold:
        traffic.clear_caches()
    timed.seconds = 0.0
    start = time.perf_counter()
    for layer in layers:
        count.count_layer(layer, arch)
    return time.perf_counter() - start, timed.seconds


def tile_density_spread() -> pd.DataFrame:
    """Per tiled traced layer on `eyeriss_gating`: pixel tiles and the densest input band's
    density over the layer's mean."""
    arch = load_arch(ROOT / "arch_configs" / "eyeriss_gating.yaml")
    rows = []
    for trace in sorted((ROOT / "workloads").glob("*.npz")):
        for layer in load_workload(trace).layers:
            if not layer.has_trace:
                continue
            columns = count.count_layer(layer, arch).columns
            s = layer.shape
            pixels = s.N * s.E * s.F if isinstance(s, ConvShape) else s.M
            tiles = -(-pixels // int(columns["tile_pixels"]))
            nonzero = layer.nonzero()
            if isinstance(s, ConvShape):
                bands = nonzero.transpose(0, 2, 1, 3).reshape(s.N * s.H, -1)
            else:
                bands = nonzero.reshape(-1, nonzero.shape[-1])
            mean = bands.mean()
            if tiles < 2 or mean == 0 or len(bands) < tiles:
                continue
            densest = max(part.mean() for part in np.array_split(bands, tiles, axis=0))
            rows.append({"trace": trace.name, "layer": layer.name, "pixel_tiles": tiles,
                         "max_over_mean": densest / mean})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    timed = Timed()
    count.memory_traffic = timed
    rows = []
    try:
        for name in CONFIGS:
            arch = load_arch(ROOT / "arch_configs" / f"{name}.yaml")
            for trace in sorted((ROOT / "workloads").glob("*.npz")):
                one_pass(arch, trace, timed, cold=True)  # numba and imports warm
                row = {"config": name, "trace": trace.name}
                for mode in ("cold", "warm"):
                    best = min((one_pass(arch, trace, timed, cold=mode == "cold")
                                for _ in range(args.repeat)), key=lambda t: t[0])
                    row[f"count_s_{mode}"], row[f"traffic_s_{mode}"] = best
                    row[f"traffic_share_{mode}"] = best[1] / best[0] if best[0] else 0.0
                rows.append(row)
    finally:
        count.memory_traffic = timed.inner
    table = pd.DataFrame(rows)
    OUT_CSV.parent.mkdir(exist_ok=True)
    table.to_csv(OUT_CSV, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    spread = tile_density_spread()
    spread.to_csv(DENSITY_CSV, index=False)
    print(f"tiled layers: {len(spread)}, densest band over mean: median "
          f"{spread.max_over_mean.median():.3f}, max {spread.max_over_mean.max():.3f}")
    print(f"wrote {OUT_CSV.relative_to(ROOT)}, {DENSITY_CSV.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
