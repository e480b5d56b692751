"""Tiling-aware memory traffic (accelsim.engines.traffic): SCALE-Sim 3.0.0's DRAM counts, the
tile search against an explicit walk of its loop nest, shared buffers, PE registers, columns."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from accelsim.engines import systolic, traffic
from accelsim.engines.shared_gemm_operand import gemm_problem
from accelsim.errors import AccelsimError
from accelsim.kinds import parse_arch
from accelsim.workload import GemmShape, Layer
from tests.test_systolic import conv, reference_layer

REFERENCE_TABLE = Path(__file__).parent / "data" / "scalesim_reference.csv"


def dram(bw: float = 64.0) -> dict:
    return {"name": "dram", "kind": "dram", "dram_type": "lpddr4",
            "read_bandwidth_bytes_per_cycle": bw}


def sram(name: str, size: int, holds: list[str] | None = None) -> dict:
    level = {"name": name, "kind": "sram", "size_bytes": size,
             "read_bandwidth_bytes_per_cycle": 1024.0}
    if holds:
        level["holds"] = holds
    return level


def array(rows: int, cols: int, dataflow: str, memory: list, **kw) -> systolic.Config:
    return parse_arch({"name": "t", "kind": "systolic", "clock_mhz": 100, "rows": rows,
                       "cols": cols, "dataflow": dataflow, "memory": memory, **kw})


def scalesim_arch(row) -> systolic.Config:
    """SCALE-Sim's setup of one reference row: three SRAMs, 1-byte words everywhere."""
    memory = [dram(), sram("ifmap", int(row.ifmap_sram_kb) * 1024, ["act"]),
              sram("filter", int(row.filter_sram_kb) * 1024, ["weight"]),
              sram("ofmap", int(row.ofmap_sram_kb) * 1024, ["out"])]
    return array(int(row.rows), int(row.cols), row.dataflow, memory, tiling="scalesim",
                 precision={"act_bits": 8, "weight_bits": 8, "acc_bits": 8})


def ratios() -> pd.DataFrame:
    table = pd.read_csv(REFERENCE_TABLE)
    got = []
    for row in table.itertuples():
        layer, a = reference_layer(row), scalesim_arch(row)
        t = traffic.layer_traffic(layer, a, gemm_problem(layer), a.rows, a.cols, a.dataflow,
                                  "scalesim")
        got.append((t.reads["dram", "act"], t.reads["dram", "weight"],
                    t.writes["dram", "out"] + t.writes["dram", "psum"]))
    ours = np.array(got)
    table["act"] = ours[:, 0] / table["dram_ifmap_reads"]
    table["weight"] = ours[:, 1] / table["dram_filter_reads"]
    table["out"] = ours[:, 2] / table["dram_ofmap_writes"]
    return table


@pytest.mark.skipif(not REFERENCE_TABLE.is_file(), reason="SCALE-Sim reference table not generated")
def test_dram_reads_and_writes_follow_scalesim_3_0_0_table():
    """>= 90 % of the 900 cases within 25 % per operand (recorded: 98.4 % of IFMAP reads,
    99.6 % of filter reads, 100 % of OFMAP writes), none beyond 2x but the `memory` group.

    That group runs SCALE-Sim's USER-bandwidth mode, whose read buffer (`read_buffer.py`) fills
    from a prefetch matrix rather than from the demand stream that CALC mode's estimate buffer
    follows (`read_buffer_estimate_bw.py`, what `tiling: scalesim` models): there it fetches
    far more than the input (6x on the 2 KiB SRAMs), as the assertion below states."""
    table = ratios()
    for op in ("act", "weight", "out"):
        within = ((table[op] >= 0.8) & (table[op] <= 1.25)).mean()
        assert within >= 0.9, (op, within)
    off = table[["act", "weight", "out"]].apply(lambda c: (c > 2) | (c < 0.5)).any(axis=1)
    assert set(table.loc[off, "group"]) <= {"memory"}
    user = table["bandwidth"].notna()
    assert set(table.loc[user, "group"]) == {"memory"}
    assert (table.loc[off, "dram_ifmap_reads"]
            > 2 * table.loc[off, "ifmap_h"] * table.loc[off, "ifmap_w"]
            * table.loc[off, "channels"]).all()


