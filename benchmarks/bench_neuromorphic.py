"""Speed of the neuromorphic engine on the shipped traces, and what packet granularity costs.

For each shipped workload: seconds to map, count and pipeline the whole network on the AKD1000
config (sparse run and dense-equivalent run, workload already loaded), frames simulated, frame
latency and rate, passes, unmappable layers. Then the granularity trade-off on
EfficientNet-Lite0: row packets (the default) against finer packets (8 and 1 columns) and
coarser ones (8 rows): run time, frame latency (fill of the layer pipeline, granularity-
sensitive) and frame interval. Prints tables and writes benchmarks/results/neuromorphic_speed.csv.

Usage: .venv/bin/python benchmarks/bench_neuromorphic.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.engines.neuromorphic.count import network  # noqa: E402
from accelsim.kinds import load_arch  # noqa: E402
from accelsim.workload import load_workload  # noqa: E402
from benchmarks.timing import write_csv  # noqa: E402

WORKLOADS = ["digits_cnn", "efficientnet_lite0", "crepe_full", "minilm"]


def timed(workload, arch) -> tuple[float, object]:
    start = time.perf_counter()
    net = network(workload, arch)
    return time.perf_counter() - start, net


def main() -> None:
    arch = load_arch(ROOT / "arch_configs/akd1000.yaml")
    rows = []
    print(f"{'workload':20s} {'layers':>6s} {'frames':>6s} {'sim':>4s} {'sparse s':>9s} "
          f"{'dense s':>8s} {'latency ms':>10s} {'fps':>8s} {'passes':>6s} {'unmapped':>8s}")
    for name in WORKLOADS:
        path = ROOT / "workloads" / f"{name}.npz"
        if not path.is_file():
            print(f"{name:20s} (not present)")
            continue
        wl = load_workload(path)
        t_sparse, net = timed(wl, arch)
        t_dense, _ = timed(wl, arch.dense_equivalent())
        s = net.summary
        rows.append({"workload": name, "packet": "rows", "layers": len(wl.layers),
                     "frames": s["frames"], "frames_simulated": s["frames_simulated"],
                     "seconds_sparse": t_sparse, "seconds_dense": t_dense,
                     "frame_latency_s": s["frame_latency_s"], "frames_per_s": s["frames_per_s"],
                     "passes": s["passes"], "unmappable": len(s["unmappable"])})
        print(f"{name:20s} {len(wl.layers):6d} {s['frames']:6d} {s['frames_simulated']:4d} "
              f"{t_sparse:9.2f} {t_dense:8.2f} {s['frame_latency_s'] * 1e3:10.3f} "
              f"{s['frames_per_s']:8.1f} {s['passes']:6d} {len(s['unmappable']):8d}")
    path = ROOT / "workloads/efficientnet_lite0.npz"
    if path.is_file():
        wl = load_workload(path)
        print("\nEfficientNet-Lite0 packet granularity (AKD1000):")
        base = None
        for label, update in (("rows (default)", {}), ("8 rows", {"packet_rows": 8}),
                              ("8 columns", {"packet_cols": 8}), ("1 column", {"packet_cols": 1})):
            seconds, net = timed(wl, arch.model_copy(update=update))
            lat = net.summary["frame_latency_cycles"]
            interval = net.summary["frame_interval_cycles"]
            base = base or (lat, interval)
            rows.append({"workload": "efficientnet_lite0", "packet": label,
                         "layers": len(wl.layers), "frames": net.summary["frames"],
                         "frames_simulated": net.summary["frames_simulated"],
                         "seconds_sparse": seconds, "seconds_dense": "",
                         "frame_latency_s": net.summary["frame_latency_s"],
                         "frames_per_s": net.summary["frames_per_s"],
                         "passes": net.summary["passes"],
                         "unmappable": len(net.summary["unmappable"])})
            print(f"  {label:16s} {seconds:7.2f} s  frame latency {lat:12,.0f} cycles "
                  f"({(lat / base[0] - 1) * 100:+.2f} % vs rows), interval {interval:12,.0f} "
                  f"({(interval / base[1] - 1) * 100:+.2f} %)")
    out = ROOT / "benchmarks/results/neuromorphic_speed.csv"
    write_csv(out, rows)


if __name__ == "__main__":
    main()
