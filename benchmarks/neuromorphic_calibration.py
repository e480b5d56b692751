"""Calibrate the Akida configs on one published figure and predict the others; print a table
and write a CSV saying, for every figure, whether it was fitted or predicted, under which
conditions it was published.

Networks: DS-CNN KWS, AkidaNet 0.25 @ 96 (VWW), AkidaNet 0.25 / 0.5 / 1.0 @ 224 and MobileNet
v1 1.0 @ 224, built from their akida_models definitions (tests/neuromorphic_nets.py) as
shapes-only workloads. Density comes from a trace: each NP layer takes the event density (4-bit
codes, the config's quantisation) of the layer at the same relative depth of the shipped
EfficientNet-Lite0 trace (workloads/efficientnet_lite0.npz: a trained ImageNet CNN of the same
depthwise-separable family), counting only its inputs that follow a ReLU6 (depthwise and
projection inputs), interpolated linearly; the input image is dense. No trained akida model
ships offline, so this is the nearest real activation profile; `--density D` replaces it by
one flat density to show how the results move.

Taken as measured (BrainChip's dev hub, github.com/Brainchip-Inc/brainchip_devhub, AKD1500,
akida 2.19.x, batch 1, at commit 05c581bb: its Akida knowledge base, section "Sparsity",
from the tutorial akida1/tutorials/sparsity_in_hardware, and the model-zoo READMEs): NP clocks per
input event per filter by kernel (AKD1500 and AKD1000 values), a frame's layers running one
after another at batch 1, dynamic energy following NP clocks, and the AKD1500 static floor
(total minus dynamic power of the AkidaNet @ 224 Minimal rows, ~112 mW).

Fitted (the only one): AKD1500 `energy_per_np_cycle_pj`, to AkidaNet 0.5 @ 224's dynamic
energy in MapMode.Minimal, 3.944 mJ per inference (dev hub).

Derived: the AKD1000 energy per NP cycle is the AKD1500 one scaled from 22 to 28 nm with the
tech table's node factor; the AKD1500 energy per event and hop are the AKD1000 (Loihi-based)
ones scaled from 28 to 22 nm.

Predicted (no parameter is fitted to them): on AKD1500 in MapMode.Minimal (our `minimal`
mapping, batch 1, as published): AkidaNet 0.25 / 0.5 / 1.0 @ 224 cycles per inference and
total energy, the dev hub's VWW model's cycles and energy; the model-zoo page's AKD1500
energies (KWS 0.07, VWW 0.49, AkidaNet 0.5 6.9, MobileNet v1 26.3 mJ; the page does not give
the mapping mode: for AkidaNet 0.5 the dev hub's HwPr row, 7.30 mJ, is the one near it, a mode
the engine does not model, so that figure is printed but not comparable); on the AKD1000
reference board, AkidaNet 0.5's 43.5 fps and 2.51 mJ dynamic energy (a forward pass of 10
images, so frames pipeline; the board's host and PCIe time are not modelled) and DS-CNN's
93,965 clocks; the model zoo's NP counts (KWS 5, AkidaNet 0.5 32, MobileNet v1 110).

Usage: .venv/bin/python benchmarks/neuromorphic_calibration.py [--density 0.4] [--check]
(--check: refit and say whether the configs hold the fitted and derived values, without
writing files)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.arch.energy import price  # noqa: E402
from accelsim.arch.tech import load_tech_table  # noqa: E402
from accelsim.engines.neuromorphic.config import Config  # noqa: E402
from accelsim.engines.neuromorphic.count import network  # noqa: E402
from accelsim.engines.neuromorphic.events import event_mask  # noqa: E402
from accelsim.engines.neuromorphic.mapping import map_workload  # noqa: E402
from accelsim.kinds import load_arch  # noqa: E402
from accelsim.workload import load_workload  # noqa: E402
from benchmarks.timing import write_csv  # noqa: E402
from tests.neuromorphic_nets import Net, akidanet, ds_cnn_kws, mobilenet_v1, to_workload  # noqa: E402

KWS_CLOCKS = 93_965
AKIDANET_FPS = 43.5
AKIDANET_FRAMES = 10
"""The AKD1000 example's forward pass: 10 images, so the reference board's rate is pipelined."""
AKIDANET_DYNAMIC_MJ = (1021 - 912) / AKIDANET_FPS
ZOO_MJ = {"ds_cnn_kws": 0.07, "akidanet_vww": 0.49, "akidanet_0.5_224": 6.9,
          "mobilenet_v1_1.0_224": 26.3}
"""Model-zoo page, energy per inference on AKD1500 (mapping mode not given)."""
ZOO_NOT_COMPARABLE = {"akidanet_0.5_224": "the dev hub's HwPr row (7.30 mJ) is the one near "
                      "it; Minimal measures 14.09 mJ; HwPr is not modelled"}
DEVHUB_MINIMAL = {"akidanet_0.25_224": (14_867_433, 5.376), "akidanet_0.5_224": (36_261_735, 14.090),
                  "akidanet_1.0_224": (50_512_691, 29.753), "akidanet_vww": (1_743_040, 0.619)}
"""Dev hub, AKD1500 MapMode.Minimal, batch 1: (cycles, total mJ) per inference (VWW: the dev
hub's own VWW model, 17 NPs and 68 % sparse where the zoo's maps on 16)."""
DEVHUB_FIT_DYNAMIC_MJ = 3.944
"""Dev hub, AkidaNet 0.5 @ 224 on AKD1500, MapMode.Minimal: dynamic energy per inference."""
ZOO_NPS = {"ds_cnn_kws": 5, "akidanet_0.5_224": 32, "mobilenet_v1_1.0_224": 110}
PREDICTION_BAND = 0.30
"""Predicted figures this close to the published ones (relative) count as met."""
PROFILE_TRACE = ROOT / "workloads/efficientnet_lite0.npz"


def density_profile(path: Path = PROFILE_TRACE, bits: int = 4,
                    percentile: float = 99.9) -> np.ndarray:
    """Event densities of the trace's post-ReLU6 inputs (depthwise and projection convs), in
    network order, with the configs' quantisation."""
    wl = load_workload(path)
    out = []
    for layer in wl.layers:
        if "_depthwise_conv" in layer.name or "_project_conv" in layer.name:
            out.append(float(event_mask(layer, bits, percentile).mean()))
    return np.array(out)