@pytest.mark.skipif(not REFERENCE_TABLE.is_file(), reason="SCALE-Sim reference table not generated")
def test_scalesim_psums_go_to_dram_and_the_search_keeps_them_on_chip():
    """SCALE-Sim drains every OFMAP write to DRAM: in WS and IS that is row folds x outputs
    (its DRAM OFMAP writes equal its SRAM ones); a tiling keeps the partial sums in the output
    buffer when their tile fits and writes each output once."""
    table = pd.read_csv(REFERENCE_TABLE)
    ws_is = table[table["dataflow"] != "os"]
    ratio = ws_is["dram_ofmap_writes"] / ws_is["sram_ofmap_writes"]
    assert ratio.between(0.99, 1.01).all()
    small = conv(12, 12, 3, 3, 32, 16, padding=1)
    memory = [dram(), sram("ifmap", 65536, ["act"]), sram("filter", 65536, ["weight"]),
              sram("ofmap", 65536, ["out"])]
    for dataflow in ("ws", "is"):
        a = array(8, 8, dataflow, memory)
        t = traffic.layer_traffic(small, a, gemm_problem(small), 8, 8, dataflow, "search")
        s = traffic.layer_traffic(small, a, gemm_problem(small), 8, 8, dataflow, "scalesim")
        outputs = small.shape.K * small.shape.E * small.shape.F
        assert t.writes["dram", "out"] == outputs and t.reads["dram", "out"] == 0
        assert t.writes["dram", "psum"] == t.reads["dram", "psum"] == 0
        assert s.writes["dram", "out"] + s.writes["dram", "psum"] == t.array.out_writes > outputs
        assert s.reads["dram", "psum"] == 0


@pytest.mark.skipif(not REFERENCE_TABLE.is_file(), reason="SCALE-Sim reference table not generated")
def test_the_search_moves_no_more_dram_bytes_than_scalesims_rules():
    """On SCALE-Sim's buffers the tiling search never needs more than 1.1x the DRAM bytes of
    SCALE-Sim's fixed rules (recorded: more on 8 of 900 cases, at most 1.083x, where pixel
    tiles re-fetch their halo rows: large strided or 7x7 inputs), and often far less."""
    table = pd.read_csv(REFERENCE_TABLE)
    ratio = []
    for row in table.itertuples():
        layer, a = reference_layer(row), scalesim_arch(row)
        p = gemm_problem(layer)
        total = []
        for mode in ("search", "scalesim"):
            t = traffic.layer_traffic(layer, a, p, a.rows, a.cols, a.dataflow, mode)
            total.append(sum(v for k, v in t.read_bytes.items() if k[0] == "dram")
                         + sum(v for k, v in t.write_bytes.items() if k[0] == "dram"))
        ratio.append(total[0] / total[1])
    ratio = np.array(ratio)
    assert ratio.max() <= 1.1
    assert (ratio > 1.0001).sum() <= 10
    assert (ratio < 0.5).sum() >= 100


def walk(geo: traffic.Geometry, m: traffic.Mapping) -> tuple[float, float, float]:
    """DRAM (act, weight, partial-sum write) elements of one linear-layer group by walking
    the tile loops in order with one resident tile per operand: the slow twin of `_search`."""
    ranges = {"p": range(0, geo.pixels, m.pixel_tile), "f": range(0, geo.filters, m.filter_tile),
              "w": range(0, geo.window, m.window_tile)}
    size = {"p": m.pixel_tile, "f": m.filter_tile, "w": m.window_tile}
    extent = {"p": geo.pixels, "f": geo.filters, "w": geo.window}
    resident: dict[str, tuple | None] = {"act": None, "weight": None, "out": None}
    seen_out: set[tuple] = set()
    moved = {"act": 0.0, "weight": 0.0, "psum": 0.0}
    for point in itertools.product(*(ranges[loop] for loop in m.order)):
        at = dict(zip(m.order, point, strict=True))

        def span(loop: str) -> int:
            return min(size[loop], extent[loop] - at[loop])  # noqa: B023

        for op in ("act", "weight", "out"):
            key = tuple(at[loop] for loop in sorted(traffic.DEPENDS[op]))
            if resident[op] == key:
                continue
            resident[op] = key
            elems = math.prod(span(loop) for loop in traffic.DEPENDS[op])
            if op == "out":
                if key in seen_out:
                    moved["psum"] += elems
                seen_out.add(key)
            else:
                moved[op] += elems
    return moved["act"], moved["weight"], moved["psum"]


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 300), k=st.integers(1, 300), n=st.integers(1, 300),
       buf=st.integers(64, 1 << 17), rows=st.sampled_from([4, 8, 16]),
       dataflow=st.sampled_from(["os", "ws", "is"]), shared=st.booleans())
