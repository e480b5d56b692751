"""Sparsity statistics and `accelsim inspect`: agreement with independent loop computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cli import main
from accelsim.errors import WorkloadError
from accelsim.workload import ConvShape, GemmShape, Layer, Workload, load_workload, save_workload
from accelsim.workload.reduction import from_reduction_view, reduction_view
from accelsim.workload.stats import (
    DEFAULT_THRESHOLDS,
    NM_PATTERNS,
    block_density,
    flatten_stats,
    hoyer,
    layer_nm_conformance,
    layer_stats,
    model_totals,
    nm_conformance,
    workload_stats,
)
from tests.reference import layer_stats_reference, nm_reference, reduction_rows_reference

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
WORKLOADS = sorted((ROOT / "workloads").glob("*.npz"))


def sparse_values(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> np.ndarray:
    """float16 values with ties (a coarse grid), exact zeros, a dead channel and a zero row."""
    x = np.round(rng.standard_normal(shape) * 4) / 4
    x[rng.random(shape) >= density] = 0
    return x.astype(np.float16)


def random_layers(rng: np.random.Generator) -> list[Layer]:
    conv_shape = ConvShape(N=2, C=7, H=5, W=6, K=4, R=3, S=3, padding=(1, 1, 1, 1))
    conv_act = sparse_values(rng, conv_shape.act_shape, 0.5)
    conv_act[:, 3] = 0
    lin_shape = GemmShape(M=19, K=13, N=5)
    lin_act = sparse_values(rng, lin_shape.act_shape, 0.6)
    lin_act[4] = 0
    mm_shape = GemmShape(M=6, K=9, N=6, batch=3)
    return [
        Layer("conv", "conv2d", conv_shape, act=conv_act),
        Layer("fc", "linear", lin_shape, act=lin_act),
        Layer("mm", "matmul", mm_shape, act=sparse_values(rng, mm_shape.act_shape, 0.8)),
        Layer("dw", "conv2d", ConvShape(N=1, C=8, H=4, W=4, K=8, R=3, S=3, padding=(1, 1, 1, 1),
                                        groups=8), act=sparse_values(rng, (1, 8, 4, 4), 0.3)),
    ]


def nm_expected(layer: Layer) -> dict:
    """`nm_conformance` and `nm_excess` of every pattern by the loop twin."""
    pairs = {f"{n}:{m}": nm_reference(layer.nonzero(), layer.shape, n, m) for n, m in NM_PATTERNS}
    return {"nm_conformance": {k: v[0] for k, v in pairs.items()},
            "nm_excess": {k: v[1] for k, v in pairs.items()}}


def reference_stats(layer: Layer, values: np.ndarray, thresholds=DEFAULT_THRESHOLDS,
                    has_values: bool = True) -> dict:
    """Every statistic by the loop twins: the row statistics from the reduction rows, N:M from
    the layer's segments (`nm_reference`)."""
    ref = layer_stats_reference(reduction_rows_reference(values, layer.op), thresholds,
                                has_values=has_values)
    return {**ref, **nm_expected(layer)}


def assert_matches_reference(stats: dict, ref: dict) -> None:
    for key, expected in ref.items():
        got = stats[key]
        if isinstance(expected, dict):
            assert got.keys() == expected.keys(), key
            for sub, value in expected.items():
                if value is None:
                    assert got[sub] is None, f"{key}[{sub}]"
                    continue
                assert got[sub] == pytest.approx(value, rel=1e-12, abs=1e-12), f"{key}[{sub}]"
        elif isinstance(expected, float):
            assert got == pytest.approx(expected, rel=1e-12), key
        else:
            assert got == expected, key


@pytest.mark.parametrize("seed", range(5))
def test_value_stats_match_reference_on_random_layers(seed):
    for layer in random_layers(np.random.default_rng(seed)):
        stats = layer_stats(layer)
        assert_matches_reference(stats, reference_stats(layer, layer.act))
        assert stats["zero_fraction"] == pytest.approx(np.mean(layer.act == 0))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 6), st.integers(1, 6),
       st.floats(0.0, 1.0), st.integers(0, 2**32 - 1), st.booleans())