def workload(net: Net, profile: np.ndarray | None, density: float | None, frames: int = 1):
    """The net shapes-only: the input image dense, NP layers at the profile's density for their
    relative depth (or at `density`)."""
    wl = to_workload(net, frames=frames, density=0.5)
    layers = wl.layers[1:]
    for i, layer in enumerate(layers):
        if density is not None:
            layer.declared_act_density = density
        else:
            depth = i / max(len(layers) - 1, 1)
            layer.declared_act_density = float(np.interp(
                depth, np.linspace(0.0, 1.0, len(profile)), profile))
    wl.layers[0].declared_act_density = 1.0
    return wl


def run(wl, arch: Config) -> dict:
    """Frame latency and interval, NPs, passes, and energy per frame (static and dynamic)."""
    n = network(wl, arch)
    s = n.summary
    frames = s["frames"]
    dynamic = 0.0
    for res in n.results.values():
        if res.cycles == res.cycles:
            dynamic += sum(v for k, v in price(res.actions, arch, 0.0).items() if k != "static")
    makespan_s = s["makespan_cycles"] / arch.clock_hz
    return {"latency_cycles": s["frame_latency_cycles"],
            "interval_cycles": s["frame_interval_cycles"], "nps": s["nps_used"],
            "passes": s["passes"], "fps": s["frames_per_s"],
            "dynamic_mj": dynamic / frames * 1e-9,
            "static_mj": arch.static_power_mw * makespan_s / frames}


def nets() -> dict[str, Net]:
    """The networks of the published figures, by key."""
    return {"ds_cnn_kws": ds_cnn_kws(), "akidanet_vww": akidanet(0.25, 96, 2),
            "akidanet_0.25_224": akidanet(0.25, 224), "akidanet_0.5_224": akidanet(0.5, 224),
            "akidanet_1.0_224": akidanet(1.0, 224), "mobilenet_v1_1.0_224": mobilenet_v1(1.0, 224)}