def test_search_counts_equal_an_explicit_walk_of_its_loop_nest(m, k, n, buf, rows, dataflow,
                                                               shared):
    layer = Layer("g", "linear", GemmShape(M=m, K=k, N=n))
    memory = ([dram(), sram("buf", buf)] if shared else
              [dram(), sram("a", buf, ["act"]), sram("w", buf, ["weight"]),
               sram("o", 4 * buf, ["out"])])
    a = array(rows, rows, dataflow, memory)
    p = gemm_problem(layer)
    t = traffic.layer_traffic(layer, a, p, rows, rows, dataflow)
    assert t.mapping is not None
    if not t.mapping.fits:
        return
    act, weight, psum = walk(traffic.geometry(layer.shape, p), t.mapping)
    assert t.reads["dram", "act"] == pytest.approx(act)
    assert t.reads["dram", "weight"] == pytest.approx(weight)
    assert t.psum_dram_writes == pytest.approx(psum)
    assert t.psum_dram_reads == pytest.approx(psum)
    # never below compulsory traffic
    assert act >= m * k and weight >= k * n


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 300), k=st.integers(1, 300), n=st.integers(1, 300),
       batch=st.integers(1, 3), buf=st.integers(64, 1 << 17), rows=st.sampled_from([4, 8, 16]),
       dataflow=st.sampled_from(["os", "ws", "is"]), shrink=st.sampled_from([1.0, 0.5, 0.25]))
def test_tiled_fetches_are_the_search_and_fetches_on_its_mapping_gives_them_back(
        m, k, n, batch, buf, rows, dataflow, shrink):
    """`tiled_fetches` at the arch's own word sizes is `layer_traffic`'s search (all products),
    and `fetches_on` the mapping found for smaller (compressed) act tiles gives back that
    search's counts exactly."""
    layer = Layer("g", "linear" if batch == 1 else "matmul", GemmShape(M=m, K=k, N=n, batch=batch))
    a = array(rows, rows, dataflow, [dram(), sram("buf", buf)])
    p = gemm_problem(layer)
    t = traffic.layer_traffic(layer, a, p, rows, rows, dataflow)
    act_b, w_b, _ = traffic.context(a).bytes_
    own = traffic.tiled_fetches(layer, a, p, dataflow, (rows, rows), (act_b, w_b))
    assert own[0] == t.mapping
    assert own[1] == pytest.approx(t.reads["dram", "act"])
    assert own[2] == pytest.approx(t.reads["dram", "weight"])
    assert own[4] == pytest.approx(t.psum_dram_writes)
    small = traffic.tiled_fetches(layer, a, p, dataflow, (rows, rows), (act_b * shrink, w_b))
    if not small[0].fits:
        return
    again = traffic.fetches_on(layer, p, dataflow, (rows, rows), small[0])
    assert again == pytest.approx(small[1:])


@settings(max_examples=40, deadline=None)
@given(H=st.integers(3, 30), C=st.integers(1, 64), K=st.integers(1, 64),
       R=st.sampled_from([1, 3, 5]), stride=st.integers(1, 3),
       dataflow=st.sampled_from(["os", "ws", "is"]), kib=st.integers(1, 256))
@example(H=30, C=20, K=50, R=5, stride=1, dataflow="is", kib=41)
@example(H=24, C=35, K=25, R=1, stride=1, dataflow="ws", kib=20)
def test_a_bigger_buffer_never_moves_more_dram_bytes(H, C, K, R, stride, dataflow, kib):
    """With re-loads of the array nearly free (the buffer's read energy 1e-6 pJ/B at both
    sizes), the search minimises DRAM bytes, and every tiling that fits the small buffer fits
    the big one. At its own (size-dependent) price a bigger buffer may trade DRAM bytes for
    fewer re-loads: the two examples move more DRAM bytes on the doubled buffer there."""
    if R > H:
        return
    layer = conv(H, H, R, R, C, K, stride=stride)

    def buffer(size: int) -> dict:
        return {**sram("buf", size), "read_energy_pj_per_byte": 1e-6}

    small = systolic.simulate(layer, array(8, 8, dataflow, [dram(), buffer(kib * 1024)]))
    big = systolic.simulate(layer, array(8, 8, dataflow, [dram(), buffer(2 * kib * 1024)]))
    assert big.dram_bytes <= small.dram_bytes + 1e-6


