"""NPs per layer: accelsim's neuromorphic mapping against BrainChip's akida 2.19.3 mapper.

Random akida models (tests/neuromorphic_nets.py: `random_akida_v1`, `random_akida_v2`, seeds
S..S+N-1) are imported with `accelsim.workload.akida_import.import_akida` and mapped by both on
every device type akida offers: AKD1000, AKD1500 and TwoNodesIPv1 (IP v1); TwoNodesIPv2,
FourNodesIPv2, SixNodesIPv2, TwelveNodesIPv2, an `akida.create_device` mesh of random size and
the model's own `akida.compute_min_device` (IP v2), in both modes (akida MapMode.Minimal vs
`mapping_mode: minimal`, MapMode.AllNps vs `spread`). Our config for each device is
`config_for_device(device, base)` with base arch_configs/akd1000.yaml (v1) or
akida2_scalable.yaml (v2). Only (model, device) pairs akida maps entirely in hardware are
compared; the others are counted as refused.

Prints, per device and mode, layers exact / off by one NP / worse, and the worse ones; writes
benchmarks/results/neuromorphic_mapper_agreement.csv (one row per compared layer).

Usage: .venv/bin/python benchmarks/neuromorphic_mapper_agreement.py [--models 30] [--first-seed 0]
(--first-seed 30 --models 30: seeds 30..59, models no rule was read off)
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.engines.neuromorphic.akida_device import config_for_device  # noqa: E402
from accelsim.engines.neuromorphic.mapping import map_workload  # noqa: E402
from accelsim.kinds import load_arch  # noqa: E402
from accelsim.workload.akida_import import import_akida  # noqa: E402
from benchmarks.timing import write_csv  # noqa: E402
from tests.neuromorphic_nets import (  # noqa: E402
    V1_DEVICES,
    V2_DEVICES,
    akida_device,
    akida_layer_nps,
    random_akida_v1,
    random_akida_v2,
)


def our_layer_nps(workload, arch) -> dict[str, int]:
    """NPs per akida layer in our mapping (-1 where a layer is unmappable)."""
    out: dict[str, int] = {}
    layers = {layer.name: layer for layer in workload.layers}
    for unit in map_workload(workload, arch):
        for name in unit.layers:
            key = layers[name].extra.get("akida_layer", name)
            out.setdefault(key, -1 if unit.kind == "unmappable" else unit.np_count)
    return out


def compare(version: str, seed: int, bases: dict) -> list[dict]:
    """Rows (device, mode, layer, akida NPs, our NPs) for one random model."""
    rng = np.random.default_rng(seed)
    model = random_akida_v1(rng) if version == "v1" else random_akida_v2(rng)
    workload = import_akida(model, frames=1)
    devices = list(V1_DEVICES if version == "v1" else V2_DEVICES)
    if version == "v2":
        devices += [f"create:{int(rng.integers(4, 40))}:{int(rng.integers(1, 4))}", "min"]
    rows = []
    for dev_name in devices:
        try:
            device = akida_device(dev_name, model)
        except Exception:                # compute_min_device fails on models it cannot map
            continue
        label = dev_name.split(":")[0] if dev_name.startswith("create") else dev_name
        for minimal in (True, False):
            theirs = akida_layer_nps(model, device, minimal)
            mode = "minimal" if minimal else "spread"
            if theirs is None:
                rows.append({"version": version, "seed": seed, "device": label, "mode": mode,
                             "layer": "", "akida": None, "ours": None})
                continue
            arch = config_for_device(device, bases[version]).model_copy(
                update={"mapping_mode": mode})
            ours = our_layer_nps(workload, arch)
            for name, n in theirs.items():
                rows.append({"version": version, "seed": seed, "device": label, "mode": mode,
                             "layer": name, "akida": n, "ours": ours.get(name, -1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=30, help="random models per IP version")
    ap.add_argument("--first-seed", type=int, default=0, help="seed of the first model")
    ap.add_argument("--out", type=Path,
                    default=ROOT / "benchmarks/results/neuromorphic_mapper_agreement.csv")
    args = ap.parse_args()
    bases = {"v1": load_arch(ROOT / "arch_configs/akd1000.yaml"),
             "v2": load_arch(ROOT / "arch_configs/akida2_scalable.yaml")}
    seeds = range(args.first_seed, args.first_seed + args.models)
    rows = [r for version in ("v1", "v2") for seed in seeds
            for r in compare(version, seed, bases)]
    tally: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    worse = []
    for r in rows:
        key = (r["version"], r["device"], r["mode"])
        if r["akida"] is None:
            tally[key][3] += 1
            continue
        diff = abs(r["akida"] - r["ours"]) if r["ours"] >= 0 else 10**6
        tally[key][0 if diff == 0 else 1 if diff == 1 else 2] += 1
        if diff > 1:
            worse.append(r)
    print(f"{'IP':3s} {'device':16s} {'mode':8s} {'exact':>6s} {'off 1':>6s} {'worse':>6s} "
          f"{'refused':>8s}")
    totals = [0, 0, 0]
    for (version, device, mode), (exact, one, bad, refused) in sorted(tally.items()):
        print(f"{version:3s} {device:16s} {mode:8s} {exact:6d} {one:6d} {bad:6d} {refused:8d}")
        totals = [totals[0] + exact, totals[1] + one, totals[2] + bad]
    n = sum(totals)
    print(f"all: {totals[0]} / {n} exact ({totals[0] / max(n, 1):.1%}), {totals[1]} off by one, "
          f"{totals[2]} worse")
    for r in worse[:40]:
        print(f"  worse: {r['version']} seed {r['seed']} {r['device']} {r['mode']} {r['layer']}: "
              f"akida {r['akida']}, ours {r['ours']}")
    write_csv(args.out, [r for r in rows if r["akida"] is not None])


if __name__ == "__main__":
    main()