def fit_akd1500(arch: Config, anet) -> dict:
    """energy_per_np_cycle_pj giving AkidaNet 0.5 @ 224 its measured Minimal dynamic energy
    (dynamic energy is linear in it)."""
    zero = run(anet, arch.model_copy(update={"energy_per_np_cycle_pj": 0.0}))["dynamic_mj"]
    unit = run(anet, arch.model_copy(update={"energy_per_np_cycle_pj": 1.0}))["dynamic_mj"]
    return {"energy_per_np_cycle_pj": (DEVHUB_FIT_DYNAMIC_MJ - zero) / (unit - zero)}


def _node_factor(table_name: str, to_nm: float, from_nm: float) -> float:
    table = load_tech_table(table_name)
    return table.energy_factor(to_nm) / table.energy_factor(from_nm)


def derive_akd1500(akd1000: Config, akd1500: Config) -> dict:
    """AKD1000's per-event and per-hop energies scaled to the AKD1500's node."""
    f = _node_factor(akd1000.tech.table, akd1500.tech.node_nm, akd1000.tech.node_nm)
    return {"energy_per_event_pj": akd1000.energy_per_event_pj * f,
            "energy_per_hop_pj": akd1000.energy_per_hop_pj * f}


def derive_akd1000(akd1500: Config, akd1000: Config) -> dict:
    """The AKD1500's fitted energy per NP cycle scaled to the AKD1000's node."""
    f = _node_factor(akd1500.tech.table, akd1000.tech.node_nm, akd1500.tech.node_nm)
    return {"energy_per_np_cycle_pj": akd1500.energy_per_np_cycle_pj * f}


def rounded(values: dict) -> dict:
    """The fitted values as the configs hold them (3 significant figures)."""
    return {k: float(f"{v:.3g}") for k, v in values.items()}


def calibrated(density: float | None = None) -> tuple[Config, Config, dict, bool]:
    """(AKD1000, AKD1500) configs with the fitted and derived values, the values, and whether
    the config files hold them."""
    profile = density_profile()
    akd1000 = load_arch(ROOT / "arch_configs/akd1000.yaml")
    akd1500 = load_arch(ROOT / "arch_configs/akd1500.yaml")
    derived1500 = rounded(derive_akd1500(akd1000, akd1500))
    staged = akd1500.model_copy(update=derived1500)
    fit1500 = rounded(fit_akd1500(staged, workload(nets()["akidanet_0.5_224"], profile, density)))
    fitted1500 = staged.model_copy(update=fit1500)
    derived1000 = rounded(derive_akd1000(fitted1500, akd1000))
    fitted1000 = akd1000.model_copy(update=derived1000)
    held = all(getattr(akd1500, k) == v for k, v in {**derived1500, **fit1500}.items()) and \
        all(getattr(akd1000, k) == v for k, v in derived1000.items())
    return fitted1000, fitted1500, {"AKD1500 fitted": fit1500, "AKD1500 derived": derived1500,
                                    "AKD1000 derived": derived1000}, held


