"""What-if sparsification: exact targets, TEAL and CATS, output error, aliasing, metadata and
clean errors."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cli import main
from accelsim.workload import ConvShape, GemmShape, Layer, Workload, load_workload, save_workload
from accelsim.workload.kernels import keep_largest_mask
from accelsim.workload.output_error import conv2d_output, relative_output_error
from accelsim.workload.reduction import reduction_view
from accelsim.workload.sparsify import SparsifyError, greedy_allocation, sparsify
from accelsim.workload.stats import nm_conformance, nm_excess
from tests.reference import (
    conv2d_reference,
    greedy_allocation_reference,
    keep_largest_mask_reference,
)

try:
    import torch
except ImportError:  # torch is the optional `capture` extra; conv checks then use loops only
    torch = None

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.npz"


def values(rng: np.random.Generator, shape: tuple[int, ...], density: float = 0.7) -> np.ndarray:
    """float16 values on a coarse grid (many ties) with some exact zeros."""
    x = np.round(rng.standard_normal(shape) * 3) / 3
    x[rng.random(shape) >= density] = 0
    return x.astype(np.float16)


def toy(seed: int = 0) -> Workload:
    rng = np.random.default_rng(seed)
    conv = ConvShape(N=2, C=6, H=7, W=5, K=4, R=3, S=3, stride=(2, 1), padding=(1, 0, 1, 1))
    dw = ConvShape(N=2, C=4, H=5, W=5, K=4, R=3, S=3, padding=(1, 1, 1, 1), groups=4)
    return Workload("toy", [
        Layer("conv", "conv2d", conv, act=values(rng, conv.act_shape, 0.6),
              weight=values(rng, conv.weight_shape, 1.0)),
        Layer("dw", "conv2d", dw, act=values(rng, dw.act_shape, 0.5),
              weight=values(rng, dw.weight_shape, 1.0)),
        Layer("q", "linear", GemmShape(M=9, K=22, N=5), act=values(rng, (9, 22), 0.95),
              weight=values(rng, (22, 5), 1.0)),
        Layer("k", "linear", GemmShape(M=9, K=22, N=3), alias_of="q",
              weight=values(rng, (22, 3), 1.0)),
        Layer("qk", "matmul", GemmShape(M=9, K=6, N=9, batch=2), act=values(rng, (2, 9, 6), 1.0)),
        Layer("mask", "linear", GemmShape(M=3, K=8, N=2), act_mask=rng.random((3, 8)) < 0.5),
        Layer("shapes", "linear", GemmShape(M=1, K=8, N=2), declared_act_density=0.5),
    ], edges=[("conv", "dw"), ("dw", "q"), ("q", "qk"), ("k", "qk")])


def zeros(a: np.ndarray) -> int:
    return int(a.size - np.count_nonzero(a))


def reduction_views(before: Workload, after: Workload,
                    names: Iterable[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each layer in `names`: its values in `before` and in `after`, each as the
    (rows, reduction) view that the transforms work on."""
    for name in names:
        shape = before.layer(name).shape
        yield reduction_view(before.layer(name).act, shape), reduction_view(after.layer(name).act, shape)


def check_only_zeroed(before: np.ndarray, after: np.ndarray) -> None:
    """A transform only zeroes values: kept values are untouched."""
    kept = after != 0
    np.testing.assert_array_equal(after[kept], before[kept])


def check_magnitude_order(before: np.ndarray, after: np.ndarray) -> None:
    """No zeroed value is larger in magnitude than a kept one."""
    a = np.abs(before.astype(np.float64))
    dropped, kept = a[(before != 0) & (after == 0)], a[after != 0]
    if dropped.size and kept.size:
        assert dropped.max() <= kept.min()


# --- kernel vs reference ---------------------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
               elements=st.integers(-3, 3).map(float)),
    st.integers(1, 50), st.data(),
)
def test_keep_largest_matches_reference(vals, seg_len, data):
    keep = np.array(data.draw(st.lists(st.integers(-1, 45), min_size=vals.shape[0],
                                       max_size=vals.shape[0])), np.int64)
    got = keep_largest_mask(np.abs(vals), seg_len, keep)
    assert got.tolist() == keep_largest_mask_reference(np.abs(vals).tolist(), seg_len, keep)


def test_keep_largest_long_segments_match_reference():
    rng = np.random.default_rng(4)
    vals = np.abs(np.round(rng.standard_normal((6, 700)) * 2))  # sorted path, many ties
    keep = rng.integers(0, 700, 6)
    for seg in (33, 100, 700):
        got = keep_largest_mask(vals, seg, keep)
        assert got.tolist() == keep_largest_mask_reference(vals.tolist(), seg, keep)


# --- each method hits its target exactly -----------------------------------------------------

@pytest.mark.parametrize("target", [0.0, 0.37, 0.5, 0.83, 1.0])
def test_threshold_target_per_layer_is_exact(target):
    w = toy()
    res = sparsify(w, "threshold", target=target)
    for name in ("conv", "dw", "q", "qk"):
        before, after = w.layer(name).act, res.workload.layer(name).act
        want = max(zeros(before), math.floor(target * before.size + 0.5))
        assert zeros(after) == want
        assert abs(zeros(after) - target * before.size) <= 1 or zeros(before) > target * before.size
        check_only_zeroed(before, after)
        check_magnitude_order(before, after)
    assert res.workload.layer("k").act is res.workload.layer("q").act
    assert res.workload.layer("mask").act_mask is w.layer("mask").act_mask
    assert any("skipped 'mask'" in n for n in res.notes)