def test_shared_2_mib_buffer_is_allocated_by_the_tiling():
    """The issue's case: 32x32 int8 WS array, one shared 2 MiB buffer. An even split left
    699 KB for 803 KB of 32-bit partial sums (63x compulsory DRAM traffic); the tiling keeps
    the DRAM traffic within 2x of compulsory (here: exactly compulsory)."""
    a = array(32, 32, "ws", [dram(), sram("buf", 2 * 1024 * 1024)])
    c = conv(56, 56, 3, 3, 64, 64, padding=1)
    g = Layer("g", "linear", GemmShape(M=128, K=384, N=1536))
    for layer, compulsory in ((c, 56 * 56 * 64 + 9 * 64 * 64 + 56 * 56 * 64),
                              (g, 128 * 384 + 384 * 1536 + 128 * 1536)):
        r = systolic.simulate(layer, a)
        assert compulsory <= r.dram_bytes <= 2 * compulsory
        assert r.stall_cycles == 0


def test_access_columns_are_consistent():
    layer = conv(28, 28, 3, 3, 32, 64, padding=1)
    memory = [dram(), sram("gb", 65536)]
    a = array(12, 14, "os", memory, precision={"act_bits": 16, "weight_bits": 16, "acc_bits": 32})
    r = systolic.simulate(layer, a)
    cols = r.columns
    spaces = ("act", "weight", "psum", "out")
    for level in ("dram", "gb"):
        for space, word in zip(spaces, (2, 2, 4, 2), strict=True):
            assert cols[f"{level}_{space}_reads"] * word == cols[f"{level}_{space}_read_bytes"]
            assert cols[f"{level}_{space}_writes"] * word == cols[f"{level}_{space}_write_bytes"]
        for verb in ("read", "write"):
            total = sum(cols[f"{level}_{space}_{verb}_bytes"] for space in spaces)
            assert total == pytest.approx(r.actions[f"{level}.{verb}_bytes"])
    assert cols["gb_out_reads"] == cols["dram_out_writes"] == layer.shape.K * 28 * 28
    # what the buffer receives from DRAM it was written, what it sends it was read
    assert cols["gb_act_writes"] == cols["dram_act_reads"]
    assert cols["gb_weight_writes"] == cols["dram_weight_reads"]
    assert r.dram_bytes == sum(cols[f"dram_{o}_{v}_bytes"] for o in spaces
                               for v in ("read", "write"))
    split = sum(cols[f"cycles_{part}"] for part in ("compute", "fill_drain", "load", "stall"))
    assert split == r.cycles
    assert cols["cycles_compute"] * a.rows * a.cols >= layer.macs


def test_pe_registers_let_the_array_read_its_buffers_as_a_larger_one():
    layer = conv(14, 14, 3, 3, 16, 96, padding=1)  # WS: 144 x 96 on 8 x 8, 18 x 12 folds
    memory = [dram(), sram("buf", 1 << 20)]
    one = systolic.simulate(layer, array(8, 8, "ws", memory))
    # four weights, one partial sum in flight: four window positions per PE, psums 18 -> 5 folds
    deep = systolic.simulate(layer, array(8, 8, "ws", memory, pe={"weight": {"words": 4}}))
    assert deep.compute_cycles == one.compute_cycles
    assert deep.columns["buf_act_reads"] == one.columns["buf_act_reads"]
    pixels = 14 * 14
    assert one.columns["buf_psum_writes"] == 18 * 96 * pixels  # each row fold's partial sums
    assert deep.columns["buf_psum_writes"] == 5 * 96 * pixels
    # four output words as well: the cheaper split wins, never worse than either
    wide = systolic.simulate(layer, array(8, 8, "ws", memory,
                                          pe={"weight": {"words": 4}, "out": {"words": 4}}))
    buffer = [sum(r.columns[f"buf_{o}_{v}_bytes"] for o in ("act", "weight", "psum", "out")
                  for v in ("read", "write")) for r in (one, deep, wide)]
    assert buffer[2] <= buffer[1] < buffer[0]
    assert traffic.register_split(gemm_problem(layer), 8, 8, "os", 1, 6, (1, 1, 4)) in {
        (1, 4), (2, 2), (4, 1), (1, 2), (2, 1), (1, 1)}


