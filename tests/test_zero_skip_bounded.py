"""zero_skip work is bounded by the layer: dense weights are never materialised, empty planar
tiles are left out, and shapes-only layers too large to count whole are counted on a sample
whose scaled result stays close to the whole count."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from accelsim.engines.zero_skip import count, work
from accelsim.engines.zero_skip.count import count_layer
from accelsim.kinds import load_arch, parse_arch
from accelsim.workload import ConvShape, GemmShape, Layer
from tests.reference import planar_cartesian_reference

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating"]


def shipped(name: str):
    return load_arch(ROOT / "arch_configs" / f"{name}.yaml")


def _traced_layers() -> list[Layer]:
    rng = np.random.default_rng(11)
    conv = ConvShape(N=1, C=12, H=9, W=7, K=20, R=3, S=3, stride=(2, 1), padding=(1, 1, 1, 1))
    grouped = ConvShape(N=2, C=8, H=6, W=6, K=8, R=3, S=3, padding=(1, 1, 1, 1), groups=4)
    gemm = GemmShape(M=6, K=40, N=24, batch=2)
    return [Layer(f"l{i}", "conv2d" if isinstance(s, ConvShape) else "matmul", s,
                  act_mask=rng.random(s.act_shape) < 0.5) for i, s in enumerate((conv, grouped,
                                                                                   gemm))]


@pytest.mark.parametrize("config", CONFIGS)
def test_dense_weights_as_views_count_like_materialised_ones(config, monkeypatch):
    arch = shipped(config)
    layers = _traced_layers()
    viewed = [count_layer(layer, arch) for layer in layers]
    monkeypatch.setattr(work, "dense_view", lambda shape: np.ones(shape, bool))
    assert [count_layer(layer, arch) for layer in layers] == viewed


def test_planar_pes_without_pixels_change_nothing():
    rng = np.random.default_rng(5)
    shape = ConvShape(N=1, C=3, H=3, W=5, K=4, R=3, S=3, padding=(1, 1, 1, 1), stride=(2, 1))
    layer = Layer("p", "conv2d", shape, act_mask=rng.random(shape.act_shape) < 0.6,
                  weight_mask=rng.random(shape.weight_shape) < 0.7)
    a = parse_arch({"name": "t", "kind": "zero_skip", "clock_mhz": 100, "skip": ["act", "weight"],
                    "array": {"dataflow": "planar_cartesian", "pe_rows": 16, "pe_cols": 16,
                              "mult_f": 2, "mult_i": 2, "accumulator_entries": 64}})
    v = work.conv_view(layer, *work.operand_masks(layer), planar=True)
    assert work.planar_act_count(v, 16, 16, True).shape[3] == 15   # 3 x 5 PEs hold pixels
    expected, _, products = planar_cartesian_reference(
        v.act, v.weight, 1, shape.stride, shape.padding, shape.dilation, 16, 16, 2, 2, 64,
        True, True, True, -1, 0)
    result = count_layer(layer, a)
    assert result.compute_cycles == expected
    assert result.actions["mac.compute"] == products


def _shapes_only() -> list[Layer]:
    conv = ConvShape(N=2, C=48, H=40, W=40, K=64, R=3, S=3, padding=(1, 1, 1, 1))
    gemm = GemmShape(M=512, K=256, N=192)
    return [Layer("c", "conv2d", conv, declared_act_density=0.45),
            Layer("g", "linear", gemm, declared_act_density=0.3, declared_weight_density=0.6)]


@pytest.mark.parametrize("config", CONFIGS)
def test_a_sample_counts_close_to_the_whole_layer(config, monkeypatch):
    arch = shipped(config)
    for layer in _shapes_only():
        whole = count_layer(layer, arch)
        assert not any("sample" in w for w in whole.warnings)
        monkeypatch.setattr(work, "MASK_BUDGET", math.prod(layer.shape.act_shape) // 8)
        part = count_layer(layer, arch)
        monkeypatch.undo()
        assert any("counted on a sample" in w for w in part.warnings)
        assert part.macs_dense == whole.macs_dense == layer.macs
        assert part.macs_done + part.macs_skipped == part.macs_dense
        assert part.macs_done == pytest.approx(whole.macs_done, rel=0.02)
        assert part.compute_cycles == pytest.approx(whole.compute_cycles, rel=0.15)
        assert part.cycles == pytest.approx(whole.cycles, rel=0.15)
        assert part.dram_bytes == pytest.approx(whole.dram_bytes, rel=0.05)
        for action, n in whole.actions.items():   # idle MACs: peak slots minus products
            if action != "mac.idle":
                assert part.actions.get(action, 0.0) == pytest.approx(n, rel=0.15)


@pytest.mark.parametrize("config", CONFIGS)
def test_huge_shapes_only_layers_are_counted_on_bounded_samples(config):
    arch = shipped(config)
    layers = [Layer("g", "linear", GemmShape(M=10**6, K=10**6, N=10**6), declared_act_density=0.4),
              Layer("c", "conv2d", ConvShape(N=1, C=4096, H=1024, W=1024, K=4096, R=3, S=3,
                                             padding=(1, 1, 1, 1)), declared_act_density=0.5)]
    planar = config == "scnn_like"
    for layer in layers:
        sample = work.statistical_sample(
            layer, planar, count.CUT_ORDER[type(arch.array)],
            lambda v, a=arch: count.counting_steps(v, a),
            lambda v, a=arch: count.cycles_estimate(v, a))
        assert sample is not None
        assert math.prod(sample.layer.shape.act_shape) <= work.MASK_BUDGET
        part = work.shape_view(sample.layer, planar)
        assert count.counting_steps(part, arch) <= work.WORK_BUDGET
        result = count_layer(layer, arch)
        assert result.macs_dense == layer.macs
        assert result.macs_done + result.macs_skipped == layer.macs
        assert 0 < result.cycles < math.inf and result.engine_mode == "statistical"
        dense = count_layer(layer, arch.dense_equivalent())
        assert dense.cycles >= result.cycles * 0.999


def test_traced_layers_are_never_sampled():
    layer = _traced_layers()[0]
    assert work.statistical_sample(layer, False, ("N", "H"), lambda v: 10**18,
                                   lambda v: 1.0) is None