@pytest.mark.parametrize("normalize", ["rms", "none"])
def test_threshold_target_model_wide_is_exact(normalize):
    w = toy(1)
    owners = ["conv", "dw", "q", "qk"]
    total = sum(w.layer(n).act.size for n in owners)
    res = sparsify(w, "threshold", target=0.6, scope="model", normalize=normalize)
    assert sum(zeros(res.workload.layer(n).act) for n in owners) == math.floor(0.6 * total + 0.5)
    assert res.record["sparsity_after"] == pytest.approx(math.floor(0.6 * total + 0.5) / total)
    cut = res.record["normalized_threshold"]
    for n in owners:
        before, after = w.layer(n).act, res.workload.layer(n).act
        a = np.abs(before.astype(np.float64))
        scale = math.sqrt(np.mean(a * a)) if normalize == "rms" else 1.0
        assert np.all(a[after == 0] / scale <= cut)
        assert np.all(a[after != 0] / scale >= cut)
        check_only_zeroed(before, after)


def test_fixed_threshold_zeroes_exactly_below_or_at_t():
    w = toy(2)
    res = sparsify(w, "threshold", threshold=0.34)
    for n in ("conv", "q", "qk"):
        before = w.layer(n).act
        expected = np.where(np.abs(before.astype(np.float64)) <= 0.34, 0, before)
        np.testing.assert_array_equal(res.workload.layer(n).act, expected)


@pytest.mark.parametrize(("k", "keep_fraction"), [(0, None), (1, None), (3, None), (50, None),
                                                  (None, 0.25), (None, 0.5)])
def test_topk_keeps_exactly_k_per_row(k, keep_fraction):
    w = toy(3)
    res = sparsify(w, "topk", k=k, keep_fraction=keep_fraction)
    for before, after in reduction_views(w, res.workload, ("conv", "dw", "q", "qk")):
        kk = k if k is not None else math.floor(keep_fraction * before.shape[1] + 0.5)
        expected = np.minimum(kk, np.count_nonzero(before, axis=1))
        np.testing.assert_array_equal(np.count_nonzero(after, axis=1), expected)
        for row_before, row_after in zip(before, after):
            check_only_zeroed(row_before, row_after)
            check_magnitude_order(row_before, row_after)


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (2, 8), (3, 3)])
def test_nm_gives_full_conformance_and_drops_exactly_the_excess(n, m):
    w = toy(4)
    res = sparsify(w, "nm", n=n, m=m)
    for before, after in reduction_views(w, res.workload, ("conv", "dw", "q", "qk")):
        assert nm_conformance(after != 0, n, m) == 1.0
        dropped = np.count_nonzero(before) - np.count_nonzero(after)
        assert dropped == round(nm_excess(before != 0, n, m) * np.count_nonzero(before))
        for r in range(before.shape[0]):
            for start in range(0, before.shape[1], m):
                check_magnitude_order(before[r, start:start + m], after[r, start:start + m])


@pytest.mark.parametrize("target", [0.3, 0.5, 0.9])
def test_channel_thresholds_hit_target_per_channel_and_per_layer(target):
    w = toy(5)
    res = sparsify(w, "channel", target=target, layers=["q", "qk"])
    for before, after in reduction_views(w, res.workload, ("q", "qk")):
        rows = before.shape[0]
        per_channel = rows - np.count_nonzero(after, axis=0)
        floor_before = rows - np.count_nonzero(before, axis=0)
        assert np.all((np.abs(per_channel - target * rows) <= 1) | (per_channel == floor_before))
        if np.all(floor_before <= math.floor(target * rows)):
            assert zeros(after) == math.floor(target * after.size + 0.5)
        for c in range(before.shape[1]):
            check_magnitude_order(before[:, c], after[:, c])
    assert res.workload.layer("conv").act is w.layer("conv").act


# --- output error ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", range(4))
def test_conv_output_matches_direct_loops(case):
    rng = np.random.default_rng(case)
    shape = [
        ConvShape(N=2, C=4, H=6, W=5, K=6, R=3, S=2, stride=(2, 1), padding=(1, 0, 2, 1),
                  dilation=(1, 2), groups=2),
        ConvShape(N=1, C=3, H=5, W=5, K=3, R=3, S=3, padding=(1, 1, 1, 1), groups=3),
        ConvShape(N=3, C=2, H=4, W=7, K=5, R=1, S=1),
        ConvShape(N=1, C=2, H=8, W=3, K=2, R=5, S=1, stride=(3, 1), padding=(2, 2, 0, 0)),
    ][case]
    x = rng.standard_normal(shape.act_shape)
    wt = rng.standard_normal(shape.weight_shape)
    expected = conv2d_reference(x, wt, shape.stride, shape.padding, shape.dilation, shape.groups)
    np.testing.assert_allclose(conv2d_output(x, wt, shape), expected, rtol=1e-12, atol=1e-12)