def test_stats_match_reference_on_random_shapes(n, c, h, w, density, seed, conv):
    rng = np.random.default_rng(seed)
    if conv:
        shape = ConvShape(N=n, C=c, H=h, W=w, K=2, R=1, S=1)
        layer = Layer("x", "conv2d", shape, act=sparse_values(rng, shape.act_shape, density))
    else:
        shape = GemmShape(M=n * h, K=c * w, N=2)
        layer = Layer("x", "linear", shape, act=sparse_values(rng, shape.act_shape, density))
    assert_matches_reference(layer_stats(layer), reference_stats(layer, layer.act))


def test_known_dead_channels_and_zero_rows_are_found():
    conv, fc, _, _ = random_layers(np.random.default_rng(3))
    assert 3 in layer_stats(conv)["dead_channel_ids"]
    stats = layer_stats(fc)
    assert stats["rows"] == 19 and stats["row_length"] == 13
    second_lowest = np.sort(np.mean(fc.act != 0, axis=1))[1]
    assert 0 < stats["row_density_percentiles"]["p5"] < second_lowest  # pulled down by row 4


def test_mask_only_layer_reports_pattern_stats_and_no_value_stats():
    rng = np.random.default_rng(11)
    layer = random_layers(rng)[0]
    masked = Layer("m", "conv2d", layer.shape, act_mask=layer.act != 0)
    stats, full = layer_stats(masked), layer_stats(layer)
    assert stats["content"] == "mask"
    assert stats["max_abs"] is None and stats["hoyer"] is None and stats["hoyer_row_mean"] is None
    assert all(v is None for v in stats["near_zero_tensor"].values())
    assert all(v is None for v in stats["near_zero_row"].values())
    for key in ("nm_conformance", "nm_excess", "block_density", "row_density_percentiles",
                "dead_channel_ids", "zero_fraction"):
        assert stats[key] == full[key]


def test_shapes_only_layer_has_only_declared_density():
    layer = Layer("s", "linear", GemmShape(M=4, K=8, N=2), declared_act_density=0.3)
    stats = layer_stats(layer)
    assert stats["content"] == "shapes-only" and stats["mode"] == "statistical"
    assert stats["act_density"] == 0.3 and stats["zero_fraction"] == pytest.approx(0.7)
    assert stats["hoyer"] is None and stats["dead_channels"] is None and stats["rows"] is None
    assert all(v is None for v in stats["nm_conformance"].values())
    assert all(v is None for v in stats["block_density"].values())


def test_closed_form_values():
    assert hoyer(np.array([0, 0, 3.0, 0])) == pytest.approx(1.0)
    assert hoyer(np.array([-2.0, 2, 2, -2])) == pytest.approx(0.0)
    assert hoyer(np.zeros(5)) is None
    mask = np.array([[1, 1, 1, 0, 1, 0, 0, 0, 1]], bool)
    # groups [1,1,1,0] [1,0,0,0] [1,pad,pad,pad]: 2:4 holds in 2 of 3, 1:4 in 2 of 3
    assert nm_conformance(mask, 2, 4) == pytest.approx(2 / 3)
    assert nm_conformance(mask, 1, 4) == pytest.approx(2 / 3)
    assert nm_conformance(mask, 2, 8) == pytest.approx(1 / 2)
    assert block_density(np.zeros((17, 3), bool), 16, 1) == 0.0
    eye = np.eye(16, dtype=bool)
    assert block_density(eye, 4, 4) == pytest.approx(4 / 16)
    assert block_density(eye, 16, 1) == 1.0


@pytest.mark.parametrize("shape", [ConvShape(N=2, C=3, H=4, W=5, K=1, R=1, S=1),
                                   GemmShape(M=3, K=4, N=1, batch=2)])
def test_reduction_view_round_trip(shape):
    x = np.arange(np.prod(shape.act_shape), dtype=np.float64).reshape(shape.act_shape)
    view = reduction_view(x, shape)
    assert view.shape[1] == (shape.C if isinstance(shape, ConvShape) else shape.K)
    np.testing.assert_array_equal(from_reduction_view(view, shape), x)
    np.testing.assert_array_equal(view, np.array(reduction_rows_reference(x, "conv2d" if isinstance(
        shape, ConvShape) else "linear")))