def figures(akd1000: Config, akd1500: Config, density: float | None = None) -> list[dict]:
    """Every published figure against the model: chip, figure, use (fitted / predicted / not
    comparable), model, published, unit, relative error, the published conditions."""
    profile = density_profile()
    net = nets()
    wls = {k: workload(n, profile, density) for k, n in net.items()}
    rows: list[dict] = []

    def row(chip: str, figure: str, use: str, model: float, published: float, unit: str,
            conditions: str) -> None:
        rows.append({"chip": chip, "figure": figure, "use": use, "model": model,
                     "published": published, "unit": unit, "error": model / published - 1,
                     "conditions": conditions,
                     "density": density if density is not None else "trace profile"})

    runs = {k: run(wl, akd1500) for k, wl in wls.items()}
    for key, (cycles, mj) in DEVHUB_MINIMAL.items():
        r = runs[key]
        where = f"dev hub, Minimal, batch 1 ({r['nps']} NPs, {r['passes']} pass" \
                f"{'es' if r['passes'] > 1 else ''})"
        row("AKD1500", f"{key} cycles per inference", "predicted", r["latency_cycles"], cycles,
            "cycles", where)
        fitted = key == "akidanet_0.5_224"
        row("AKD1500", f"{key} energy", "fitted (dynamic part)" if fitted else "predicted",
            r["dynamic_mj"] + r["static_mj"], mj, "mJ/inference", where)
        if fitted:
            row("AKD1500", f"{key} dynamic energy", "fitted", r["dynamic_mj"],
                DEVHUB_FIT_DYNAMIC_MJ, "mJ/inference", where)
    for key, mj in ZOO_MJ.items():
        r = runs[key]
        use = "not comparable" if key in ZOO_NOT_COMPARABLE else "predicted"
        row("AKD1500", f"{key} energy (model zoo)", use, r["dynamic_mj"] + r["static_mj"], mj,
            "mJ/inference", ZOO_NOT_COMPARABLE.get(
                key, f"model-zoo page, mode not given; ours Minimal ({r['nps']} NPs, "
                     f"{r['passes']} pass{'es' if r['passes'] > 1 else ''})"))
    for key, published in ZOO_NPS.items():
        nps = sum(u.np_count for u in map_workload(wls[key], akd1000) if u.kind != "unmappable")
        row("AKD1000", f"{key} NPs (model zoo)", "predicted", nps, published, "NPs",
            "model-zoo page, Minimal on AKD1000 (the mapping rules were read off akida's "
            "mapper on other shapes)")
    board = "AKD1000 reference board, forward pass of 10 images (host and PCIe not modelled)"
    anet = run(workload(net["akidanet_0.5_224"], profile, density, frames=AKIDANET_FRAMES),
               akd1000)
    row("AKD1000", "akidanet_0.5_224 frame rate", "predicted", anet["fps"], AKIDANET_FPS,
        "frames/s", board)
    row("AKD1000", "akidanet_0.5_224 dynamic energy", "predicted", anet["dynamic_mj"],
        AKIDANET_DYNAMIC_MJ, "mJ/frame", board + ", (1021 - 912) mW / 43.5 fps")
    kws = run(wls["ds_cnn_kws"], akd1000)
    row("AKD1000", "ds_cnn_kws clocks per frame", "predicted", kws["latency_cycles"], KWS_CLOCKS,
        "clocks", "AKD1000 reference board")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--density", type=float, default=None,
                    help="one flat density instead of the EfficientNet-Lite0 profile")
    ap.add_argument("--check", action="store_true",
                    help="only say whether the configs hold the fitted values")
    ap.add_argument("--out", type=Path,
                    default=ROOT / "benchmarks/results/neuromorphic_calibration.csv")
    args = ap.parse_args()
    profile = density_profile()
    print(f"density profile from {PROFILE_TRACE.name}: {len(profile)} post-ReLU6 layers, "
          f"{profile[0]:.2f} at the input end to {profile[-1]:.2f} at the output end, mean "
          f"{profile.mean():.2f}" if args.density is None else f"flat density {args.density}")
    akd1000, akd1500, values, held = calibrated(args.density)
    for what, v in values.items():
        print(f"{what}: {v}")
    print(f"the configs {'hold' if held else 'do NOT hold'} these values")
    if args.check:
        sys.exit(0 if held else 1)
    rows = figures(akd1000, akd1500, args.density)
    print("figures:")
    for r in rows:
        print(f"  {r['chip']:8s} {r['figure']:40s} {r['use']:21s} model {r['model']:12.4g} "
              f"published {r['published']:10.4g} {r['unit']:12s} {r['error']:+7.1%}  "
              f"[{r['conditions']}]")
    predicted = [r for r in rows if r["use"] == "predicted" and "NPs" not in r["unit"]]
    met = [r for r in predicted if abs(r["error"]) <= PREDICTION_BAND]
    print(f"predicted time and energy figures within {PREDICTION_BAND:.0%}: {len(met)} of "
          f"{len(predicted)}")
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