def test_conv_output_chunks_over_samples(monkeypatch):
    import accelsim.workload.output_error as oe

    rng = np.random.default_rng(9)
    shape = ConvShape(N=5, C=3, H=6, W=6, K=4, R=3, S=3, padding=(1, 1, 1, 1))
    x, wt = rng.standard_normal(shape.act_shape), rng.standard_normal(shape.weight_shape)
    whole = conv2d_output(x, wt, shape)
    monkeypatch.setattr(oe, "IM2COL_BUDGET_ELEMENTS", 1)
    np.testing.assert_array_equal(conv2d_output(x, wt, shape), whole)


def test_reported_error_equals_numpy_computation():
    w = toy(6)
    res = sparsify(w, "nm", n=2, m=4)
    report = res.report.set_index("layer")
    for name in ("q", "k"):
        layer = w.layer(name)
        x = w.layer("q").act.astype(np.float64)  # 'k' reads q's tensor (alias_of)
        xs = res.workload.layer(name).act.astype(np.float64)
        wt = layer.weight.astype(np.float64)
        expected = np.linalg.norm(x @ wt - xs @ wt) / np.linalg.norm(x @ wt)
        assert report.loc[name, "rel_output_error"] == pytest.approx(expected, rel=1e-10)
        assert report.loc[name, "rel_act_error"] == pytest.approx(
            np.linalg.norm(x - xs) / np.linalg.norm(x), rel=1e-10)
    for name in ("conv", "dw"):
        layer = w.layer(name)
        s = layer.shape
        args = (layer.weight.astype(np.float64), s.stride, s.padding, s.dilation, s.groups)
        y = conv2d_reference(layer.act.astype(np.float64), *args)
        ys = conv2d_reference(res.workload.layer(name).act.astype(np.float64), *args)
        expected = np.linalg.norm(y - ys) / np.linalg.norm(y)
        assert report.loc[name, "rel_output_error"] == pytest.approx(expected, rel=1e-10)
        assert res.record["per_layer"][name]["rel_output_error"] == pytest.approx(expected, rel=1e-10)
    assert math.isnan(report.loc["qk", "rel_output_error"])  # no second operand stored
    assert res.record["per_layer"]["qk"]["rel_output_error"] is None


def test_relative_error_edge_cases():
    shape = GemmShape(M=2, K=3, N=2)
    x = np.array([[1.0, 0, 2], [0, 0, 1]])
    w = np.zeros((3, 2))
    assert relative_output_error(shape, x, x, w) == 0.0
    assert relative_output_error(shape, x, np.zeros_like(x), w) == 0.0
    w[0, 0] = 1.0
    assert relative_output_error(shape, x, x * np.array([0, 1, 1]), w) == pytest.approx(1.0)


# --- metadata, aliasing, round trip ----------------------------------------------------------

def test_transform_record_survives_save_and_load_and_chains(tmp_path):
    w = toy(7)
    first = sparsify(w, "threshold", target=0.5)
    path = tmp_path / "a.npz"
    save_workload(first.workload, path)
    loaded = load_workload(path)
    assert [t["method"] for t in loaded.extra_meta["transforms"]] == ["threshold"]
    record = loaded.extra_meta["transforms"][0]
    assert record["params"] == {"target": 0.5, "scope": "layer"}
    assert record["layers"] == ["conv", "dw", "q", "qk"]
    assert set(record["per_layer"]) == {"conv", "dw", "q", "k", "qk"}
    assert loaded.layer("k").act is loaded.layer("q").act
    np.testing.assert_array_equal(loaded.layer("q").act, first.workload.layer("q").act)
    with np.load(path, allow_pickle=False) as npz:
        assert "act/k" not in npz.files and "mask/mask" in npz.files
    second = sparsify(loaded, "nm", n=2, m=4, layers=["q"])
    assert [t["method"] for t in second.workload.extra_meta["transforms"]] == ["threshold", "nm"]
    assert second.record["input_hash"] == loaded.content_hash
    assert "transforms" not in w.extra_meta  # the input is not modified


