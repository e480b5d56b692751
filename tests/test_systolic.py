"""Dense systolic engine: SCALE-Sim 3.0.0 compute cycles, traffic and mapping of real layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines import systolic
from accelsim.engines.shared_gemm_operand import GemmProblem, gemm_problem
from accelsim.kinds import parse_arch
from accelsim.workload import ConvShape, GemmShape, Layer
from accelsim.workload.scalesim_import import scalesim_conv_shape
from tests.reference import systolic_cycles_reference

REFERENCE_TABLE = Path(__file__).parent / "data" / "scalesim_reference.csv"


def arch(rows: int, cols: int, dataflow: str, memory: list | None = None, **kw) -> systolic.Config:
    return parse_arch({"name": "t", "kind": "systolic", "clock_mhz": 100, "rows": rows,
                       "cols": cols, "dataflow": dataflow, "memory": memory or [], **kw})


def conv(H, W, R, S, C, K, stride=1, padding=0, groups=1, N=1, dilation=1) -> Layer:
    pad = padding if isinstance(padding, tuple) else (padding,) * 4
    st_ = stride if isinstance(stride, tuple) else (stride, stride)
    return Layer("c", "conv2d", ConvShape(N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride=st_,
                                          padding=pad, dilation=(dilation, dilation),
                                          groups=groups))


@settings(max_examples=300, deadline=None)
@given(
    H=st.integers(1, 40), W=st.integers(1, 40), R=st.integers(1, 7), S=st.integers(1, 7),
    C=st.integers(1, 64), K=st.integers(1, 64), stride=st.integers(1, 3),
    rows=st.integers(1, 64), cols=st.integers(1, 64), dataflow=st.sampled_from(["os", "ws", "is"]),
)
def test_conv_cycles_match_fold_by_fold_reference(H, W, R, S, C, K, stride, rows, cols, dataflow):
    if R > H or S > W:
        return
    layer = Layer("c", "conv2d", scalesim_conv_shape(H, W, R, S, C, K, stride))
    E, F = -(-(H - R + stride) // stride), -(-(W - S + stride) // stride)
    dims = {"os": (E * F, K, R * S * C), "ws": (R * S * C, K, E * F), "is": (R * S * C, E * F, K)}
    expected = systolic_cycles_reference(*dims[dataflow], rows, cols, dataflow)
    result = systolic.simulate(layer, arch(rows, cols, dataflow))
    assert result.compute_cycles == expected
    assert result.macs_done == result.macs_dense == E * F * K * R * S * C
    assert 0 < result.utilization <= 1


def reference_layer(row) -> Layer:
    """The layer SCALE-Sim ran for one row of the reference table."""
    if row.kind == "gemm":
        return Layer("g", "linear", GemmShape(M=int(row.gemm_m), K=int(row.gemm_k),
                                              N=int(row.gemm_n)))
    return Layer("c", "conv2d", scalesim_conv_shape(
        int(row.ifmap_h), int(row.ifmap_w), int(row.filter_h), int(row.filter_w),
        int(row.channels), int(row.num_filters), int(row.stride)))


@pytest.mark.skipif(not REFERENCE_TABLE.is_file(), reason="SCALE-Sim reference table not generated")
def test_cycles_equal_scalesim_3_0_0_table():
    table = pd.read_csv(REFERENCE_TABLE)
    assert len(table) >= 100 and set(table["dataflow"]) == {"os", "ws", "is"}
    mismatches = []
    for row in table.itertuples():
        layer = reference_layer(row)
        ours = systolic.simulate(layer, arch(int(row.rows), int(row.cols), row.dataflow))
        scalesim = int(row.compute_only_cycles)
        if row.stall_cycles == 0 and int(row.total_cycles) != scalesim:
            mismatches.append((row.case_id, "scalesim full run disagrees with compute-only"))
        if ours.compute_cycles != scalesim:
            mismatches.append((row.case_id, ours.compute_cycles, scalesim))
    assert not mismatches, mismatches[:10]


@pytest.mark.skipif(not REFERENCE_TABLE.is_file(), reason="SCALE-Sim reference table not generated")
def test_sram_reads_and_writes_equal_scalesim_3_0_0_table():
    """Buffer traffic per operand, in elements, equals SCALE-Sim's DETAILED_ACCESS_REPORT.

    SCALE-Sim's OS "OFMAP writes" also count rows + cols skew slots per fold
    (systolic_compute_os.py); we count real outputs, so that term is added back here.
    """
    table = pd.read_csv(REFERENCE_TABLE)
    mismatches = []
    for row in table.itertuples():
        layer = reference_layer(row)
        rows, cols = int(row.rows), int(row.cols)
        problem = gemm_problem(layer)
        ours = systolic.sram_traffic(problem, rows, cols, row.dataflow)
        out_writes = ours.out_writes
        if row.dataflow == "os":
            sr, sc, _ = systolic.operand_dims(problem, "os")
            out_writes += -(-sr // rows) * -(-sc // cols) * (rows + cols)
        got = (ours.act_reads, ours.weight_reads, out_writes)
        want = (int(row.sram_ifmap_reads), int(row.sram_filter_reads), int(row.sram_ofmap_writes))
        if got != want:
            mismatches.append((row.case_id, got, want))
    assert not mismatches, mismatches[:10]


def test_linear_equals_one_by_one_conv():
    a = arch(8, 16, "ws")
    lin = Layer("l", "linear", GemmShape(M=49, K=32, N=20))
    pw = conv(7, 7, 1, 1, 32, 20)
    assert systolic.simulate(lin, a).compute_cycles == systolic.simulate(pw, a).compute_cycles


def test_groups_run_sequentially_and_batch_folds_into_pixels():
    a = arch(8, 8, "os")
    grouped = conv(10, 10, 3, 3, 16, 32, padding=1, groups=4)
    one_group = conv(10, 10, 3, 3, 4, 8, padding=1)
    assert (systolic.simulate(grouped, a).compute_cycles
            == 4 * systolic.simulate(one_group, a).compute_cycles)
    batched = conv(10, 10, 3, 3, 4, 8, padding=1, N=3)
    p = gemm_problem(batched.__class__("b", "conv2d", batched.shape))
    assert p.pixels == 3 * 10 * 10
    depthwise = conv(10, 10, 3, 3, 16, 16, padding=1, groups=16)
    r = systolic.simulate(depthwise, a)
    assert r.macs_done == 16 * 100 * 9
    assert r.utilization <= 1 / 8 + 1e-12


def test_padding_equals_prepadded_input():
    a = arch(16, 16, "ws")
    padded = conv(12, 12, 3, 3, 8, 8, padding=(1, 2, 0, 1))
    prepadded = conv(15, 13, 3, 3, 8, 8)
    assert systolic.simulate(padded, a).compute_cycles == systolic.simulate(prepadded, a).compute_cycles


def mem(dram_bw: float = 64.0, buf: int = 1 << 20) -> list:
    return [
        {"name": "dram", "kind": "dram", "dram_type": "lpddr4",
         "read_bandwidth_bytes_per_cycle": dram_bw},
        {"name": "buf", "kind": "sram", "size_bytes": buf, "read_bandwidth_bytes_per_cycle": 1e6},
    ]


def test_dram_traffic_is_unique_bytes_when_everything_fits():
    layer = conv(14, 14, 3, 3, 16, 32, padding=1)
    r = systolic.simulate(layer, arch(16, 16, "ws", mem()))
    s = layer.shape
    expected = s.C * s.H * s.W + s.K * s.C * 9 + s.K * s.E * s.F
    assert r.dram_bytes == expected
    assert r.actions["dram.read_bytes"] == s.C * s.H * s.W + s.K * s.C * 9


def test_small_buffer_refetches_and_stalls():
    layer = conv(28, 28, 3, 3, 64, 128, padding=1)
    roomy = systolic.simulate(layer, arch(16, 16, "os", mem()))
    tight = systolic.simulate(layer, arch(16, 16, "os", mem(buf=1024)))
    assert tight.dram_bytes > roomy.dram_bytes
    starved = systolic.simulate(layer, arch(16, 16, "os", mem(dram_bw=0.01)))
    assert starved.bound == "memory" and starved.stall_cycles > 0
    assert starved.cycles == pytest.approx(starved.actions["dram.read_bytes"] / 0.01
                                           + starved.actions["dram.write_bytes"] / 0.01)
    off = systolic.simulate(layer, arch(16, 16, "os", mem(dram_bw=0.01), model_memory_stalls=False))
    assert off.stall_cycles == 0 and off.cycles == off.compute_cycles


def test_sram_reads_by_dataflow():
    p = GemmProblem(pixels=50, filters=20, window=30)
    os_ = systolic.sram_traffic(p, 8, 8, "os")
    assert os_.act_reads == 3 * 50 * 30 and os_.weight_reads == 7 * 20 * 30 and os_.out_writes == 1000
    ws = systolic.sram_traffic(p, 8, 8, "ws")
    assert ws.weight_reads == 30 * 20 and ws.out_writes == 4 * 20 * 50
    assert ws.out_reads == 3 * 20 * 50
    is_ = systolic.sram_traffic(p, 8, 8, "is")
    assert is_.act_reads == 30 * 50 and is_.weight_reads == 7 * 30 * 20


def test_trace_does_not_change_dense_cycles():
    rng = np.random.default_rng(0)
    shape = ConvShape(N=1, C=4, H=8, W=8, K=4, R=3, S=3, padding=(1, 1, 1, 1))
    dense = Layer("x", "conv2d", shape, act=rng.standard_normal((1, 4, 8, 8)).astype(np.float16))
    sparse = Layer("x", "conv2d", shape, act=np.zeros((1, 4, 8, 8), np.float16))
    a = arch(4, 4, "ws")
    assert systolic.simulate(dense, a).cycles == systolic.simulate(sparse, a).cycles
    assert systolic.simulate(sparse, a).engine_mode == "trace"
    shapes_only = Layer("x", "conv2d", shape, declared_act_density=0.3)
    assert systolic.simulate(shapes_only, a).engine_mode == "statistical"


@settings(max_examples=300, deadline=None)
@given(pixels=st.integers(1, 500), filters=st.integers(1, 300), window=st.integers(1, 300),
       repeat=st.integers(1, 6), rows=st.integers(1, 64), cols=st.integers(1, 64),
       dataflow=st.sampled_from(["os", "ws", "is"]))
def test_double_buffered_timing_matches_fold_by_fold_reference(pixels, filters, window, repeat,
                                                               rows, cols, dataflow):
    from tests.reference import double_buffered_cycles_reference

    p = GemmProblem(pixels=pixels, filters=filters, window=window, repeat=repeat)
    sr, sc, t = systolic.operand_dims(p, dataflow)
    folds = repeat * -(-sr // rows) * -(-sc // cols)
    overlapped = systolic.compute_cycles(p, rows, cols, dataflow, "double_buffered")
    assert overlapped == double_buffered_cycles_reference(folds, t, rows, cols, dataflow)
    exact = systolic.compute_cycles(p, rows, cols, dataflow)
    assert overlapped <= exact + repeat - 1  # SCALE-Sim takes 1 off per product, this once
    if folds == 1:
        assert overlapped == exact  # one fold: nothing to overlap, SCALE-Sim's figure


@settings(max_examples=300, deadline=None)
@given(groups=st.integers(1, 96), per_group_c=st.integers(1, 4), per_group_k=st.integers(1, 4),
       R=st.integers(1, 3), hw=st.integers(1, 10), rows=st.integers(1, 40), cols=st.integers(1, 40),
       dataflow=st.sampled_from(["os", "ws", "is"]))
def test_packed_groups_match_the_diagonal_placement_reference(groups, per_group_c, per_group_k, R,
                                                              hw, rows, cols, dataflow):
    from tests.reference import packed_folds_reference

    if hw < R:
        return
    layer = conv(hw, hw, R, R, groups * per_group_c, groups * per_group_k, groups=groups)
    p = gemm_problem(layer)
    sr, sc, t = systolic.operand_dims(p, dataflow)
    packed = systolic.packed_problem(p, rows, cols, dataflow)
    fill = rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2
    folds = packed_folds_reference(groups, sr, sc, rows, cols)
    if sr <= rows and sc <= cols:
        assert systolic.compute_cycles(packed, rows, cols, dataflow) == folds * (t + fill - 1)
    result = systolic.simulate(layer, arch(rows, cols, dataflow, group_mapping="packed"))
    serial = systolic.simulate(layer, arch(rows, cols, dataflow))
    assert result.compute_cycles <= serial.compute_cycles
    assert result.actions == serial.actions  # the same elements move either way
    assert 0 < result.utilization <= 1


def test_depthwise_on_a_packed_ws_array_runs_several_channels_per_fold():
    dw = conv(14, 14, 3, 3, 96, 96, padding=1, groups=96)
    serial = systolic.simulate(dw, arch(32, 32, "ws"))
    packed = systolic.simulate(dw, arch(32, 32, "ws", group_mapping="packed"))
    # 9-row, 1-column tiles: 3 channels share a fold (27 of 32 rows), 32 folds instead of 96
    assert serial.compute_cycles == 96 * (14 * 14 + 2 * 32 + 32 - 3)
    assert packed.compute_cycles == 32 * (14 * 14 + 2 * 32 + 32 - 3)


def test_shipped_systolic_configs_say_which_timing_they_use():
    import yaml

    root = Path(__file__).resolve().parents[1] / "arch_configs"
    for path in sorted(root.glob("*.yaml")):
        text = path.read_text()
        if yaml.safe_load(text).get("kind") == "systolic":
            assert "timing:" in text and "group_mapping:" in text, path.name
