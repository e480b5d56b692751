"""Published behaviour of the zero-skip configs, reproduced on synthetic i.i.d. inputs.

Tolerances are stated per test; they are wide where the published figure is an average over
real networks and our inputs are i.i.d. layers of similar shapes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from accelsim.engines.zero_skip.count import count_layer
from accelsim.engines.zero_skip.work import iid_mask
from accelsim.kinds import load_arch, parse_arch
from accelsim.simulate import simulate
from accelsim.workload import ConvShape, GemmShape, Layer, Workload

ROOT = Path(__file__).resolve().parents[1]

# GoogLeNet-like convolutions (plane, in channels, filters, kernel): the network shapes SCNN and
# Cnvlutin report on, from 56 x 56 down to 7 x 7 planes (Szegedy et al., CVPR 2015, Table 1).
GOOGLENET_LIKE = [
    (56, 64, 192, 3), (28, 192, 64, 1), (28, 96, 128, 3), (28, 16, 32, 5), (28, 128, 192, 3),
    (14, 480, 192, 1), (14, 96, 208, 3), (14, 112, 224, 3), (14, 24, 64, 5), (7, 832, 256, 1),
    (7, 160, 320, 3), (7, 192, 384, 3),
]


def googlenet_like(act_density: float, weight_density: float | None) -> Workload:
    layers = []
    for i, (hw, c, k, r) in enumerate(GOOGLENET_LIKE):
        shape = ConvShape(N=1, C=c, H=hw, W=hw, K=k, R=r, S=r, padding=(r // 2,) * 4)
        weight = (None if weight_density is None
                  else iid_mask(shape.weight_shape, weight_density, f"w{i}"))
        layers.append(Layer(f"l{i}", "conv2d", shape,
                            act_mask=iid_mask(shape.act_shape, act_density, f"a{i}"),
                            weight_mask=weight))
    return Workload("googlenet-like", layers)


def config(name: str) -> dict:
    return yaml.safe_load((ROOT / "arch_configs" / f"{name}.yaml").read_text())


@pytest.mark.slow
def test_eie_load_balance_efficiency_vs_fifo_depth():
    """EIE (ISCA 2016, Fig. 'Load efficiency vs FIFO depth', 64 PEs): ~0.5 at depth 1, rising
    with diminishing returns beyond depth 8. Layer: AlexNet FC7 (4096 x 4096) at EIE's
    published densities, 9 % weights and 35 % activations (EIE Table III).
    Tolerances: depth 1 within 0.35-0.65; depth 8 at least 0.85; depths 8 -> 64 gain less than
    a tenth of what depths 1 -> 8 gain; efficiency never falls as the FIFO deepens."""
    fc7 = Layer("fc7", "linear", GemmShape(M=1, K=4096, N=4096),
                act_mask=iid_mask((1, 4096), 0.35, "fc7/act"),
                weight_mask=iid_mask((4096, 4096), 0.09, "fc7/weight"))
    raw = config("eie_like")
    efficiency = {}
    for depth in (1, 2, 4, 8, 16, 32, 64):
        raw["sync"]["fifo_depth"] = depth
        efficiency[depth] = count_layer(fc7, parse_arch(raw)).columns["lane_efficiency"]
    values = list(efficiency.values())
    assert all(b >= a for a, b in zip(values, values[1:])), efficiency
    assert 0.35 <= efficiency[1] <= 0.65, efficiency
    assert efficiency[8] >= 0.85, efficiency
    assert efficiency[64] - efficiency[8] < 0.1 * (efficiency[8] - efficiency[1]), efficiency


@pytest.mark.slow
def test_scnn_against_dcnn_dense_penalty_break_even_and_sparse_speedup():
    """SCNN (ISCA 2017) against DCNN, a different dense design with the same 1024 multipliers
    (`arch_configs/dcnn_like.yaml`, compared as a named baseline, never as SCNN's own dense
    equivalent): fully dense inputs run at 0.79x; break-even near 0.85 / 0.85 density; ~24x at
    0.1 / 0.1. Predictions: neither config was fitted to these figures (DCNN is a 32 x 32
    input-stationary systolic stand-in, double-buffered, sized from the paper). Tolerances:
    0.6-0.95x dense; slower than DCNN at 0.9 / 0.9 and faster at 0.7 / 0.7 (break-even between),
    0.8-1.25x at 0.85 / 0.85; at 0.1 / 0.1 at least 10x ("an order of magnitude or more") and
    below 60x. The paper's energy figures are not checked here: the stand-in's buffer energy is
    an upper bound (see its weight_buffer comment).
    Against its own dense equivalent (the same PEs with skipping and compression off) a dense
    trace costs at least as much time and energy, and sparse inputs save both."""
    scnn = load_arch(ROOT / "arch_configs" / "scnn_like.yaml")
    dcnn = load_arch(ROOT / "arch_configs" / "dcnn_like.yaml")

    def versus_dcnn(density: float) -> float:
        workload = googlenet_like(density, density)
        return (simulate(workload, dcnn).totals()["latency_s"]
                / simulate(workload, scnn).totals()["latency_s"])

    assert 0.6 <= versus_dcnn(1.0) <= 0.95
    assert versus_dcnn(0.9) < 1.0
    assert versus_dcnn(0.7) > 1.0
    assert 0.8 <= versus_dcnn(0.85) <= 1.25
    assert 10.0 <= versus_dcnn(0.1) <= 60.0
    dense = simulate(googlenet_like(1.0, 1.0), scnn).totals()
    assert dense["speedup_vs_dense"] == pytest.approx(1.0)
    assert dense["energy_saving_vs_dense"] <= 1.0
    sparse = simulate(googlenet_like(0.1, 0.1), scnn).totals()
    assert sparse["speedup_vs_dense"] > 10.0 and sparse["energy_saving_vs_dense"] > 2.0


@pytest.mark.slow
def test_cnvlutin_gets_well_below_the_ideal_speedup():
    """Cnvlutin (ISCA 2016): ~44 % zero inputs give 1.37x on average (1.24-1.55x) over
    DaDianNao, where skipping alone would give 1 / 0.56 = 1.79x. Tolerance: 1.2-1.55x with lanes
    synchronised per brick set; letting lanes drift until the end of each window gets closer to
    the ideal but stays below it."""
    workload = googlenet_like(0.56, None)
    brick_sync = simulate(workload, load_arch(ROOT / "arch_configs" / "cnvlutin_like.yaml"))
    speedup = brick_sync.totals()["speedup_vs_dense"]
    assert 1.2 <= speedup <= 1.55, speedup
    raw = config("cnvlutin_like")
    raw["sync"]["barrier"] = "pass"
    window_sync = simulate(workload, parse_arch(raw)).totals()["speedup_vs_dense"]
    assert speedup < window_sync < 1 / 0.56, window_sync
    assert (brick_sync.layers["macs_done"] / brick_sync.layers["macs_dense"]).max() < 0.58


def test_eyeriss_gating_saves_energy_never_cycles():
    """Eyeriss (JSSC 2017): zero ifmaps gate the MAC; same cycles, less energy. Checked with
    memory stalls off so that only gating differs from the dense run."""
    raw = config("eyeriss_gating")
    raw["model_memory_stalls"] = False
    arch = parse_arch(raw)
    result = simulate(googlenet_like(0.4, None), arch)
    layers = result.layers
    assert (layers["cycles"] == layers["dense_cycles"]).all()
    assert (layers["energy_saving_vs_dense"] > 1.0).all()
    full = 1 - layers["macs_gated"] / layers["macs_dense"]   # non-zero activation MACs
    assert (full <= 0.41).all() and (layers["macs_skipped"] == 0).all()
    assert (result.layers["energy_mac_pj"] < result.layers["dense_energy_pj"]).all()
