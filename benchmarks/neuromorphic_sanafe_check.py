"""Peer cross-check: the digits CNN's fc1 and fc2 layers on accelsim's akd1000 config and on
SANA-FE's Loihi model (PyPI `sanafe`, event-driven cores, published accuracy against Loihi).

SANA-FE lives in its own virtual environment, never a dependency of accelsim:

    python3 -m venv benchmarks/.venv-sanafe
    benchmarks/.venv-sanafe/bin/pip install sanafe numpy
    .venv/bin/python benchmarks/neuromorphic_sanafe_check.py

The accelsim side takes fc1's and fc2's events from workloads/digits_cnn.npz as the akd1000
config quantises them (4-bit codes, per-layer scale), writes them with the layers' weights to a
temporary file and runs this script again under benchmarks/.venv-sanafe with `--sanafe FILE`.
There, each layer is an input group of one neuron per input feature, which spikes at time step
t when its input is an event in frame t (SANA-FE takes one spike train per neuron), connected
densely to an output group that never fires (threshold above any potential), so both tools
count the same thing: input events and their synaptic operations. Prints events, synaptic
operations and energies side by side and writes benchmarks/results/neuromorphic_sanafe.csv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SANAFE_PYTHON = ROOT / "benchmarks/.venv-sanafe/bin/python"
LAYERS = ("fc1", "fc2")


def sanafe_side(path: Path) -> dict:
    """Run the layers in `path` on SANA-FE's Loihi architecture; per-layer counts (JSON)."""
    import sanafe

    data = np.load(path)
    out = {}
    for name in LAYERS:
        events, weights = data[f"events/{name}"], data[f"weight/{name}"]
        frames, k = events.shape
        arch = sanafe.load_loihi()
        net = sanafe.Network()
        group_in = net.create_neuron_group(f"{name}_in", k, {})
        group_out = net.create_neuron_group(f"{name}_out", weights.shape[1], {"threshold": 1e12})
        group_in.connect_neurons_dense(group_out, {"w": weights.astype(float).ravel()})
        cores = arch.cores()
        per_core = 1024
        for i in range(k):
            group_in[i].set_attributes(
                soma_hw_name=f"loihi_inputs[{i % per_core}]",
                model_attributes={"spikes": [int(t) + 1 for t in np.flatnonzero(events[:, i])]})
            group_in[i].map_to_core(cores[i // per_core])
        first_out = -(-k // per_core)
        for j in range(weights.shape[1]):
            group_out[j].map_to_core(cores[first_out + j // per_core])
        chip = sanafe.SpikingChip(arch)
        chip.load(net)
        res = chip.sim(frames)
        out[name] = {"events": res["packets_sent"], "synaptic_ops": res["spikes"],
                     "energy_pj": {k: v * 1e12 for k, v in res["energy"].items()},
                     "time_s": res["sim_time"]}
    return out


def accelsim_side() -> tuple[dict, dict[str, np.ndarray]]:
    """fc1 and fc2 on akd1000: counts and energies per layer, and the arrays for SANA-FE."""
    sys.path.insert(0, str(ROOT))
    from accelsim.arch.energy import price
    from accelsim.engines.neuromorphic.count import network
    from accelsim.engines.neuromorphic.events import event_mask
    from accelsim.kinds import load_arch
    from accelsim.workload import load_workload

    arch = load_arch(ROOT / "arch_configs/akd1000.yaml")
    wl = load_workload(ROOT / "workloads/digits_cnn.npz")
    results = network(wl, arch).results
    out, arrays = {}, {}
    for name in LAYERS:
        layer = wl.layer(name)
        res = results[name]
        energy = price(res.actions, arch, res.cycles / arch.clock_hz)
        out[name] = {"events": res.columns["events"], "synaptic_ops": res.columns["synaptic_ops"],
                     "energy_pj": energy, "time_s": res.cycles / arch.clock_hz}
        arrays[f"events/{name}"] = event_mask(layer, res.columns["act_bits"],
                                              arch.act_scale_percentile)
        arrays[f"weight/{name}"] = layer.weight.astype(np.float32)
    return out, arrays


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sanafe", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sanafe is not None:
        print(json.dumps(sanafe_side(args.sanafe)))
        return
    if not SANAFE_PYTHON.is_file():
        sys.exit(f"{SANAFE_PYTHON} not found: create it as the module docstring says.")
    ours, arrays = accelsim_side()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layers.npz"
        np.savez(path, **arrays)
        done = subprocess.run([str(SANAFE_PYTHON), __file__, "--sanafe", str(path)],
                              capture_output=True, text=True, check=True)
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    from benchmarks.timing import write_csv

    rows = []
    for name in LAYERS:
        a, s = ours[name], theirs[name]
        dyn = sum(v for k, v in a["energy_pj"].items() if k != "static")
        rows.append({"layer": name, "accelsim_events": a["events"], "sanafe_events": s["events"],
                     "accelsim_synaptic_ops": a["synaptic_ops"],
                     "sanafe_synaptic_ops": s["synaptic_ops"],
                     "accelsim_dynamic_pj": dyn, "accelsim_static_pj": a["energy_pj"]["static"],
                     "sanafe_total_pj": s["energy_pj"]["total"],
                     "accelsim_pj_per_event": dyn / max(a["events"], 1),
                     "sanafe_pj_per_event": s["energy_pj"]["total"] / max(s["events"], 1),
                     "sanafe_synapse_pj": s["energy_pj"]["synapse"],
                     "sanafe_network_pj": s["energy_pj"]["network"],
                     "sanafe_soma_pj": s["energy_pj"]["soma"]})
    for r in rows:
        print(", ".join(f"{k} {v:,.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in r.items()))
    write_csv(ROOT / "benchmarks/results/neuromorphic_sanafe.csv", rows)


if __name__ == "__main__":
    main()