def test_alias_reuses_target_stats_with_its_own_shape():
    rng = np.random.default_rng(5)
    x = sparse_values(rng, (4, 8), 0.5)
    w = Workload("m", [Layer("q", "linear", GemmShape(M=4, K=8, N=3), act=x),
                       Layer("k", "linear", GemmShape(M=4, K=8, N=5), alias_of="q", act=x)])
    q, k = workload_stats(w)
    assert k["alias_of"] == "q" and k["macs_dense"] == 4 * 8 * 5
    assert k["nm_conformance"] == q["nm_conformance"] and k["hoyer"] == q["hoyer"]
    assert [s["layer"] for s in workload_stats(w, layers=["k"])] == ["k"]
    with pytest.raises(WorkloadError, match="matches no layer"):
        workload_stats(w, layers=["v*"])


def test_model_totals_count_aliased_tensors_once():
    rng = np.random.default_rng(6)
    x = sparse_values(rng, (4, 8), 0.5)
    w = Workload("m", [Layer("q", "linear", GemmShape(M=4, K=8, N=3), act=x),
                       Layer("k", "linear", GemmShape(M=4, K=8, N=3), alias_of="q", act=x),
                       Layer("s", "linear", GemmShape(M=1, K=8, N=3), declared_act_density=0.5)])
    t = model_totals(w)
    assert t["traced_elements"] == 32 and t["zero_fraction_elements"] == pytest.approx(np.mean(x == 0))
    density = np.mean(x != 0)
    assert t["act_density_mac_weighted"] == pytest.approx((2 * 96 * density + 24 * 0.5) / 216)


def test_flatten_stats_columns():
    df = flatten_stats(workload_stats(Workload("m", random_layers(np.random.default_rng(1)))))
    assert "near_zero_tensor@0.01" in df.columns and "nm_conformance@2:4" in df.columns
    assert "block_density@16x1" in df.columns and "row_density_percentiles@p95" in df.columns
    assert "dead_channel_ids" not in df.columns


@pytest.fixture
def trace(tmp_path) -> Path:
    rng = np.random.default_rng(2)
    layers = random_layers(rng)
    layers.append(Layer("mask", "linear", GemmShape(M=5, K=6, N=2), act_mask=rng.random((5, 6)) < 0.5))
    layers.append(Layer("shapes", "linear", GemmShape(M=5, K=6, N=2), declared_act_density=0.4))
    path = tmp_path / "t.npz"
    save_workload(Workload("rand", layers), path)
    return path


def strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_inspect_json_has_everything(trace, capsys):
    assert main(["inspect", str(trace), "--json", "--thresholds", "0.02,0.2"]) == 0
    payload = strict_json(capsys.readouterr().out)
    assert payload["thresholds"] == [0.02, 0.2] and payload["transforms"] == []
    by_name = {row["layer"]: row for row in payload["layers"]}
    fc = load_workload(trace).layer("fc")
    assert_matches_reference(by_name["fc"], reference_stats(fc, fc.act, (0.02, 0.2)))
    assert all(v is None for v in by_name["dw"]["nm_conformance"].values())
    assert by_name["mask"]["content"] == "mask" and by_name["mask"]["hoyer"] is None
    assert by_name["mask"]["nm_conformance"]["2:4"] is not None
    assert by_name["shapes"]["act_density"] == pytest.approx(0.4)
    assert by_name["shapes"]["block_density"]["1x4"] is None
    assert payload["totals"]["macs_dense"] == sum(r["macs_dense"] for r in payload["layers"])


def test_inspect_table_detail_and_layer_filter(trace, capsys):
    assert main(["inspect", str(trace), "--detail", "--layers", "f*", "conv"]) == 0
    out = capsys.readouterr().out
    assert "near0@0.01" in out and "excess 2:4" in out and "row density p50" in out
    shown = {line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")}
    assert shown - {""} == {"fc", "conv"}  # first cells of every table's rows: no other layer


@pytest.mark.parametrize("bad", ["0", "1.5", "x", "0.1,,0.2"])
def test_inspect_rejects_bad_thresholds(trace, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(trace), "--thresholds", bad])
    assert exc.value.code == 2
    assert "--thresholds" in capsys.readouterr().err


