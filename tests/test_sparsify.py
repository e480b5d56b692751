"""What-if sparsification: exact targets, output error, aliasing, metadata and clean errors."""

from __future__ import annotations

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
from accelsim.workload.sparsify import SparsifyError, sparsify
from accelsim.workload.stats import nm_conformance, nm_excess
from tests.reference import conv2d_reference, keep_largest_mask_reference

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