def test_pe_registers_are_checked():
    base = {"name": "t", "kind": "systolic", "clock_mhz": 100, "rows": 4, "cols": 4}
    with pytest.raises(AccelsimError, match="words"):
        parse_arch({**base, "pe": {"out": {"words": 0}}})
    with pytest.raises(AccelsimError, match=r"pe\.out\.bits"):
        parse_arch({**base, "pe": {"out": {"bits": 16}}})
    assert parse_arch({**base, "pe": {"out": {"bits": 32, "words": 2}}}).pe.out.words == 2


def test_shipped_systolic_configs_on_shipped_traces_keep_their_bounds():
    """Every shipped systolic config: DRAM bytes at least the compulsory bytes of the
    layers it runs, and at most what streaming every array access from DRAM would move."""
    import yaml

    from accelsim.workload import load_workload

    root = Path(__file__).resolve().parents[1]
    trace = load_workload(root / "workloads" / "digits_cnn.npz")
    for path in sorted((root / "arch_configs").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        if spec.get("kind") != "systolic":
            continue
        a = parse_arch(spec)
        for layer in trace.layers:
            r = systolic.simulate(layer, a)
            cols = r.columns
            p = gemm_problem(layer)
            arr = traffic.array_traffic(p, a.rows, a.cols, a.dataflow)
            assert cols["dram_act_reads"] <= arr.act_reads * p.repeat + 1e-6
            assert cols["dram_weight_reads"] >= p.window * p.filters * p.repeat


def test_run_columns_price_each_operand_and_give_pj_per_mac():
    from accelsim.kinds import load_arch
    from accelsim.simulate import simulate
    from accelsim.workload import load_workload

    root = Path(__file__).resolve().parents[1]
    arch = load_arch(root / "arch_configs" / "eyeriss_like.yaml")
    run = simulate(load_workload(root / "workloads" / "digits_cnn.npz"), arch)
    df = run.layers
    assert (df["energy_pj_per_mac"] == df["energy_pj"] / df["macs_dense"]).all()
    for level in ("dram", "global_buffer"):
        per_op = sum(df[f"energy_{level}_{op}_pj"] for op in ("act", "weight", "psum", "out"))
        np.testing.assert_allclose(per_op, df[f"energy_{level}_pj"], rtol=1e-9)
    tot = run.totals()
    assert tot["energy_pj_per_mac"] == pytest.approx(tot["energy_pj"] / tot["macs_dense"])
    assert tot["dram_act_reads"] == pytest.approx(df["dram_act_reads"].sum())


ZIGZAG_TABLE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "zigzag_crosscheck.csv"


def test_agreement_with_zigzag_recorded():
    """accelsim now against ZigZag's recorded figures (`benchmarks/zigzag_crosscheck.py`, same
    hardware and energy table, PE registers free on both sides).

    TPU-like (32 x 32 WS, 2 MiB shared buffer): DRAM elements per operand equal on all six
    layers; buffer accesses 0.87-1.0x, energy per MAC 0.86-1.0x: ZigZag also reads the first
    fold's partial sums from the buffer, so a 2-fold 1 x 1 conv moves 5 words per output there
    against accelsim's 4. Eyeriss-like (12 x 14 OS, 108 KB buffer): ZigZag searches the temporal
    loop order over all seven conv loops, accelsim keeps its output-stationary fold order and
    tiles only the buffer (and pays for re-loading the array when it tiles the streamed
    extent): DRAM 0.69-1.44x, buffer 0.33-1.11x, energy per MAC 0.64-1.26x."""
    from benchmarks.zigzag_crosscheck import ARCHS, accelsim_arch, layers, ours

    table = pd.read_csv(ZIGZAG_TABLE).set_index(["arch", "layer"])
    for name, spec in ARCHS.items():
        arch = accelsim_arch(name, spec)
        for layer, _ in layers():
            mine, peer = ours(layer, arch), table.loc[(name, layer.name)]
            dram = sum(mine[f"dram_{o}"] for o in ("act", "weight", "out"))
            dram_peer = sum(peer[f"dram_{o}_zigzag"] for o in ("act", "weight", "out"))
            buf = sum(mine[f"buffer_{o}"] for o in ("act", "weight", "out"))
            buf_peer = sum(peer[f"buffer_{o}_zigzag"] for o in ("act", "weight", "out"))
            energy = mine["pj_per_mac"] / peer["pj_per_mac_zigzag"]
            if name == "tpu_like":
                for o in ("act", "weight", "out"):
                    assert mine[f"dram_{o}"] == pytest.approx(peer[f"dram_{o}_zigzag"], rel=1e-3)
                assert 0.85 <= buf / buf_peer <= 1.0 and 0.85 <= energy <= 1.0
            else:
                assert 0.65 <= dram / dram_peer <= 1.5
                assert 0.3 <= buf / buf_peer <= 1.15 and 0.6 <= energy <= 1.3


HOLDOUT_TABLE = (Path(__file__).resolve().parents[1] / "benchmarks" / "results"
                 / "scalesim_traffic_holdout.csv")


def test_scalesim_rules_on_held_out_cases():
    """60 SCALE-Sim 3.0.0 runs drawn apart from the reference table (non-square arrays, SRAMs of
    8-256 KiB each, single-channel convs, GEMMs; `benchmarks/scalesim_traffic_holdout.py`):
    recorded 100 % / 98.3 % / 100 % within 25 % (IFMAP / filter reads, OFMAP writes)."""
    from benchmarks.scalesim_traffic_holdout import ours

    table = pd.read_csv(HOLDOUT_TABLE)
    got = pd.DataFrame([ours({k: int(v) if isinstance(v, float) else v
                              for k, v in row.items() if pd.notna(v)})
                        for row in table.to_dict("records")])
    for op, col in (("act", "dram_ifmap_reads"), ("weight", "dram_filter_reads"),
                    ("out", "dram_ofmap_writes")):
        ratio = got[op] / table[col]
        assert ratio.between(0.8, 1.25).mean() >= 0.95, op
        assert ratio.between(0.5, 2.0).all(), op


@settings(max_examples=80, deadline=None)
@given(H=st.integers(1, 12), C=st.integers(1, 24), K=st.integers(1, 24), R=st.sampled_from([1, 3]),
       groups=st.sampled_from([1, 2]), rows=st.integers(1, 12), cols=st.integers(1, 12),
       dataflow=st.sampled_from(["os", "ws", "is"]),
       timing=st.sampled_from(["scalesim", "double_buffered"]),
       mapping=st.sampled_from(["serial", "packed"]), bw=st.sampled_from([0.05, 64.0]))
def test_latency_parts_are_non_negative_and_sum_to_cycles(H, C, K, R, groups, rows, cols,
                                                          dataflow, timing, mapping, bw):
    if R > H:
        return
    layer = conv(H, H, R, R, C * groups, K * groups, groups=groups)
    a = array(rows, cols, dataflow, [dram(bw), sram("buf", 4096)], timing=timing,
              group_mapping=mapping)
    r = systolic.simulate(layer, a)
    parts = [r.columns[f"cycles_{p}"] for p in ("compute", "fill_drain", "load", "stall")]
    assert min(parts) >= 0
    assert sum(parts) == pytest.approx(r.cycles)
    assert r.columns["cycles_dram_load"] >= 0 and r.columns["cycles_dram_offload"] > 0


def test_operands_without_a_buffer_stream_from_dram_and_no_dram_means_none_counted():
    layer = conv(10, 10, 3, 3, 16, 24, padding=1)  # WS on 8 x 8: 18 row folds, 3 column folds
    a = array(8, 8, "ws", [dram(), sram("ab", 1 << 20, ["act", "weight"])])
    t = traffic.layer_traffic(layer, a, gemm_problem(layer), 8, 8, "ws")
    outs = 24 * 10 * 10
    assert t.writes["dram", "psum"] == t.array.out_writes - outs == 17 * outs
    assert t.reads["dram", "psum"] == t.array.out_reads == 17 * outs
    assert ("buffer", "psum") not in t.reads
    r = systolic.simulate(layer, array(8, 8, "ws", [sram("buf", 1 << 20)]))
    assert r.dram_bytes == 0 and not any(k.startswith("dram_") for k in r.columns)
    assert r.columns["buf_act_reads"] == t.array.act_reads


LAYOUTS = {
    "shared": lambda size: [dram(), sram("buf", size)],
    "split": lambda size: [dram(), sram("a", size, ["act"]), sram("w", size, ["weight"]),
                           sram("o", 4 * size, ["out"])],
    "no out buffer": lambda size: [dram(), sram("ab", size, ["act", "weight"])],
    "no buffer": lambda size: [dram()],
    "no dram": lambda size: [sram("buf", size)],
}


@settings(max_examples=60, deadline=None)
@given(is_conv=st.booleans(), m=st.integers(1, 200), k=st.integers(1, 200),
       n=st.integers(1, 200), stride=st.integers(1, 3), groups=st.sampled_from([1, 2]),
       size=st.sampled_from([16, 512, 4096, 1 << 16, 1 << 20]),
       layout=st.sampled_from(sorted(LAYOUTS)), dataflow=st.sampled_from(["os", "ws", "is"]),
       tiling=st.sampled_from(["search", "scalesim"]),
       registers=st.sampled_from([(1, 1), (4, 2), (2, 8)]),
       sides=st.lists(st.tuples(st.sampled_from([1, 2, 3, 8, 16, 32, 128]),
                                st.sampled_from([1, 5, 8, 16, 64, 256])), min_size=1, max_size=6))
def test_points_actions_equal_the_per_point_traffic(is_conv, m, k, n, stride, groups, size,
                                                    layout, dataflow, tiling, registers, sides):
    """The batched traffic (one search over all the points' folds at once, counts as arrays)
    gives every point exactly the per-point `level_actions(layer_traffic(...))`: the same
    names in the same order, equal values of the same kinds, the nothing-fits case included."""
    layer = (conv(min(m, 40) + 2, min(m, 40) + 2, 3, 3, groups * min(k, 32), groups * min(n, 32),
                  stride=stride, groups=groups) if is_conv
             else Layer("g", "linear", GemmShape(M=m, K=k, N=n)))
    a = array(8, 8, dataflow, LAYOUTS[layout](size))
    p = gemm_problem(layer)
    rows, cols = (np.array(side, dtype=np.int64) for side in zip(*sides, strict=True))
    traffic._searches.cache_clear()
    batch = traffic.points_actions(layer, a, p, rows, cols, dataflow, tiling, registers)
    traffic._searches.cache_clear()
    for j, (r, c) in enumerate(sides):
        want = traffic.level_actions(a, traffic.layer_traffic(layer, a, p, r, c, dataflow,
                                                              tiling, registers))
        for got, expected in zip(batch, want, strict=True):
            assert list(got) == list(expected)
            for name, value in expected.items():
                have = np.asarray(got[name])[j]
                kind = type(have.item()) if isinstance(have, np.generic) else type(have)
                assert have == value and kind is type(value), (name, j)


def touched_by_walk(length: int, pad: int, stride: int, dilation: int, kernel: int,
                    outputs: int) -> int:
    """Distinct unpadded input positions some output's window reads, one read at a time."""
    return len({o * stride + r * dilation - pad for o in range(outputs) for r in range(kernel)}
               & set(range(length)))


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 60), pad=st.integers(0, 5), stride=st.integers(1, 6),
       dilation=st.integers(1, 3), kernel=st.integers(1, 9), outputs=st.integers(1, 40))
def test_touched_positions_equal_a_walk_of_every_window(length, pad, stride, dilation, kernel,
                                                        outputs):
    assert (traffic._touched(length, pad, stride, dilation, kernel, outputs)
            == touched_by_walk(length, pad, stride, dilation, kernel, outputs))


def test_an_arch_context_is_kept_while_the_arch_lives():
    """`traffic.context` is made once per arch object and dropped with it (no strong reference
    keeps a sweep's archs alive)."""
    import gc

    from accelsim.kinds import load_arch

    root = Path(__file__).resolve().parents[1]
    arch = load_arch(root / "arch_configs" / "scnn_like.yaml").model_copy(update={"name": "c"})
    made = traffic.context(arch)
    assert traffic.context(arch) is made
    key = id(arch)
    assert key in traffic._CONTEXTS
    del arch
    gc.collect()
    assert key not in traffic._CONTEXTS
