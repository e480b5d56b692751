"""zero_skip engine: kernels against their cycle-by-cycle twins, exact MAC accounting,
compressed formats, invariants, statistical mode and the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.cli import main
from accelsim.engines import systolic, zero_skip
from accelsim.engines.zero_skip import kernels as kern
from accelsim.engines.zero_skip.count import count_layer, identical_items_cycles
from accelsim.engines.zero_skip.formats import Format, rle_entries, stored_size
from accelsim.engines.zero_skip.work import conv_view, iid_mask, operand_masks
from accelsim.errors import ArchError
from accelsim.kinds import load_arch, parse_arch
from accelsim.workload import ConvShape, GemmShape, Layer, Workload, load_workload, save_workload
from tests.reference import (
    channel_lanes_reference,
    lane_cycles_reference,
    mac_pairs_reference,
    planar_cartesian_reference,
    rle_entries_reference,
    row_broadcast_reference,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating"]
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def shipped(name: str) -> zero_skip.Config:
    return load_arch(ROOT / "arch_configs" / f"{name}.yaml")


def arch(array: dict, skip=(), gate=(), sync=None, **kw) -> zero_skip.Config:
    return parse_arch({"name": "t", "kind": "zero_skip", "clock_mhz": 100, "array": array,
                       "skip": list(skip), "gate": list(gate), "sync": sync or {}, **kw})


def sync_dict(barrier: str, depth: int | None, issue: int) -> dict:
    return {"barrier": barrier, "fifo_depth": depth, "issue_cycles": issue}


def ref_sync(a: zero_skip.Config) -> tuple[bool, int]:
    """(barrier per pass, FIFO depth) in the references' terms."""
    return a.sync.barrier != "layer", a.fifo_depth


@st.composite
def conv_layers(draw, max_c: int = 6, max_hw: int = 7) -> Layer:
    groups = draw(st.integers(1, 3))
    cg, kg = draw(st.integers(1, max_c)), draw(st.integers(1, 5))
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(4))
    shape = ConvShape(N=draw(st.integers(1, 2)), C=groups * cg, H=h, W=w, K=groups * kg, R=r, S=s,
                      stride=stride, padding=pad, dilation=dil, groups=groups)
    if shape.E < 1 or shape.F < 1:
        shape = ConvShape(N=shape.N, C=shape.C, H=h, W=w, K=shape.K, R=1, S=1, groups=groups)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    act = rng.random(shape.act_shape) < draw(st.floats(0.0, 1.0))
    weight = rng.random(shape.weight_shape) < draw(st.floats(0.0, 1.0))
    return Layer("c", "conv2d", shape, act_mask=act, weight_mask=weight)