def test_inspect_unknown_layer_pattern_is_a_clean_error(trace, capsys):
    assert main(["inspect", str(trace), "--layers", "nope*"]) == 2
    assert "matches no layer" in capsys.readouterr().err


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not produced yet")
def test_stats_match_reference_on_digits_trace(capsys):
    assert main(["inspect", str(DIGITS), "--json"]) == 0
    payload = strict_json(capsys.readouterr().out)
    workload = load_workload(DIGITS)
    for row in payload["layers"]:
        layer = workload.layer(row["layer"])
        if not layer.has_trace:
            continue
        values = layer.act if layer.act is not None else layer.act_mask.astype(np.float16)
        assert_matches_reference(row, reference_stats(layer, values,
                                                      has_values=layer.act is not None))


# --- N:M conformance: one definition along the layer's segments --------------------------------


@st.composite
def nm_layers(draw) -> Layer:
    """Mask-only layers of any geometry: linear/matmul of any K, convs with groups (depthwise
    included), one-channel inputs, padding, strides longer than the window (unread pixels) and
    dilation."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.floats(0.0, 1.0))
    if draw(st.booleans()):
        batch, M, K = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 19))
        shape = GemmShape(M=M, K=K, N=2, batch=batch)
        op = "matmul" if batch > 1 else "linear"
    else:
        groups = draw(st.sampled_from([1, 2, 3]))
        C = groups * draw(st.integers(1, 9))
        if draw(st.booleans()):
            groups = C  # depthwise
        R, S = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        shape = ConvShape(N=draw(st.integers(1, 2)), C=C, H=draw(st.integers(R, 7)),
                          W=draw(st.integers(S, 7)), K=groups, R=R, S=S,
                          stride=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
                          padding=tuple(draw(st.integers(0, 2)) for _ in range(4)),
                          dilation=(draw(st.integers(1, 2)), 1), groups=groups)
        if shape.E < 1 or shape.F < 1:
            shape = ConvShape(N=1, C=C, H=shape.H, W=shape.W, K=groups, R=R, S=S, groups=groups)
        op = "conv2d"
    return Layer("x", op, shape, act_mask=rng.random(shape.act_shape) < density)


@settings(max_examples=150, deadline=None)
@given(layer=nm_layers())
def test_nm_conformance_and_excess_match_the_loop_twin(layer):
    stats = layer_stats(layer)
    assert_matches_reference(stats, nm_expected(layer))


def test_nm_counts_each_read_pixel_once_and_no_padding():
    # 3x3 conv, padding 1, on a 2x2 input of 4 channels: every pixel is read by four windows,
    # the im2col matrix has 16 x 9 groups of which 16 x 5 are padding.
    shape = ConvShape(N=1, C=4, H=2, W=2, K=1, R=3, S=3, padding=(1, 1, 1, 1))
    mask = np.zeros(shape.act_shape, bool)
    mask[:, :, 0, 0] = True  # one pixel of four breaks 2:4
    layer = Layer("c", "conv2d", shape, act_mask=mask)
    stats = layer_stats(layer)
    assert stats["nm_conformance"]["2:4"] == pytest.approx(3 / 4)
    assert stats["nm_excess"]["2:4"] == pytest.approx(2 / 4)
    assert stats["nm_conformance"]["2:8"] is None  # 4 channels < 8


def test_nm_leaves_out_pixels_no_window_reads():
    # 1x1 conv of stride 2 on a 3x3 input reads the pixels (0|2, 0|2) only
    shape = ConvShape(N=1, C=4, H=3, W=3, K=1, R=1, S=1, stride=(2, 2))
    mask = np.zeros(shape.act_shape, bool)
    mask[:, :, 1, :] = True  # row 1 is never read
    layer = Layer("c", "conv2d", shape, act_mask=mask)
    assert layer_stats(layer)["nm_conformance"]["2:4"] == 1.0
    mask[:, :, 2, 2] = True
    assert layer_stats(layer)["nm_conformance"]["2:4"] == pytest.approx(3 / 4)


def test_nm_groups_restart_at_each_conv_group():
    # 2 groups of 6 channels: 2:4 groups are channels 0-3, 4-5 | 6-9, 10-11 of each pixel
    shape = ConvShape(N=1, C=12, H=1, W=1, K=2, R=1, S=1, groups=2)
    mask = np.zeros(shape.act_shape, bool)
    mask[0, [3, 4, 5, 6], 0, 0] = True  # along all of C, channels 4-7 would hold 3
    view = reduction_view(mask, shape)
    assert layer_nm_conformance(view, shape, 2, 4) == 1.0
    assert nm_conformance(view, 2, 4) == pytest.approx(2 / 3)  # the plain rows of the view


@pytest.mark.parametrize("layer", [
    Layer("c1", "conv2d", ConvShape(N=2, C=1, H=5, W=5, K=4, R=3, S=3, padding=(1, 1, 1, 1)),
          act_mask=np.ones((2, 1, 5, 5), bool)),
    Layer("dw", "conv2d", ConvShape(N=1, C=8, H=4, W=4, K=8, R=3, S=3, groups=8),
          act_mask=np.zeros((1, 8, 4, 4), bool)),
    Layer("fc", "linear", GemmShape(M=3, K=3, N=2), act_mask=np.zeros((3, 3), bool)),
], ids=["one-channel", "depthwise", "short-K"])
def test_nm_is_null_where_the_reduction_axis_is_shorter_than_m(layer):
    stats = layer_stats(layer)
    assert all(v is None for v in stats["nm_conformance"].values())
    assert all(v is None for v in stats["nm_excess"].values())
    assert np.isnan(flatten_stats([stats])["nm_conformance@2:4"]).all()


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not produced yet")
def test_inspect_gives_null_n_m_for_a_one_channel_conv(capsys):
    assert main(["inspect", str(DIGITS), "--json"]) == 0
    rows = {row["layer"]: row for row in strict_json(capsys.readouterr().out)["layers"]}
    assert rows["conv1"]["nm_conformance"]["2:4"] is None  # C = 1
    assert rows["conv1"]["nm_excess"]["2:4"] is None
    assert rows["conv2"]["nm_conformance"]["2:4"] is not None
    assert main(["inspect", str(DIGITS), "--detail", "--layers", "conv1"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "-" in out


@pytest.mark.parametrize("path", WORKLOADS, ids=[p.stem for p in WORKLOADS])
def test_nm_on_shipped_traces_matches_the_loop_twin(path):
    """Real traces, each traced layer cut to its first sample and a corner of at most 8 x 8
    pixels or 8 tokens (the twin is a Python loop)."""
    for layer in load_workload(path).layers:
        if not layer.has_trace or layer.alias_of is not None:
            continue
        s = layer.shape
        if isinstance(s, ConvShape):
            small = ConvShape(N=1, C=s.C, H=min(s.H, 8), W=min(s.W, 8), K=s.K, R=s.R, S=s.S,
                              stride=s.stride, padding=s.padding, dilation=s.dilation,
                              groups=s.groups)
            if small.E < 1 or small.F < 1:
                small = ConvShape(N=1, C=s.C, H=s.H, W=s.W, K=s.K, R=s.R, S=s.S, stride=s.stride,
                                  padding=s.padding, dilation=s.dilation, groups=s.groups)
            mask = layer.nonzero()[:1, :, :small.H, :small.W]
        else:
            small = GemmShape(M=min(s.M, 8), K=s.K, N=s.N)
            mask = layer.nonzero().reshape(-1, s.K)[:small.M]
        cut = Layer(layer.name, layer.op, small, act_mask=mask)
        view = reduction_view(mask, small)
        for n, m in NM_PATTERNS:
            expected = nm_reference(mask, small, n, m)[0]
            got = layer_nm_conformance(view, small, n, m)
            assert (got is None) == (expected is None), (layer.name, n, m)
            if expected is not None:
                assert got == pytest.approx(expected, rel=1e-12), (layer.name, n, m)
        assert layer_stats(cut)["nm_conformance"]["2:4"] == layer_nm_conformance(view, small, 2, 4)
