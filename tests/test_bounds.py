"""Physical bounds on every shipped config x every shipped trace (DESIGN.md §5): no layer is
faster than skipping its work allows unless the row names the effect; gating never changes
compute cycles; totals say which share of the model they cover."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.engines.zero_skip.count import count_layer
from accelsim.kinds import load_arch
from accelsim.results import RunResult
from accelsim.simulate import simulate
from accelsim.workload import load_workload

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "arch_configs").glob("*.yaml"))
TRACES = sorted((ROOT / "workloads").glob("*.npz"))
GENERIC = "is above dense MACs / MACs done"
"""How `accelsim.simulate` states a speed-up above the bound; a named effect says more."""


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], RunResult]:
    workloads = {t.stem: load_workload(t) for t in TRACES}
    return {(c.stem, name): simulate(w, load_arch(c)) for c in CONFIGS
            for name, w in workloads.items()}


def test_every_shipped_config_ran_on_every_shipped_trace(runs):
    assert len(runs) == len(CONFIGS) * len(TRACES) and len(TRACES) >= 4


def test_no_speedup_above_its_bound_without_a_named_effect(runs):
    unexplained = []
    for (config, trace), result in runs.items():
        df = result.layers
        bound = df["macs_dense"] / df["macs_done"].where(df["macs_done"] > 0)
        for i in df.index[df["speedup_vs_dense"] > bound * (1 + 1e-9)]:
            named = [w for w in df.at[i, "warnings"].split("; ") if w and GENERIC not in w]
            if not named:
                unexplained.append(f"{config} {trace} {df.at[i, 'layer']}: "
                                   f"{df.at[i, 'speedup_vs_dense']:.3g}x > {bound[i]:.3g}x")
    assert unexplained == []


def test_rows_without_a_result_say_why_and_totals_say_what_they_cover(runs):
    for (config, trace), result in runs.items():
        df = result.layers
        missing = df[df["cycles"].isna()]
        assert (missing["warnings"] != "").all(), (config, trace)
        assert (missing["bound"] == "none").all()
        covered = df.loc[df["cycles"].notna(), "macs_dense"].sum() / df["macs_dense"].sum()
        assert result.totals()["covered_macs_fraction"] == pytest.approx(covered)
        assert bool(result.coverage_note()) == (len(missing) > 0), (config, trace)


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.stem == "eyeriss_gating"],
                         ids=lambda c: c.stem)
def test_gating_never_changes_compute_cycles(config):
    arch = load_arch(config)
    assert arch.gate and not arch.skip
    dense = arch.dense_equivalent()
    for trace in TRACES:
        for layer in load_workload(trace).layers:
            assert count_layer(layer, arch).compute_cycles == count_layer(layer, dense).compute_cycles


def test_speedups_above_the_density_bound_on_padded_convs_name_the_padding(runs):
    """crepe's later convs read mostly padding (kernel 64 on 8-32 stored columns): a
    zero-skipping design skips it, so the speed-up passes 1 / act_density, and the row says
    why, with the padding share of the dense MACs."""
    named = 0
    for result in runs.values():
        df = result.layers
        density = df["act_density"] * df["weight_density"]
        above = df["speedup_vs_dense"] > (1 + 1e-9) / density
        named += int(df.loc[above, "warnings"].str.contains("read zero padding").sum())
        assert not df.loc[~above, "warnings"].str.contains("read zero padding").any()
    assert named > 0
    eie = runs[("eie_like", "crepe_full")].layers.set_index("layer")
    assert "read zero padding" in eie.at["conv6", "warnings"]
    assert "read zero padding" not in eie.at["classifier", "warnings"]


def test_padding_share_counts_every_window_tap_on_padding() -> None:
    from accelsim.simulate import padding_note
    from accelsim.workload.layer import ConvShape, Layer

    shape = ConvShape(N=1, C=2, H=1, W=8, K=3, R=1, S=5, padding=(0, 0, 2, 2))
    layer = Layer(name="c", op="conv2d", shape=shape, declared_act_density=0.5)
    taps = [(f, s) for f in range(8) for s in range(5)]
    padded = sum(not 0 <= f + s - 2 < 8 for f, s in taps) / len(taps)
    assert padding_note(layer, 1.0 / 0.5 * 1.01).startswith(f"{padded:.0%} of the dense MACs")
    assert padding_note(layer, 1.9) == ""


def test_neuromorphic_speedups_above_the_density_bound_name_the_event_codes(runs):
    """MiniLM's GELU outputs quantised to 4-bit codes: many non-zero floats round to no event,
    so an Akida core beats 1 / act_density; every such row says how many events remain."""
    unnamed = []
    for (config, trace), result in runs.items():
        if not config.startswith(("akd", "akida")):
            continue
        df = result.layers
        above = df["speedup_vs_dense"] > (1 + 1e-9) / (df["act_density"] * df["weight_density"])
        text = df.loc[above, "warnings"]
        unnamed += [f"{config} {trace} {name}" for name, w in zip(df.loc[above, "layer"], text)
                    if "event codes" not in w and "read zero padding" not in w]
    assert unnamed == []
    minilm = runs[("akd1000", "minilm")].layers
    assert minilm["warnings"].str.contains("event codes").sum() > 10


def test_rows_whose_energy_is_mostly_static_power_say_so(runs):
    """Energy per MAC far above any MAC price (hundreds of pJ on a small network on Akida) is
    the chip's floor over the row's latency: such rows say so, with the share, and only they."""
    noted_rows = 0
    for (config, trace), result in runs.items():
        df = result.layers
        share = df["energy_static_pj"].fillna(0.0) / df["energy_pj"].where(df["energy_pj"] > 0)
        noted = df["warnings"].str.contains("static power is", regex=False)
        assert (noted == (share > 0.5)).all(), (config, trace)
        for i in df.index[noted]:
            assert f"static power is {share[i]:.0%} of this row's energy" in df.at[i, "warnings"]
        noted_rows += int(noted.sum())
    assert noted_rows > 0