@st.composite
def gemm_layers(draw) -> Layer:
    shape = GemmShape(M=draw(st.integers(1, 6)), K=draw(st.integers(1, 9)),
                      N=draw(st.integers(1, 6)), batch=draw(st.integers(1, 2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    act = rng.random(shape.act_shape) < draw(st.floats(0.0, 1.0))
    weight = rng.random(shape.weight_shape) < draw(st.floats(0.0, 1.0))
    return Layer("g", "linear" if shape.batch == 1 else "matmul", shape, act_mask=act,
                 weight_mask=weight)


syncs = st.builds(sync_dict, st.sampled_from(["item", "pass", "layer"]),
                  st.sampled_from([None, 1, 2, 3]), st.integers(0, 2))


# --- timing core -------------------------------------------------------------------------------


@SETTINGS
@given(items=st.integers(0, 12), lanes=st.integers(1, 5), depth=st.sampled_from([-1, 1, 2, 3, 5]),
       issue=st.integers(0, 3), seed=st.integers(0, 2**32 - 1))
def test_lane_timing_equals_cycle_by_cycle_simulation(items, lanes, depth, issue, seed):
    rng = np.random.default_rng(seed)
    work = rng.integers(0, 6, (items, lanes)) * (rng.random((items, lanes)) < 0.7)
    ends = np.flatnonzero(rng.random(items) < 0.3)
    cycles, busy = kern.lane_cycles(work.astype(np.int64), ends.astype(np.int64), depth, issue)
    assert (cycles, busy) == lane_cycles_reference(work.tolist(), ends.tolist(), depth, issue)


@SETTINGS
@given(items=st.integers(0, 12), lanes=st.integers(1, 5), depth=st.sampled_from([-1, 1, 2, 3, 5]),
       issue=st.integers(0, 3), seed=st.integers(0, 2**32 - 1))
def test_identical_items_shortcut_equals_lane_timing(items, lanes, depth, issue, seed):
    rng = np.random.default_rng(seed)
    row = rng.integers(0, 6, lanes)
    ends = np.flatnonzero(rng.random(items) < 0.3)
    cycles, _ = kern.lane_cycles(np.tile(row, (items, 1)).astype(np.int64), ends.astype(np.int64),
                                 depth, issue)
    assert identical_items_cycles(items, row, issue) == cycles


def test_lane_timing_closed_forms():
    work = np.array([[3, 1], [1, 3], [2, 2]], np.int64)
    lockstep, _ = kern.lane_cycles(work, np.array([], np.int64), 1, 0)
    decoupled, busy = kern.lane_cycles(work, np.array([], np.int64), -1, 0)
    assert lockstep == 3 + 3 + 2            # sum over items of the slowest lane
    assert decoupled == max(3 + 1 + 2, 1 + 3 + 2) == 6 and busy == 12
    barriers, _ = kern.lane_cycles(work, np.array([0, 1, 2], np.int64), -1, 0)
    assert barriers == lockstep
    empty, _ = kern.lane_cycles(np.zeros((4, 2), np.int64), np.array([], np.int64), 1, 1)
    assert empty == 4                       # the dispatcher still needs a cycle per item


# --- dataflow kernels against their twins -------------------------------------------------------


@SETTINGS
@given(layer=st.one_of(conv_layers(), gemm_layers()), lanes=st.integers(1, 5),
       brick=st.integers(1, 4), fpp=st.integers(1, 4), skip=st.booleans(), sync=syncs)
def test_channel_lanes_matches_reference(layer, lanes, brick, fpp, skip, sync):
    a = arch({"dataflow": "channel_lanes", "lanes": lanes, "brick_size": brick,
              "filters_per_pass": fpp}, skip=("act",) if skip else (), sync=sync)
    v = conv_view(layer, *operand_masks(layer))
    barrier_pass, depth = ref_sync(a)
    expected, _ = channel_lanes_reference(
        v.act, v.K, v.R, v.S, v.groups, v.stride, v.padding, v.dilation, lanes, brick, fpp,
        skip, barrier_pass, depth, a.sync.issue_cycles)
    assert count_layer(layer, a).compute_cycles == expected


@SETTINGS
@given(layer=st.one_of(conv_layers(max_c=4, max_hw=6), gemm_layers()),
       grid=st.tuples(st.integers(1, 3), st.integers(1, 3)), fi=st.tuples(st.integers(1, 3),
       st.integers(1, 3)), entries=st.integers(1, 64), skip=st.sampled_from(
           [("act", "weight"), ("act",), ("weight",), ()]), sync=syncs)
def test_planar_cartesian_matches_reference(layer, grid, fi, entries, skip, sync):
    a = arch({"dataflow": "planar_cartesian", "pe_rows": grid[0], "pe_cols": grid[1],
              "mult_f": fi[0], "mult_i": fi[1], "accumulator_entries": entries},
             skip=skip, sync=sync)
    v = conv_view(layer, *operand_masks(layer), planar=True)
    barrier_pass, depth = ref_sync(a)
    cycles, _, products = planar_cartesian_reference(
        v.act, v.weight, v.groups, v.stride, v.padding, v.dilation, grid[0], grid[1], fi[0],
        fi[1], entries, "act" in skip, "weight" in skip, barrier_pass, depth, a.sync.issue_cycles)
    result = count_layer(layer, a)
    assert result.compute_cycles == cycles
    assert result.columns["macs_wasted"] == products - result.macs_done >= 0


@SETTINGS
@given(layer=st.one_of(conv_layers(max_c=4, max_hw=5), gemm_layers()), lanes=st.integers(1, 6),
       skip=st.sampled_from([("act", "weight"), ("act",), ("weight",), ()]), sync=syncs)
def test_row_broadcast_matches_reference(layer, lanes, skip, sync):
    a = arch({"dataflow": "row_broadcast", "lanes": lanes}, skip=skip, sync=sync)
    v = conv_view(layer, *operand_masks(layer))
    barrier_pass, depth = ref_sync(a)
    expected, busy = row_broadcast_reference(
        v.act, v.weight, v.groups, v.stride, v.padding, v.dilation, lanes, "act" in skip,
        "weight" in skip, barrier_pass, depth, a.sync.issue_cycles)
    result = count_layer(layer, a)
    assert result.compute_cycles == expected
    assert busy == result.macs_done


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped yet")
@pytest.mark.slow
def test_kernels_match_references_on_real_digits_bitmaps():
    wl = load_workload(DIGITS)
    conv = next(x for x in wl.layers if x.op == "conv2d")
    small = Layer(conv.name, "conv2d", conv.shape.__class__(**{**conv.shape.__dict__, "N": 2}),
                  act_mask=conv.nonzero()[:2])
    v = conv_view(small, *operand_masks(small))
    cnv = shipped("cnvlutin_like")
    expected, _ = channel_lanes_reference(v.act, v.K, v.R, v.S, v.groups, v.stride, v.padding,
                                          v.dilation, 16, 16, 256, True, True, 1, 1)
    assert count_layer(small, cnv).compute_cycles == expected
    eie = shipped("eie_like")
    expected, _ = row_broadcast_reference(v.act, v.weight, v.groups, v.stride, v.padding,
                                          v.dilation, 64, True, True, True, 8, 1)
    assert count_layer(small, eie).compute_cycles == expected
    scnn = shipped("scnn_like")
    cycles, _, _ = planar_cartesian_reference(v.act, v.weight, v.groups, v.stride, v.padding,
                                              v.dilation, 8, 8, 4, 4, 1024, True, True, True,
                                              -1, 0)
    assert count_layer(small, scnn).compute_cycles == cycles


# --- MAC accounting --------------------------------------------------------------------------


@SETTINGS
@given(layer=conv_layers(max_c=4, max_hw=5), which=st.sampled_from(CONFIGS))
def test_mac_accounting_walks_every_mac(layer, which):
    a = shipped(which)
    v = conv_view(layer, *operand_masks(layer))
    dense, a_nz, w_nz, both, pad = mac_pairs_reference(v.act, v.weight, v.groups, v.stride,
                                                       v.padding, v.dilation)
    r = count_layer(layer, a)
    assert r.macs_dense == dense == layer.macs
    assert r.macs_done + r.macs_skipped == r.macs_dense
    expected_done = {"cnvlutin_like": a_nz, "scnn_like": both, "eie_like": both,
                     "eyeriss_gating": dense}[which]
    assert r.macs_done == expected_done
    assert r.macs_gated == (dense - a_nz if which == "eyeriss_gating" else 0)
    if which == "scnn_like":
        assert pad <= r.macs_skipped


def test_gating_weights_on_skipping_lanes_and_planar_dense_weights():
    rng = np.random.default_rng(3)
    shape = ConvShape(N=1, C=5, H=6, W=6, K=4, R=3, S=3, padding=(1, 1, 1, 1))
    layer = Layer("c", "conv2d", shape, act_mask=rng.random(shape.act_shape) < 0.5,
                  weight_mask=rng.random(shape.weight_shape) < 0.6)
    v = conv_view(layer, *operand_masks(layer))
    dense, a_nz, w_nz, both, pad = mac_pairs_reference(v.act, v.weight, 1, v.stride, v.padding,
                                                       v.dilation)
    lanes = arch({"dataflow": "channel_lanes", "lanes": 4, "brick_size": 2,
                  "filters_per_pass": 2}, skip=("act",), gate=("weight",))
    r = count_layer(layer, lanes)
    assert (r.macs_done, r.macs_gated) == (a_nz, a_nz - both)
    planar = arch({"dataflow": "planar_cartesian", "pe_rows": 2, "pe_cols": 2, "mult_f": 2,
                   "mult_i": 2, "accumulator_entries": 32}, skip=("weight",))
    assert count_layer(layer, planar).macs_done == w_nz


# --- formats ---------------------------------------------------------------------------------


@SETTINGS
@given(bits=st.lists(st.booleans(), max_size=300), run_bits=st.integers(1, 5),
       segment=st.one_of(st.none(), st.integers(1, 40)))
def test_rle_entries_match_sequential_encoder(bits, run_bits, segment):
    flat = np.array(bits, bool)
    assert rle_entries(flat, run_bits, segment) == rle_entries_reference(bits, run_bits, segment)


def test_format_sizes():
    mask = np.zeros(64, bool)
    mask[[0, 40, 41]] = True
    assert stored_size(mask, Format(), 16).total_bytes == 128
    bitmap = stored_size(mask, Format(kind="bitmap"), 16)
    assert (bitmap.value_bits, bitmap.metadata_bits) == (48, 64)
    rle = stored_size(mask, Format(kind="rle", run_bits=4), 16)
    assert rle.value_bits == 16 * (3 + 2)          # 39 zeros before index 40: two fillers
    csr = stored_size(mask, Format(kind="csr", index_bits=4, segment_elements=16,
                                   pointer_bits=8), 16)
    assert csr.metadata_bits == 3 * 4 + 4 * 8
    with pytest.raises(ValueError, match="index_bits"):
        Format(kind="csr", index_bits=3, segment_elements=16)


# --- invariants ------------------------------------------------------------------------------


@SETTINGS
@given(layer=st.one_of(conv_layers(), gemm_layers()), which=st.sampled_from(CONFIGS),
       seed=st.integers(0, 2**32 - 1), fraction=st.floats(0.0, 1.0))
def test_zeroing_more_activations_never_adds_cycles(layer, which, seed, fraction):
    a = shipped(which)
    before = count_layer(layer, a)
    act = layer.nonzero() & (np.random.default_rng(seed).random(layer.shape.act_shape) >= fraction)
    sparser = Layer(layer.name, layer.op, layer.shape, act_mask=act, weight_mask=layer.weight_mask)
    after = count_layer(sparser, a)
    assert after.compute_cycles <= before.compute_cycles
    assert after.cycles <= before.cycles + 1e-9
    assert after.macs_done <= before.macs_done


def test_the_dense_equivalent_is_made_once_per_arch():
    a = shipped("scnn_like")
    dense = a.dense_equivalent()
    assert a.dense_equivalent() is dense
    assert dense.name == f"{a.name}-dense" and dense.skip == () and dense.gate == ()
    assert not dense.act_format.compressed and not dense.weight_format.compressed
    other = a.model_copy(update={"name": "other"})
    assert other.dense_equivalent() is not dense
    assert other.dense_equivalent().name == "other-dense"
    assert other.dense_equivalent().model_dump(exclude={"name"}) == dense.model_dump(
        exclude={"name"})


@pytest.mark.parametrize("which", ["cnvlutin_like", "eie_like"])
def test_dense_trace_costs_the_dense_cycles(which):
    a = shipped(which)
    shape = ConvShape(N=1, C=40, H=6, W=6, K=20, R=3, S=3)
    layer = Layer("d", "conv2d", shape, act_mask=np.ones(shape.act_shape, bool))
    sparse, dense = count_layer(layer, a), count_layer(layer, a.dense_equivalent())
    assert sparse.compute_cycles == dense.compute_cycles
    assert sparse.macs_done == dense.macs_done == layer.macs
    # declared overheads: the compressed formats' metadata, never fewer bytes than dense
    assert sum(v for k, v in sparse.actions.items() if "metadata" in k) > 0


def test_dense_trace_on_scnn_equals_its_own_dense_mode_and_padding_is_never_work():
    a = shipped("scnn_like")
    shape = ConvShape(N=1, C=16, H=14, W=14, K=32, R=3, S=3, padding=(1, 1, 1, 1))
    layer = Layer("d", "conv2d", shape, act_mask=np.ones(shape.act_shape, bool))
    off = a.model_copy(update={"skip": ()})
    assert count_layer(layer, a).compute_cycles == count_layer(layer, off).compute_cycles


def test_gating_never_changes_cycles():
    gating = shipped("eyeriss_gating").model_copy(update={"model_memory_stalls": False})
    dense_array = load_arch(ROOT / "arch_configs" / "eyeriss_like.yaml")
    rng = np.random.default_rng(0)
    shape = ConvShape(N=1, C=24, H=10, W=10, K=16, R=3, S=3, padding=(1, 1, 1, 1))
    for density in (0.0, 0.3, 1.0):
        layer = Layer("g", "conv2d", shape, act_mask=rng.random(shape.act_shape) < density)
        r = count_layer(layer, gating)
        assert r.compute_cycles == systolic.simulate(layer, dense_array).compute_cycles
        assert r.cycles == count_layer(layer, gating.dense_equivalent()).cycles
        assert r.macs_skipped == 0 and r.macs_done == layer.macs


def test_results_are_deterministic_and_statistical_layers_are_labelled():
    shape = ConvShape(N=1, C=32, H=12, W=12, K=32, R=3, S=3, padding=(1, 1, 1, 1))
    layer = Layer("s", "conv2d", shape, declared_act_density=0.4, declared_weight_density=0.5)
    for which in CONFIGS:
        a = shipped(which)
        first, second = zero_skip.simulate(layer, a), zero_skip.simulate(layer, a)
        assert first == second
        assert first.engine_mode == "statistical"
        assert first.columns["cycles_if_uniform"] == first.cycles
    act, weight = operand_masks(layer)
    assert act.sum() == round(0.4 * act.size) and weight.sum() == round(0.5 * weight.size)


def test_uniform_prediction_keeps_the_count_and_differs_on_structured_sparsity():
    shape = ConvShape(N=1, C=64, H=8, W=8, K=64, R=1, S=1)
    act = np.zeros(shape.act_shape, bool)
    act[:, :32] = True                       # half the channels dead: bricks of 16 all-or-nothing
    layer = Layer("dead", "conv2d", shape, act_mask=act)
    res = zero_skip.simulate(layer, shipped("cnvlutin_like"))
    assert operand_masks(layer, uniform=True)[0].sum() == act.sum()
    assert res.engine_mode == "trace"
    # dead channel bricks sit on lanes 2-3 every step while lanes 0-1 do full bricks: the trace
    # is as slow as dense, the i.i.d. prediction (imbalance of ~8 of 16 per brick) is faster
    dense = count_layer(layer, shipped("cnvlutin_like").dense_equivalent())
    assert res.compute_cycles == dense.compute_cycles
    assert res.columns["cycles_if_uniform"] < res.cycles


def test_iid_mask_is_seeded_by_key():
    a, b = iid_mask((50, 50), 0.3, "x"), iid_mask((50, 50), 0.3, "x")
    assert (a == b).all() and a.sum() == 750
    assert not (a == iid_mask((50, 50), 0.3, "y")).all()


# --- configuration errors and the CLI --------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"skip": ["act", "weight"]}, "cannot skip zero weights"),
    ({"gate": ["act"]}, "both skipped and gated"),
    ({"act_format": {"kind": "rle"}}, "run_bits"),
    ({"act_format": {"kind": "bitmap", "levels": ["nowhere"]}}, "unknown memory level"),
    ({"sync": {"fifo_depth": 0}}, "fifo_depth"),
    ({"dense_baseline": {"kind": "systolic", "rows": 32, "cols": 32}}, "--baseline"),
])
def test_bad_configs_are_refused_with_the_reason(change, message):
    raw = yaml.safe_load((ROOT / "arch_configs" / "cnvlutin_like.yaml").read_text())
    raw.update(change)
    with pytest.raises(ArchError, match=message):
        parse_arch(raw, "cnvlutin_like.yaml")


def test_cli_run_shows_uniform_prediction_and_bad_arch_exits_2(tmp_path, capsys):
    rng = np.random.default_rng(1)
    shape = ConvShape(N=1, C=16, H=8, W=8, K=16, R=3, S=3, padding=(1, 1, 1, 1))
    wl = Workload("toy", [Layer("c1", "conv2d", shape,
                                act=(rng.random(shape.act_shape) * (rng.random(shape.act_shape) < 0.4))
                                .astype(np.float16)),
                          Layer("fc", "linear", GemmShape(M=2, K=64, N=8), declared_act_density=0.3)])
    path = tmp_path / "toy.npz"
    save_workload(wl, path)
    assert main(["run", str(ROOT / "arch_configs" / "scnn_like.yaml"), str(path),
                 "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(df["engine_mode"]) == ["trace", "statistical"]
    assert df["cycles_if_uniform"].notna().all() and (df["speedup_vs_dense"] > 0).all()
    assert (df["macs_done"] + df["macs_skipped"] == df["macs_dense"]).all()
    bad = tmp_path / "bad.yaml"
    raw = yaml.safe_load((ROOT / "arch_configs" / "scnn_like.yaml").read_text())
    raw["array"]["dataflow"] = "diagonal"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["run", str(bad), str(path)]) == 2
    assert "'array': unknown 'dataflow' 'diagonal'" in capsys.readouterr().err
