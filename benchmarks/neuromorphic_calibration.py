"""Calibrate and check the Akida configs against published figures; print and write a CSV.

Networks are built shapes-only from their akida_models definitions (tests/neuromorphic_nets.py)
with every NP layer at an assumed activation density (default 0.4; the input image dense):

* AKD1000 reference board [REF in arch_configs/akd1000.yaml]: DS-CNN KWS 93,965 clocks/frame,
  AkidaNet 0.5 @ 224 ~4.3 M clocks/frame and 2.51 mJ dynamic energy per frame
  ((1021 - 912) mW / 43.5 fps). Fits `synops_per_cycle_per_np` so that DS-CNN's frame latency
  is 93,965 cycles and `energy_per_synop_pj` to AkidaNet's dynamic energy, then shows how the
  other figures come out, and the spread over densities 0.2-0.6.
* AKD1500 model zoo energies per inference (KWS 0.07 mJ, VWW 0.49 mJ, AkidaNet 0.5 @ 224
  6.9 mJ, MobileNet v1 @ 224 26.3 mJ): least-squares fit of static power and energy per synop.

Usage: .venv/bin/python benchmarks/neuromorphic_calibration.py [--density 0.4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.arch.energy import price  # noqa: E402
from accelsim.engines.neuromorphic.config import SYNOP_UPDATE, Config  # noqa: E402
from accelsim.engines.neuromorphic.count import network  # noqa: E402
from accelsim.kinds import load_arch  # noqa: E402
from benchmarks.timing import write_csv  # noqa: E402
from tests.neuromorphic_nets import (  # noqa: E402
    Net,
    akidanet,
    ds_cnn_kws,
    mobilenet_v1,
    to_workload,
)

KWS_CLOCKS = 93_965
AKIDANET_CLOCKS = 4.3e6
AKIDANET_DYNAMIC_MJ = (1021 - 912) / 43.5
AKD1500_MJ = {"ds_cnn_kws": 0.07, "akidanet_vww": 0.49, "akidanet_0.5_224": 6.9,
              "mobilenet_v1_1.0_224": 26.3}


def workload(net: Net, density: float, frames: int = 1):
    w = to_workload(net, frames=frames, density=density)
    w.layers[0].declared_act_density = 1.0
    return w


def run(net: Net, arch: Config, density: float, frames: int = 1) -> dict:
    """Frame latency, interval, and energy per frame split into static and dynamic."""
    wl = workload(net, density, frames)
    n = network(wl, arch)
    s = n.summary
    dynamic = synops = 0.0
    for res in n.results.values():
        if res.cycles != res.cycles:
            continue
        e = price(res.actions, arch, 0.0)
        dynamic += sum(v for k, v in e.items() if k != "static")
        synops += res.actions.get(SYNOP_UPDATE, 0.0)
    makespan_s = s["makespan_cycles"] / arch.clock_hz
    return {"latency_cycles": s["frame_latency_cycles"], "interval_cycles": s["frame_interval_cycles"],
            "nps": s["nps_used"], "passes": s["passes"],
            "dynamic_mj": dynamic / frames * 1e-9, "synops": synops / frames,
            "static_mj": arch.static_power_mw * makespan_s / frames}


def _bisect(f, lo: float, hi: float, target: float) -> float:
    """x in [lo, hi] (geometric bisection) where the decreasing function f(x) hits target."""
    for _ in range(40):
        mid = (lo * hi) ** 0.5
        lo, hi = (lo, mid) if f(mid) < target else (mid, hi)
    return (lo * hi) ** 0.5


def fit_timing(arch: Config, density: float) -> tuple[float, float]:
    """synops_per_cycle_per_np from AkidaNet 0.5 @ 224 (4.3 M clocks/frame, where per-frame
    overheads are negligible) and frame_overhead_cycles from DS-CNN KWS (93,965 clocks/frame,
    where they are not), alternating until both settle."""
    overhead = 0.0
    rate = arch.synops_per_cycle_per_np
    for _ in range(4):
        rate = _bisect(lambda r, o=overhead: run(akidanet(0.5, 224), arch.model_copy(update={
            "synops_per_cycle_per_np": r, "frame_overhead_cycles": o}), density)["latency_cycles"],
            0.25, 256.0, AKIDANET_CLOCKS)
        kws = run(ds_cnn_kws(), arch.model_copy(update={"synops_per_cycle_per_np": rate,
                                                        "frame_overhead_cycles": 0.0}), density)
        overhead = max(0.0, KWS_CLOCKS - kws["latency_cycles"])
    return rate, overhead


def fit_synop_energy(arch: Config, density: float) -> float:
    """energy_per_synop_pj giving AkidaNet 0.5 @ 224 2.51 mJ of dynamic energy per frame."""
    zero = run(akidanet(0.5, 224), arch.model_copy(update={"energy_per_synop_pj": 0.0}), density)
    return (AKIDANET_DYNAMIC_MJ - zero["dynamic_mj"]) * 1e9 / zero["synops"]


def nonnegative_lstsq(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-column least squares with both coefficients >= 0 (a coefficient that would go
    negative is set to 0 and the other refitted)."""
    x, *_ = np.linalg.lstsq(a, b, rcond=None)
    if (x >= 0).all():
        return float(x[0]), float(x[1])
    fits = []
    for keep in (0, 1):
        col = a[:, keep]
        coef = max(0.0, float(col @ b / (col @ col)))
        full = [0.0, 0.0]
        full[keep] = coef
        fits.append((float(np.sum((a @ np.array(full) - b) ** 2)), full))
    best = min(fits)[1]
    return best[0], best[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--density", type=float, default=0.4)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/neuromorphic_calibration.csv")
    args = ap.parse_args()
    d = args.density
    rows = []
    akd1000 = load_arch(ROOT / "arch_configs/akd1000.yaml")
    rate, overhead = fit_timing(akd1000, d)
    fitted = akd1000.model_copy(update={"synops_per_cycle_per_np": rate,
                                        "frame_overhead_cycles": overhead})
    pj = fit_synop_energy(fitted, d)
    print(f"AKD1000 fit at density {d}: synops_per_cycle_per_np = {rate:.3f} "
          f"(config: {akd1000.synops_per_cycle_per_np}), frame_overhead_cycles = {overhead:,.0f} "
          f"(config: {akd1000.frame_overhead_cycles:,.0f}), energy_per_synop_pj = {pj:.3f} "
          f"(config: {akd1000.energy_per_synop_pj})")
    print(f"{'network':24s} {'density':>7s} {'NPs':>4s} {'latency clk':>12s} {'interval clk':>12s} "
          f"{'published clk':>13s} {'dyn mJ':>8s} {'published':>9s}")
    for net, clocks, mj in ((ds_cnn_kws(), KWS_CLOCKS, None),
                            (akidanet(0.5, 224), AKIDANET_CLOCKS, AKIDANET_DYNAMIC_MJ)):
        for dens in (0.2, 0.3, 0.4, 0.5, 0.6):
            r = run(net, akd1000, dens, frames=4)
            rows.append({"chip": "akd1000 (config)", "network": net.name, "density": dens, **r,
                         "published_clocks": clocks, "published_mj": mj or ""})
            print(f"{net.name:24s} {dens:7.1f} {r['nps']:4d} {r['latency_cycles']:12,.0f} "
                  f"{r['interval_cycles']:12,.0f} {clocks:13,.0f} {r['dynamic_mj']:8.3f} "
                  f"{mj if mj else '':>9}")
    # AKD1500: energy per inference (static + dynamic), fit static power and energy per synop
    akd1500 = load_arch(ROOT / "arch_configs/akd1500.yaml")
    nets = {"ds_cnn_kws": ds_cnn_kws(), "akidanet_vww": akidanet(0.25, 96, 2),
            "akidanet_0.5_224": akidanet(0.5, 224), "mobilenet_v1_1.0_224": mobilenet_v1(1.0, 224)}
    base = {k: run(n, akd1500.model_copy(update={"energy_per_synop_pj": 0.0,
                                                "static_power_mw": 0.0}), d)
            for k, n in nets.items()}
    single = [k for k in nets if base[k]["passes"] == 1]
    a = np.array([[base[k]["latency_cycles"] / akd1500.clock_hz, base[k]["synops"] * 1e-9]
                  for k in single])
    b = np.array([AKD1500_MJ[k] - base[k]["dynamic_mj"] for k in single])
    static_mw, synop_pj = nonnegative_lstsq(a, b)
    print(f"\nAKD1500 non-negative least-squares fit over the one-pass networks {single} at "
          f"density {d}: static_power_mw = {static_mw:.1f} (config: {akd1500.static_power_mw}), "
          f"energy_per_synop_pj = {synop_pj:.3f} (config: {akd1500.energy_per_synop_pj})")
    for k, n in nets.items():
        r = run(n, akd1500, d)
        latency_s = r["latency_cycles"] / akd1500.clock_hz
        total = r["dynamic_mj"] + akd1500.static_power_mw * latency_s
        fit = base[k]["dynamic_mj"] + synop_pj * base[k]["synops"] * 1e-9 + static_mw * latency_s
        rows.append({"chip": "akd1500 (config)", "network": k, "density": d, **r,
                     "published_clocks": "", "published_mj": AKD1500_MJ[k]})
        print(f"  {k:24s} NPs {r['nps']:3d} passes {r['passes']} latency "
              f"{r['latency_cycles']:12,.0f} clk  energy: config {total:7.3f} mJ, fit "
              f"{fit:7.3f} mJ, published {AKD1500_MJ[k]} mJ")
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