def test_selecting_an_alias_transforms_the_shared_tensor():
    w = toy(8)
    res = sparsify(w, "topk", k=2, layers=["k"])
    assert res.record["layers"] == ["q"]
    assert any("'q' changes too" in n for n in res.notes)
    assert res.workload.layer("k").act is res.workload.layer("q").act
    assert np.all(np.count_nonzero(res.workload.layer("q").act, axis=1) <= 2)
    assert list(res.report["layer"]) == ["q", "k"]
    np.testing.assert_array_equal(res.workload.layer("conv").act, w.layer("conv").act)


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "kwargs", "needle"), [
    ("prune", {}, "unknown method"),
    ("threshold", {}, "exactly one of target"),
    ("threshold", {"target": 0.5, "threshold": 0.1}, "exactly one of target"),
    ("threshold", {"target": 1.2}, "fraction in [0, 1]"),
    ("threshold", {"threshold": -1.0}, "must be >= 0"),
    ("threshold", {"threshold": 0.1, "scope": "model"}, "only apply to a calibrated target"),
    ("threshold", {"target": 0.1, "normalize": "rms"}, "only applies with scope 'model'"),
    ("threshold", {"target": 0.1, "scope": "net"}, "scope must be"),
    ("topk", {}, "exactly one of k"),
    ("topk", {"k": -1}, "integer >= 0"),
    ("topk", {"keep_fraction": 2.0}, "fraction in [0, 1]"),
    ("topk", {"k": 2, "n": 2}, "does not take n (--n)"),
    ("nm", {"n": 2}, "needs both n and m"),
    ("nm", {"n": 5, "m": 4}, "1 <= n <= m"),
    ("nm", {"n": 0, "m": 4}, "1 <= n <= m"),
    ("channel", {}, "needs target"),
    ("channel", {"target": 0.5, "k": 3}, "does not take k"),
    ("nm", {"n": 2, "m": 4, "layers": ["nope*"]}, "matches no layer"),
    ("nm", {"n": 2, "m": 4, "layers": ["mask"]}, "only a non-zero mask"),
    ("nm", {"n": 2, "m": 4, "layers": ["shapes"]}, "no activation array"),
    ("teal", {}, "needs target"),
    ("teal", {"target": 0.5, "step": 0.0}, "must be in (0, 1]"),
    ("teal", {"target": 0.5, "step": 1.5}, "must be in (0, 1]"),
    ("teal", {"target": 0.5, "k": 2}, "does not take k"),
    ("teal", {"target": 0.5, "layers": ["qk"]}, "no selected layer is a linear or conv2d"),
    ("teal", {"target": 0.5, "layers": ["mask"]}, "only a non-zero mask"),
    ("cats", {}, "needs target"),
    ("cats", {"target": 0.5, "step": 0.1}, "does not take step"),
    ("cats", {"target": 0.5, "glu": ["a", "b"]}, "three different names"),
    ("cats", {"target": 0.5, "glu": ["a", "a", "b"]}, "three different names"),
    ("cats", {"target": 0.5}, "found no GLU MLP"),
])
def test_bad_arguments_give_clear_errors(method, kwargs, needle):
    with pytest.raises(SparsifyError) as err:
        sparsify(toy(), method, **kwargs)
    assert needle in str(err.value)


def test_trace_without_values_is_refused():
    w = Workload("m", [Layer("a", "linear", GemmShape(M=2, K=4, N=1),
                             act_mask=np.ones((2, 4), bool))])
    with pytest.raises(SparsifyError, match="--keep values"):
        sparsify(w, "threshold", target=0.5)


# --- command line ----------------------------------------------------------------------------

