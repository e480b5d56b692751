"""N:M sparse tensor core engine: compressed bytes, policies, the m/n bound, prune error."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines import gpu
from accelsim.engines import sparse_tensor_core as stc
from accelsim.engines.shared_gemm_operand import TraceOperand, binomial_at_most
from accelsim.kinds import load_arch, parse_arch
from accelsim.simulate import simulate
from accelsim.workload import ConvShape, GemmShape, Layer, Workload, load_workload
from accelsim.workload.stats import NM_PATTERNS, workload_stats
from tests.reference import (
    a_stats_reference,
    conv_output_reference,
    im2col_mask_reference,
    nm_compressed_bits_reference,
    nm_reference,
    prune_channels_reference,
)

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
WORKLOADS = sorted((ROOT / "workloads").glob("*.npz"))


def arch(policy: str = "dense", operand: str = "act", bits: int = 16, launch: float = 0.0,
         macs: int = 1024, bandwidth: float = 1e9, speedup: float | None = None) -> stc.Config:
    extra = {} if speedup is None else {"sparse_speedup": speedup}
    return parse_arch({
        "name": "stc", "kind": "sparse_tensor_core", "clock_mhz": 1000,
        "dense_macs_per_cycle": macs, "policy": policy, "sparse_operand": operand,
        "kernel_launch_cycles": launch,
        "precision": {"act_bits": bits, "weight_bits": bits, "acc_bits": 32,
                      "number_format": "fp" if bits == 16 else "int"},
        "memory": [{"name": "dram", "kind": "dram", "dram_type": "hbm2",
                    "read_bandwidth_bytes_per_cycle": bandwidth}],
        **extra,
    })


def conforming_linear(rng: np.random.Generator, M: int = 64, K: int = 256, N: int = 32) -> Layer:
    act = prune_channels_reference(rng.standard_normal((M, K)).astype(np.float16), 2, 4)
    return Layer("fc", "linear", GemmShape(M=M, K=K, N=N), act=act,
                 weight=rng.standard_normal((K, N)).astype(np.float16))


def dense_linear(rng: np.random.Generator, M: int = 64, K: int = 256, N: int = 32) -> Layer:
    return Layer("fc", "linear", GemmShape(M=M, K=K, N=N),
                 act=rng.standard_normal((M, K)).astype(np.float16),
                 weight=rng.standard_normal((K, N)).astype(np.float16))


def run(layer: Layer, a: stc.Config):
    """(result, dense-equivalent result, speed-up over dense)."""
    res = stc.simulate(layer, a)
    dense = stc.simulate(layer, a.dense_equivalent())
    return res, dense, dense.cycles / res.cycles


@pytest.mark.parametrize(("bits", "expected"), [(16, 0.5625), (8, 0.625)])
def test_compressed_operand_bytes_fp16_and_int8(bits, expected):
    layer = conforming_linear(np.random.default_rng(bits))
    res, _, _ = run(layer, arch(bits=bits))
    assert res.columns["sparse_mode"]
    act_bytes = layer.shape.M * layer.shape.K * bits / 8
    assert res.columns["compressed_operand_bytes"] == pytest.approx(expected * act_bytes)
    built = nm_compressed_bits_reference(layer.act.tolist(), 2, 4, 2, bits) / 8
    assert res.columns["compressed_operand_bytes"] == pytest.approx(built)
    assert res.columns["metadata_bytes"] == pytest.approx(act_bytes / 2 * 2 / bits)


def test_compute_bound_conforming_layer_runs_m_over_n_faster():
    layer = conforming_linear(np.random.default_rng(1))
    res, dense, speedup = run(layer, arch())
    assert speedup == pytest.approx(2.0)
    assert res.macs_done == layer.macs // 2 and res.macs_skipped == layer.macs // 2
    assert dense.macs_done == layer.macs
    _, _, measured = run(layer, arch(speedup=1.66))
    assert measured == pytest.approx(1.66)


def test_non_conforming_data_runs_dense_under_the_dense_policy():
    layer = dense_linear(np.random.default_rng(2))
    res, dense, speedup = run(layer, arch("dense"))
    assert not res.columns["sparse_mode"] and res.columns["nm_conformance"] < 1
    assert speedup == 1.0 and res.columns["compress_cycles"] == 0


def test_compress_if_conforming_pays_its_own_pass():
    rng = np.random.default_rng(3)
    launch, bandwidth = 500.0, 64.0
    a = arch("compress-if-conforming", launch=launch, bandwidth=bandwidth)
    conforming = conforming_linear(rng)
    res, _, _ = run(conforming, a)
    act_bytes = conforming.shape.M * conforming.shape.K * 2
    pass_cycles = (act_bytes + act_bytes * 0.5625) / bandwidth + launch
    assert res.columns["sparse_mode"]
    assert res.columns["compress_cycles"] == pytest.approx(pass_cycles)
    no_pass, _, _ = run(conforming, arch("dense", launch=launch, bandwidth=bandwidth))
    assert res.cycles == pytest.approx(no_pass.cycles + pass_cycles)
    assert res.actions[stc.COMPRESS_COMPARE] == act_bytes / 2 / 4 * 6
    other = dense_linear(rng)
    res2, dense2, speedup2 = run(other, a)
    assert not res2.columns["sparse_mode"]
    assert res2.cycles == pytest.approx(dense2.cycles + act_bytes / bandwidth + launch)
    assert speedup2 < 1.0
    assert res.warnings == [f"a compress pass over the activations ({pass_cycles:.3g} cycles, "
                            "its kernel launch included) runs before the sparse GEMM"]
    assert len(res2.warnings) == 1 and "runs dense: " in res2.warnings[0]
    assert "of their 4-groups conform to 2:4" in res2.warnings[0]
    assert no_pass.warnings == dense2.warnings == []


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_prune_reports_the_output_error_of_the_reference(kind):
    rng = np.random.default_rng(4)
    if kind == "linear":
        layer = dense_linear(rng, M=6, K=16, N=5)
    else:
        shape = ConvShape(N=2, C=8, H=5, W=4, K=3, R=3, S=3, stride=(2, 1), padding=(1, 1, 0, 1))
        layer = Layer("c", "conv2d", shape,
                      act=np.maximum(rng.standard_normal(shape.act_shape), 0).astype(np.float16),
                      weight=rng.standard_normal(shape.weight_shape).astype(np.float16))
    res, _, speedup = run(layer, arch("prune"))
    pruned = prune_channels_reference(layer.act, 2, 4)
    y = conv_output_reference(layer.act, layer.weight, layer.shape)
    y_pruned = conv_output_reference(pruned, layer.weight, layer.shape)
    expected = np.linalg.norm(y - y_pruned) / np.linalg.norm(y)
    assert res.columns["prune_rel_error"] == pytest.approx(expected, rel=1e-9)
    assert res.columns["sparse_mode"] and speedup > 1.0
    nonzeros = np.count_nonzero(layer.act)
    dropped = nonzeros - np.count_nonzero(pruned)
    assert res.columns["nm_dropped_fraction"] == pytest.approx(dropped / nonzeros)


def test_weight_operand_uses_pruned_weights_and_reports_weight_prune_error():
    rng = np.random.default_rng(5)
    layer = dense_linear(rng, M=8, K=32, N=12)
    pruned_w = prune_channels_reference(layer.weight.T, 2, 4).T  # groups of 4 along K
    pruned = Layer("fc", "linear", layer.shape, act=layer.act, weight=pruned_w)
    res, _, speedup = run(pruned, arch("dense", operand="weight"))
    assert res.columns["sparse_mode"] and res.columns["nm_conformance"] == 1.0 and speedup > 1
    res_dense, _, speedup_dense = run(layer, arch("dense", operand="weight"))
    assert not res_dense.columns["sparse_mode"] and speedup_dense == 1.0
    res_prune, _, _ = run(layer, arch("prune", operand="weight"))
    y = conv_output_reference(layer.act, layer.weight, layer.shape)
    y_pruned = conv_output_reference(layer.act, pruned_w, layer.shape)
    assert res_prune.columns["prune_rel_error"] == pytest.approx(
        np.linalg.norm(y - y_pruned) / np.linalg.norm(y), rel=1e-9)


def test_memory_bound_layer_gains_the_byte_ratio():
    K, N = 4096, 4096
    layer = Layer("gemv", "linear", GemmShape(M=1, K=K, N=N), declared_act_density=1.0,
                  declared_weight_density=0.5)
    a = arch("prune", operand="weight", macs=10**9, bandwidth=64)
    _, _, speedup = run(layer, a)
    assert speedup == pytest.approx((K * N + K + N) / (0.5625 * K * N + K + N))


def test_depthwise_conv_cannot_use_n_m():
    shape = ConvShape(N=1, C=16, H=6, W=6, K=16, R=3, S=3, padding=(1, 1, 1, 1), groups=16)
    layer = Layer("dw", "conv2d", shape, act_mask=np.zeros(shape.act_shape, bool))
    res, _, speedup = run(layer, arch("prune"))
    assert not res.columns["nm_applicable"] and not res.columns["sparse_mode"] and speedup == 1.0


def test_shapes_only_layer_uses_the_binomial_conformance():
    layer = Layer("fc", "linear", GemmShape(M=4, K=64, N=4), declared_act_density=0.3)
    res, _, _ = run(layer, arch())
    assert res.engine_mode == "statistical"
    assert res.columns["nm_conformance"] == pytest.approx(binomial_at_most(2, 4, 0.3))
    assert math.isnan(res.columns["prune_rel_error"])


@settings(max_examples=80, deadline=None)
@given(policy=st.sampled_from(["dense", "prune", "compress-if-conforming"]),
       operand=st.sampled_from(["act", "weight"]), density=st.floats(0.0, 1.0),
       M=st.integers(1, 64), K=st.integers(1, 64), N=st.integers(1, 64),
       launch=st.floats(0, 1000), bandwidth=st.floats(1, 1e4), macs=st.integers(1, 4096),
       seed=st.integers(0, 1000))
def test_never_faster_than_m_over_n_and_macs_add_up(policy, operand, density, M, K, N, launch,
                                                     bandwidth, macs, seed):
    rng = np.random.default_rng(seed)
    act = (rng.standard_normal((M, K)) * (rng.random((M, K)) < density)).astype(np.float16)
    layer = Layer("fc", "linear", GemmShape(M=M, K=K, N=N), act=act,
                  weight=rng.standard_normal((K, N)).astype(np.float16))
    res, dense, speedup = run(layer, arch(policy, operand, launch=launch, macs=macs,
                                          bandwidth=bandwidth))
    assert speedup <= 2.0 + 1e-9
    assert res.macs_done + res.macs_skipped == res.macs_dense == layer.macs
    assert dense.macs_done == layer.macs
    assert 0 < res.utilization <= 1
    assert stc.simulate(layer, arch(policy, operand, launch=launch, macs=macs,
                                    bandwidth=bandwidth)).cycles == res.cycles


def test_compare_energy_is_one_adder_at_the_node():
    a = load_arch(ROOT / "arch_configs" / "a100_sparse_tc.yaml")
    # Horowitz 45 nm fp16 add 0.4 pJ, x 0.40 at 7 nm (tech table)
    assert a.extra_action_energy_pj()[stc.COMPRESS_COMPARE] == pytest.approx(0.4 * 0.40)


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not present")
def test_digits_trace_on_the_a100_sparse_tensor_core():
    workload = load_workload(DIGITS)
    a = load_arch(ROOT / "arch_configs" / "a100_sparse_tc.yaml")
    df = simulate(workload, a).layers
    assert not df.set_index("layer").loc["conv1", "nm_applicable"]  # one input channel
    assert (df["speedup_vs_dense"] <= 2.0).all()
    pruned = simulate(workload, a.model_copy(update={"policy": "prune"})).layers
    assert pruned["sparse_mode"].sum() == 3
    errors = pruned.set_index("layer")["prune_rel_error"].drop("conv1")
    assert ((errors > 0) & (errors < 1)).all()
    assert np.allclose(pruned["energy_pj"], pruned.filter(regex=r"^energy_.+_pj$").sum(axis=1))


def test_round_trip_through_simulate_with_a_workload():
    rng = np.random.default_rng(9)
    w = Workload(model="m", layers=[conforming_linear(rng), dense_linear(rng)])
    df = simulate(w, arch("compress-if-conforming", launch=10)).layers
    assert list(df["sparse_mode"]) == [True, False]
    assert "energy_compress_pj" in df and (df["energy_compress_pj"] > 0).all()


# --- N:M conformance: the definition `inspect` uses ---------------------------------------------


def same_share(engine: float, inspect: float | None) -> bool:
    """An engine's NaN is inspect's None; otherwise the two are the same number."""
    return math.isnan(engine) if inspect is None else engine == inspect


@pytest.mark.parametrize("path", WORKLOADS, ids=[p.stem for p in WORKLOADS])
def test_inspect_and_engines_report_one_conformance_on_shipped_traces(path):
    workload = load_workload(path)
    a = load_arch(ROOT / "arch_configs" / "a100_sparse_tc.yaml")
    g = load_arch(ROOT / "arch_configs" / "a100.yaml")
    for layer, stats in zip(workload.layers, workload_stats(workload)):
        if not layer.has_trace:
            continue
        shown = stats["nm_conformance"]
        op = TraceOperand(layer)
        for n, m in NM_PATTERNS:
            assert same_share(op.nm_conformance(n, m), shown[f"{n}:{m}"]), (layer.name, n, m)
        res = stc.simulate(layer, a)
        assert same_share(res.columns["nm_conformance"], shown["2:4"]), layer.name
        assert res.columns["nm_applicable"] == (shown["2:4"] is not None), layer.name
        gpu_share = gpu.simulate(layer, g).columns["nm_conformance_2of4"]
        assert same_share(gpu_share, shown["2:4"]), layer.name


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not present")
def test_one_channel_conv_has_no_conformance_and_pruned_layers_drop_the_inspected_excess():
    workload = load_workload(DIGITS)
    a = load_arch(ROOT / "arch_configs" / "a100_sparse_tc.yaml")
    pruned = simulate(workload, a.model_copy(update={"policy": "prune"})).layers.set_index("layer")
    assert math.isnan(pruned.loc["conv1", "nm_conformance"])  # C = 1 < 4
    for stats in workload_stats(workload):
        if stats["nm_excess"]["2:4"] is not None:
            assert pruned.loc[stats["layer"], "nm_dropped_fraction"] == pytest.approx(
                stats["nm_excess"]["2:4"], rel=1e-12)


@st.composite
def masked_layers(draw) -> Layer:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.05, 0.3, 0.5, 0.9]))
    if draw(st.booleans()):
        shape = GemmShape(M=draw(st.integers(1, 8)), K=draw(st.integers(1, 24)), N=2)
        op = "linear"
    else:
        groups = draw(st.sampled_from([1, 2]))
        C = groups * draw(st.integers(1, 9))
        R, S = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        shape = ConvShape(N=draw(st.integers(1, 2)), C=C, H=draw(st.integers(R, 6)),
                          W=draw(st.integers(S, 6)), K=2 * groups, R=R, S=S,
                          stride=(draw(st.integers(1, 4)), draw(st.integers(1, 2))),
                          padding=tuple(draw(st.integers(0, 2)) for _ in range(4)),
                          groups=groups)
        if shape.E < 1 or shape.F < 1:
            shape = ConvShape(N=1, C=C, H=shape.H, W=shape.W, K=2 * groups, R=R, S=S,
                              groups=groups)
        op = "conv2d"
    return Layer("x", op, shape, act_mask=rng.random(shape.act_shape) < density)


@settings(max_examples=120, deadline=None)
@given(layer=masked_layers(), n=st.integers(1, 2), m=st.sampled_from([3, 4]))
def test_conformance_is_the_twin_and_eligibility_is_every_im2col_group(layer, n, m):
    """The reported share is the loop twin's; the layer runs sparse exactly when every group of
    the im2col matrix (padding and repeats included) conforms, as before the definition was
    shared."""
    expected, _ = nm_reference(layer.nonzero(), layer.shape, n, m)
    res = stc.simulate(layer, arch().model_copy(update={"n": n, "m": m}))
    if expected is None:
        assert math.isnan(res.columns["nm_conformance"]) and not res.columns["sparse_mode"]
        return
    assert res.columns["nm_conformance"] == pytest.approx(expected, rel=1e-12)
    s = layer.shape
    chunk = s.C // s.groups if isinstance(s, ConvShape) else s.K
    im2col = a_stats_reference(im2col_mask_reference(layer.nonzero(), s), chunk, n, m, 1, 1, 1)
    assert res.columns["sparse_mode"] == (im2col["nm_conformance"] == 1.0)


def test_prune_groups_restart_at_each_conv_group():
    rng = np.random.default_rng(12)
    shape = ConvShape(N=1, C=12, H=4, W=4, K=4, R=3, S=3, padding=(1, 1, 1, 1), groups=2)
    layer = Layer("g", "conv2d", shape,
                  act=np.maximum(rng.standard_normal(shape.act_shape), 0).astype(np.float16),
                  weight=rng.standard_normal(shape.weight_shape).astype(np.float16))
    res, _, _ = run(layer, arch("prune"))
    pruned = np.concatenate([prune_channels_reference(layer.act[:, :6], 2, 4),
                             prune_channels_reference(layer.act[:, 6:], 2, 4)], axis=1)
    y = conv_output_reference(layer.act, layer.weight, shape)
    y_pruned = conv_output_reference(pruned, layer.weight, shape)
    assert res.columns["prune_rel_error"] == pytest.approx(
        np.linalg.norm(y - y_pruned) / np.linalg.norm(y), rel=1e-9)
    nonzeros = np.count_nonzero(layer.act)
    assert res.columns["nm_dropped_fraction"] == pytest.approx(
        (nonzeros - np.count_nonzero(pruned)) / nonzeros)