def test_cli_sparsify_end_to_end(tmp_path, capsys):
    src, out = tmp_path / "in.npz", tmp_path / "out.npz"
    save_workload(toy(10), src)
    assert main(["sparsify", str(src), "-o", str(out), "--method", "nm", "--n", "2", "--m", "4",
                 "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["method"] == "nm" and record["params"] == {"n": 2, "m": 4}
    assert "skipped 'mask'" in captured.err and "wrote" in captured.err
    loaded = load_workload(out)
    assert loaded.extra_meta["transforms"][0]["per_layer"] == record["per_layer"]
    assert nm_conformance(reduction_view(loaded.layer("conv").act != 0, loaded.layer("conv").shape),
                          2, 4) == 1.0
    assert main(["inspect", str(out)]) == 0
    assert "transform 1: nm" in capsys.readouterr().out
    assert main(["sparsify", str(src), "-o", str(out), "--method", "threshold", "--target", "0.5",
                 "--scope", "model", "--layers", "q", "conv"]) == 0
    table = capsys.readouterr().out
    assert "rel_output_error" in table and "conv" in table and "qk" not in table


def test_cli_sparsify_errors_exit_2(tmp_path, capsys):
    src = tmp_path / "in.npz"
    save_workload(toy(), src)
    assert main(["sparsify", str(src), "-o", str(tmp_path / "o.npz"), "--method", "topk"]) == 2
    assert "exactly one of k" in capsys.readouterr().err
    assert main(["sparsify", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "o.npz"),
                 "--method", "nm", "--n", "2", "--m", "4"]) == 2
    assert "no such workload file" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


# --- real trace ------------------------------------------------------------------------------

def torch_conv(x: np.ndarray, wt: np.ndarray, s: ConvShape) -> np.ndarray:
    """The convolution by torch, an implementation independent of the im2col one."""
    t, b, left, r = s.padding
    padded = torch.nn.functional.pad(torch.from_numpy(x), (left, r, t, b))
    return torch.nn.functional.conv2d(padded, torch.from_numpy(wt), stride=s.stride,
                                      dilation=s.dilation, groups=s.groups).numpy()


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not produced yet")
def test_real_trace_nm_and_error_against_independent_computation():
    w = load_workload(DIGITS)
    res = sparsify(w, "nm", n=2, m=4)
    report = res.report.set_index("layer")
    checked = 0
    for layer in w.layers:
        if layer.act is None or layer.alias_of is not None:
            continue
        after = res.workload.layer(layer.name).act
        view = reduction_view(after != 0, layer.shape)
        assert nm_conformance(view, 2, 4) == 1.0
        if layer.weight is None:
            continue
        x, xs = layer.act.astype(np.float64), after.astype(np.float64)
        wt = layer.weight.astype(np.float64)
        if layer.op == "conv2d":
            if torch is None:
                continue
            y, ys = torch_conv(x, wt, layer.shape), torch_conv(xs, wt, layer.shape)
        else:
            y, ys = x @ wt, xs @ wt
        expected = np.linalg.norm(y - ys) / np.linalg.norm(y)
        assert report.loc[layer.name, "rel_output_error"] == pytest.approx(expected, rel=1e-9)
        checked += 1
    assert checked > 0


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not produced yet")
def test_real_trace_kernel_matches_reference_on_its_rows():
    w = load_workload(DIGITS)
    for layer in w.layers:
        if layer.act is None:
            continue
        a = np.abs(reduction_view(layer.act, layer.shape).astype(np.float64))[:64]
        keep = np.full(a.shape[0], max(1, a.shape[1] // 3), np.int64)
        for seg in (4, a.shape[1]):
            got = keep_largest_mask(a, seg, keep)
            assert got.tolist() == keep_largest_mask_reference(a.tolist(), seg, keep)


# --- teal ------------------------------------------------------------------------------------

WEIGHT_OPS = ("linear", "conv2d")
TOY_TENSORS = ["conv", "dw", "q"]  # toy()'s weight-layer inputs; 'k' reads 'q', 'qk' is a matmul


def tensor_readers(w: Workload) -> dict[str, list[Layer]]:
    """Each weight-layer input tensor of `w` (keyed by its owner) and the weight layers reading it."""
    readers: dict[str, list[Layer]] = {}
    for layer in w.layers:
        if layer.op in WEIGHT_OPS:
            readers.setdefault(layer.alias_of or layer.name, []).append(layer)
    return readers


def mac_weighted_sparsity(w: Workload, owners: Iterable[str]) -> tuple[float, float]:
    """The share of zeros over the tensors `owners` of `w`, each weighted by the dense MACs of
    the layers reading it, and half the largest weight of one element (as a share): the
    rounding a target can be met to."""
    readers = tensor_readers(w)
    owners = list(owners)
    total = sum(layer.macs for o in owners for layer in readers[o])
    weighted = half = 0.0
    for o in owners:
        a = w.layer(o).act
        macs = sum(layer.macs for layer in readers[o])
        weighted += zeros(a) / a.size * macs
        half = max(half, macs / a.size / 2)
    return weighted / total, half / total


def squared_errors(res, column: str = "rel_output_error") -> float:
    """Sum over the report's layers of the squared relative error."""
    return float(np.nansum(res.report[column].to_numpy() ** 2))


@pytest.mark.parametrize(("extra", "step"), [(0.1, 0.05), (0.5, 0.05), (0.5, 0.3), (0.97, 0.1),
                                             (1.0, 0.05)])
def test_teal_reaches_the_mac_weighted_target_within_one_step(extra, step):
    w = toy(11)
    natural, _ = mac_weighted_sparsity(w, TOY_TENSORS)
    target = natural + extra * (1 - natural)
    res = sparsify(w, "teal", target=target, step=step)
    assert res.record["layers"] == TOY_TENSORS
    got, half = mac_weighted_sparsity(res.workload, TOY_TENSORS)
    assert abs(got - target) <= half + 1e-12
    assert res.record["mac_weighted_sparsity_after"] == pytest.approx(got, rel=1e-12)
    assert res.record["mac_weighted_sparsity_before"] == pytest.approx(natural, rel=1e-12)
    alloc = res.record["allocation"]
    for name in TOY_TENSORS:
        before, after = w.layer(name).act, res.workload.layer(name).act
        assert zeros(after) == round(alloc[name]["sparsity"] * after.size) >= zeros(before)
        check_only_zeroed(before, after)
        # Within a tensor the zeros are its smallest |x|, equal ones kept in the lower position.
        shape = w.layer(name).shape
        flat = np.abs(reduction_view(before, shape).astype(np.float64)).reshape(1, -1)
        kept = keep_largest_mask_reference(flat.tolist(), flat.size, [flat.size - zeros(after)])
        assert (reduction_view(after, shape) != 0).ravel().tolist() == [
            k and v != 0 for k, v in zip(kept[0], flat[0])]
    macs = {n: w.layer(n).macs for n in ("conv", "dw", "q", "k")}
    assert alloc["q"]["mac_share"] == pytest.approx((macs["q"] + macs["k"]) / sum(macs.values()))
    assert alloc["q"]["criterion"] == {"q": "rel_output_error", "k": "rel_output_error"}
    assert res.workload.layer("k").act is res.workload.layer("q").act
    assert res.workload.layer("qk").act is w.layer("qk").act
    assert any("left out 1 layer" in n and "qk" in n for n in res.notes)
    assert any("skipped 'mask'" in n for n in res.notes)


def test_teal_leaves_a_selection_already_at_its_target_unchanged():
    w = toy(11)
    natural, _ = mac_weighted_sparsity(w, TOY_TENSORS)
    res = sparsify(w, "teal", target=0.9 * natural)
    for name in TOY_TENSORS:
        np.testing.assert_array_equal(res.workload.layer(name).act, w.layer(name).act)
    assert res.record["greedy_steps"] == 0 and res.record["objective_after"] == 0.0
    assert any("nothing was zeroed" in n for n in res.notes)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_greedy_allocation_matches_reference(data):
    count = data.draw(st.integers(1, 5))
    sizes = [data.draw(st.integers(1, 30)) for _ in range(count)]
    start = [data.draw(st.integers(0, s)) for s in sizes]
    macs = [float(data.draw(st.integers(1, 1000))) for _ in range(count)]
    costs = st.floats(0, 10) | st.sampled_from([0.0, 1.0, math.inf])  # ties and dead ends
    tables = [data.draw(st.lists(costs, min_size=s + 1, max_size=s + 1)) for s in sizes]
    target, step = data.draw(st.floats(0, 1)), data.draw(st.floats(0.01, 1))

    def cost(i: int, z: int) -> float:
        return tables[i][z]

    got = greedy_allocation(sizes, start, macs, cost, target, step)
    assert got == greedy_allocation_reference(sizes, start, macs, cost, target, step)


def two_layer_trace(seed: int, weights: bool = True) -> Workload:
    """Two linear layers of equal MACs: in 'a' every other channel is a thousand times smaller
    than the rest (half of it is nearly free to zero), 'b' is plain Gaussian."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((32, 16))
    a[:, ::2] *= 1e-3
    b = rng.standard_normal((32, 16))
    shape = GemmShape(M=32, K=16, N=8)
    return Workload("two", [
        Layer(name, "linear", shape, act=x.astype(np.float16),
              weight=rng.standard_normal((16, 8)).astype(np.float16) if weights else None)
        for name, x in (("a", a), ("b", b))
    ])


@pytest.mark.parametrize("weights", [True, False])
def test_teal_gives_more_sparsity_where_zeroing_costs_less(weights):
    w = two_layer_trace(12, weights)
    res = sparsify(w, "teal", target=0.5)
    alloc = res.record["allocation"]
    assert alloc["a"]["sparsity"] > 0.5 > alloc["b"]["sparsity"]
    assert (alloc["a"]["sparsity"] + alloc["b"]["sparsity"]) / 2 == pytest.approx(0.5, abs=1 / 1024)
    column = "rel_output_error" if weights else "rel_act_error"
    assert alloc["a"]["criterion"] == {"a": column}
    assert res.record["objective_after"] == pytest.approx(squared_errors(res, column), rel=1e-9)
    uniform = sparsify(w, "threshold", target=0.5)
    assert squared_errors(res, column) < squared_errors(uniform, column)


def test_teal_without_weights_uses_the_input_error_of_every_reader():
    w = toy(13)
    w.layers = [dataclasses.replace(layer, weight=None) for layer in w.layers]
    res = sparsify(w, "teal", target=0.7)
    assert res.record["allocation"]["q"]["criterion"] == {"q": "rel_act_error",
                                                          "k": "rel_act_error"}
    report = res.report.set_index("layer")
    assert report["rel_output_error"].isna().all()
    expected = sum(report.loc[n, "rel_act_error"] ** 2 for n in ("conv", "dw", "q", "k"))
    assert res.record["objective_after"] == pytest.approx(expected, rel=1e-9)


def test_teal_layers_restrict_the_tensors_and_the_target():
    w = toy(14)
    res = sparsify(w, "teal", target=0.7, layers=["conv", "dw"])
    assert res.record["layers"] == ["conv", "dw"]
    got, half = mac_weighted_sparsity(res.workload, ["conv", "dw"])
    assert abs(got - 0.7) <= half
    assert res.workload.layer("q").act is w.layer("q").act


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not produced yet")
def test_real_trace_teal_beats_a_uniform_share_at_the_same_mac_weighted_sparsity():
    w = load_workload(DIGITS)
    owners = list(tensor_readers(w))
    teal = sparsify(w, "teal", target=0.5)
    got, half = mac_weighted_sparsity(teal.workload, owners)
    assert abs(got - 0.5) <= half
    assert teal.record["objective_after"] == pytest.approx(squared_errors(teal), rel=1e-9)
    low, high = 0.0, 1.0  # the smallest uniform share at least as sparse, MAC-weighted
    for _ in range(20):
        mid = (low + high) / 2
        probe = sparsify(w, "threshold", target=mid, output_error=False).workload
        low, high = (mid, high) if mac_weighted_sparsity(probe, owners)[0] < got else (low, mid)
    uniform = sparsify(w, "threshold", target=high)
    assert mac_weighted_sparsity(uniform.workload, owners)[0] >= got
    assert squared_errors(teal) < squared_errors(uniform)


# --- cats ------------------------------------------------------------------------------------

def silu(z: np.ndarray) -> np.ndarray:
    return z / (1 + np.exp(-z))


def glu_trace(seed: int, *, names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj"),
              suffix: str = "", weights: bool = True, blocks: int = 2, tokens: int = 8,
              hidden: int = 10, inter: int = 16) -> tuple[Workload, dict[str, np.ndarray]]:
    """A trace of `blocks` SiLU-gated MLPs built in numpy, and per down projection the exact
    gate activations |silu(x W_gate)| (float64, from the stored float16 x and W_gate)."""
    rng = np.random.default_rng(seed)
    gate_name, up_name, down_name = names
    layers, gates = [], {}
    for b in range(blocks):
        p = f"model.layers.{b}.mlp."
        x = rng.standard_normal((tokens, hidden)).astype(np.float16)
        wg, wu = (rng.standard_normal((2, hidden, inter)) / 2).astype(np.float16)
        wd = rng.standard_normal((inter, 6)).astype(np.float16)
        x64 = x.astype(np.float64)
        act = silu(x64 @ wg.astype(np.float64))
        d = (act * (x64 @ wu.astype(np.float64))).astype(np.float16)
        up_shape = GemmShape(M=tokens, K=hidden, N=inter)
        layers += [
            Layer(p + gate_name + suffix, "linear", up_shape, act=x,
                  weight=wg if weights else None),
            Layer(p + up_name + suffix, "linear", up_shape, alias_of=p + gate_name + suffix,
                  act=x, weight=wu if weights else None),  # reads the gate's tensor, as loaded
            Layer(p + down_name + suffix, "linear", GemmShape(M=tokens, K=inter, N=6), act=d,
                  weight=wd if weights else None),
        ]
        gates[p + down_name + suffix] = np.abs(act)
    layers.append(Layer("lm_head", "linear", GemmShape(M=tokens, K=hidden, N=5),
                        act=rng.standard_normal((tokens, hidden)).astype(np.float16)))
    return Workload("glu", layers), gates


def check_cats_against_direct_gate(before: np.ndarray, after: np.ndarray, gate: np.ndarray,
                                   target: float, reported_cut: float) -> None:
    """`after` zeroes exactly the entries whose directly computed gate |act(gate(x))| is below
    a cut-off that leaves round(target * n) zeros, and the reported cut-off is the largest gate
    zeroed (to float16 precision of the traced input)."""
    want = max(zeros(before), math.floor(target * before.size + 0.5))
    ranked = np.sort(gate.ravel())
    below, above = ranked[want - 1], ranked[want]
    # Precondition of the check, not of the method: the float16 input (2^-11 relative) cannot
    # move a gate across this cut.
    assert above - below > 2e-3 * above
    np.testing.assert_array_equal(after == 0, (gate < (below + above) / 2) | (before == 0))
    assert zeros(after) == want
    assert reported_cut == pytest.approx(below, rel=2e-3)
    check_only_zeroed(before, after)


@pytest.mark.parametrize("target", [0.25, 0.5, 0.8])
def test_cats_zeroes_exactly_the_entries_with_the_smallest_gate(target):
    w, gates = glu_trace(1)
    res = sparsify(w, "cats", target=target)
    assert res.record["layers"] == list(gates)
    assert res.record["params"] == {"target": target, "glu": ["gate_proj", "up_proj", "down_proj"]}
    report = res.report.set_index("layer")
    for name, gate in gates.items():
        block = res.record["glu_blocks"][name]
        assert block["gate"] == name.replace("down_proj", "gate_proj")
        assert block["up"] == name.replace("down_proj", "up_proj") and block["up_zero"] == 0
        assert report.loc[name, "threshold"] == block["gate_threshold"]
        check_cats_against_direct_gate(w.layer(name).act, res.workload.layer(name).act, gate,
                                       target, block["gate_threshold"])
        wd = w.layer(name).weight.astype(np.float64)
        x, xs = w.layer(name).act.astype(np.float64), res.workload.layer(name).act.astype(np.float64)
        assert report.loc[name, "rel_output_error"] == pytest.approx(
            np.linalg.norm((x - xs) @ wd) / np.linalg.norm(x @ wd), rel=1e-10)
    for layer in w.layers:
        if layer.name not in gates:
            assert res.workload.layer(layer.name).act is layer.act


def test_cats_where_up_is_zero():
    w, _ = glu_trace(3, blocks=1)
    up, down = w.layer("model.layers.0.mlp.up_proj"), w.layer("model.layers.0.mlp.down_proj")
    up.weight[:, 3] = 0  # up(x) = 0, so the product is 0 whatever the gate ...
    down.act[:, 3] = 0
    up.weight[:, 5] = 0  # ... but here the traced input is not: the gate is unknown
    res = sparsify(w, "cats", target=0.5)
    after = res.workload.layer(down.name).act
    np.testing.assert_array_equal(after[:, 5], down.act[:, 5])
    assert zeros(after) == after.size // 2
    assert res.record["glu_blocks"][down.name]["up_zero"] == 2 * after.shape[0]
    assert any("up(x) = 0" in n and "kept" in n for n in res.notes)


def test_cats_refuses_a_trace_without_weights(tmp_path, capsys):
    w, _ = glu_trace(4, weights=False)
    with pytest.raises(SparsifyError, match="--with-weights"):
        sparsify(w, "cats", target=0.5)
    src = tmp_path / "glu.npz"
    save_workload(w, src)
    assert main(["sparsify", str(src), "-o", str(tmp_path / "o.npz"), "--method", "cats",
                 "--target", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--with-weights" in err and "model.layers.0.mlp.up_proj" in err
    assert not (tmp_path / "o.npz").exists()


def test_cats_finds_blocks_by_other_names_and_call_suffixes():
    w, gates = glu_trace(5, names=("wi_0", "wi_1", "wo"))
    with pytest.raises(SparsifyError, match="found no GLU MLP.*--glu GATE UP DOWN"):
        sparsify(w, "cats", target=0.5)
    res = sparsify(w, "cats", target=0.5, glu=("wi_0", "wi_1", "wo"))
    assert res.record["layers"] == list(gates)
    assert res.record["params"]["glu"] == ["wi_0", "wi_1", "wo"]
    w, gates = glu_trace(5, suffix="@2")
    res = sparsify(w, "cats", target=0.5)
    assert res.record["glu_blocks"]["model.layers.1.mlp.down_proj@2"]["gate"] == (
        "model.layers.1.mlp.gate_proj@2")


def test_cats_layers_pick_down_projections_and_values_are_needed():
    w, gates = glu_trace(6)
    first, second = gates
    res = sparsify(w, "cats", target=0.5, layers=["model.layers.1.*"])
    assert res.record["layers"] == [second]
    assert res.workload.layer(first).act is w.layer(first).act
    with pytest.raises(SparsifyError, match="matches no GLU down projection"):
        sparsify(w, "cats", target=0.5, layers=["lm_head"])
    down = w.layer(first)
    down.act_mask, down.act = down.act != 0, None
    res = sparsify(w, "cats", target=0.5)
    assert res.record["layers"] == [second]
    assert any(f"skipped '{first}'" in n for n in res.notes)
    with pytest.raises(SparsifyError, match="only a non-zero mask"):
        sparsify(w, "cats", target=0.5, layers=[first])


@pytest.mark.skipif(torch is None, reason="needs torch (the capture extra)")
def test_cats_on_a_captured_glu_mlp_matches_the_gate_computed_directly():
    from accelsim.workload.capture import capture

    class SwiGLU(torch.nn.Module):
        """A Llama-style gated MLP, down(silu(gate(x)) * up(x)), without biases."""

        def __init__(self, hidden: int, inter: int) -> None:
            super().__init__()
            self.gate_proj = torch.nn.Linear(hidden, inter, bias=False)
            self.up_proj = torch.nn.Linear(hidden, inter, bias=False)
            self.down_proj = torch.nn.Linear(inter, hidden, bias=False)

        def forward(self, x):
            return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))

    class OneBlock(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.Module()])
            self.layers[0].mlp = SwiGLU(12, 20)

        def forward(self, x):
            return x + self.layers[0].mlp(x)

    torch.manual_seed(5)
    model = OneBlock()
    with torch.no_grad():
        for param in model.parameters():  # float16 values, so the trace stores them exactly
            param.copy_(param.half().float())
    x = torch.randn(1, 9, 12).half().float()
    with pytest.raises(SparsifyError, match="--with-weights"):
        sparsify(capture(model, x), "cats", target=0.5)
    w = capture(model, x, with_weights=True)
    name = "layers.0.mlp.down_proj"
    assert w.layer("layers.0.mlp.up_proj").alias_of == "layers.0.mlp.gate_proj"
    res = sparsify(w, "cats", target=0.5)
    gate_weight = model.layers[0].mlp.gate_proj.weight.detach().double()
    gate = torch.nn.functional.silu(x.double().reshape(-1, 12) @ gate_weight.T).abs().numpy()
    check_cats_against_direct_gate(w.layer(name).act, res.workload.layer(name).act, gate, 0.5,
                                   res.record["glu_blocks"][name]["gate_threshold"])


def test_cli_teal_and_cats(tmp_path, capsys):
    src, out = tmp_path / "in.npz", tmp_path / "out.npz"
    save_workload(toy(15), src)
    assert main(["sparsify", str(src), "-o", str(out), "--method", "teal", "--target", "0.6",
                 "--step", "0.1", "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["params"] == {"target": 0.6, "step": 0.1}
    assert (f"MAC-weighted {record['mac_weighted_sparsity_before']:.4f} -> "
            f"{record['mac_weighted_sparsity_after']:.4f})") in captured.err
    assert set(record["allocation"]) == set(TOY_TENSORS)
    assert load_workload(out).extra_meta["transforms"][0]["allocation"] == record["allocation"]
    assert main(["sparsify", str(src), "-o", str(out), "--method", "teal", "--target", "0.6",
                 "--step", "2"]) == 2
    assert "step (--step)" in capsys.readouterr().err
    glu = tmp_path / "glu.npz"
    save_workload(glu_trace(8, names=("wi_0", "wi_1", "wo"))[0], glu)
    assert main(["sparsify", str(glu), "-o", str(out), "--method", "cats", "--target", "0.5",
                 "--glu", "wi_0", "wi_1", "wo", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["params"] == {"target": 0.5, "glu": ["wi_0", "wi_1", "wo"]}
    assert record["layers"] == ["model.layers.0.mlp.wo", "model.layers.1.mlp.wo"]
