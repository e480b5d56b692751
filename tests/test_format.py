"""Trace format v1: round trip and every validation error path."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pytest

from accelsim.errors import WorkloadError
from accelsim.workload import ConvShape, GemmShape, Layer, Workload, load_workload, save_workload
from accelsim.workload import format as fmt
from accelsim.workload.format import workload_meta


def make_workload(rng: np.random.Generator) -> Workload:
    x = np.maximum(rng.standard_normal((2, 3, 9, 7)), 0).astype(np.float16)
    conv = Layer("conv", "conv2d", ConvShape(N=2, C=3, H=9, W=7, K=4, R=3, S=3, stride=(2, 1),
                                             padding=(0, 1, 1, 1), groups=1), act=x,
                 weight=rng.standard_normal((4, 3, 3, 3)).astype(np.float16))
    dw = Layer("dw", "conv2d", ConvShape(N=2, C=4, H=4, W=7, K=4, R=3, S=3, padding=(1, 1, 1, 1),
                                         groups=4), act_mask=rng.random((2, 4, 4, 7)) < 0.4)
    q = Layer("q", "linear", GemmShape(M=5, K=16, N=8), act=rng.standard_normal((5, 16)).astype(np.float16))
    k = Layer("k", "linear", GemmShape(M=5, K=16, N=8), alias_of="q")
    qk = Layer("qk", "matmul", GemmShape(M=5, K=4, N=5, batch=2),
               act=rng.standard_normal((2, 5, 4)).astype(np.float16))
    shapes_only = Layer("fc", "linear", GemmShape(M=1, K=32, N=10), declared_act_density=0.25)
    return Workload(model="toy", layers=[conv, dw, q, k, qk, shapes_only],
                    edges=[("conv", "dw"), ("dw", "q"), ("q", "qk"), ("k", "qk")],
                    source={"how": "test"})


def test_round_trip_preserves_everything(tmp_path):
    w = make_workload(np.random.default_rng(1))
    path = tmp_path / "w.npz"
    save_workload(w, path)
    back = load_workload(path)
    assert [layer.name for layer in back.layers] == [layer.name for layer in w.layers]
    for a, b in zip(w.layers, back.layers):
        assert a.shape == b.shape and a.op == b.op and a.alias_of == b.alias_of
        assert a.act_density == pytest.approx(b.act_density)
        if a.act is not None:
            np.testing.assert_array_equal(a.act, b.act)
        if a.act_mask is not None:
            np.testing.assert_array_equal(a.act_mask, b.act_mask)
        if a.weight is not None:
            np.testing.assert_array_equal(a.weight, b.weight)
    assert back.layer("k").act is back.layer("q").act
    assert back.layer("fc").act_density == 0.25 and not back.layer("fc").has_trace
    assert sorted(back.graph.edges) == sorted(w.edges)
    assert back.layer("conv").shape.padding == (0, 1, 1, 1)
    assert back.source == {"how": "test"}
    assert len(back.content_hash) == 16


def test_alias_stored_once(tmp_path):
    w = make_workload(np.random.default_rng(2))
    save_workload(w, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as npz:
        assert "act/q" in npz.files and "act/k" not in npz.files
        assert "mask/dw" in npz.files and npz["mask/dw"].dtype == np.uint8


def test_conv_output_size_with_asymmetric_padding():
    s = ConvShape(N=1, C=1, H=9, W=7, K=1, R=3, S=3, stride=(2, 1), padding=(0, 1, 1, 1))
    assert (s.E, s.F) == ((9 + 1 - 3) // 2 + 1, 7)


def write_raw(path, meta: dict | None, arrays: dict[str, np.ndarray]) -> None:
    files = dict(arrays)
    if meta is not None:
        files["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(path, **files)


def base_meta(**layer) -> dict:
    entry = {"name": "fc", "op": "linear", "M": 2, "K": 4, "N": 3}
    entry.update(layer)
    return {"format": "accelsim-trace", "version": 1, "model": "m", "layers": [entry], "edges": []}


GOOD = {"act/fc": np.ones((2, 4), np.float16)}


@pytest.mark.parametrize(
    ("meta", "arrays", "needle"),
    [
        (base_meta(), {"act/fc": np.ones((4, 2), np.float16)}, "has shape (4, 2)"),
        (base_meta(), {"act/fc": np.array([[np.nan, 1, 1, 1], [1, 1, 1, 1]], np.float16)}, "NaN/Inf"),
        (base_meta(), {"act/fc": np.array([[np.inf, 1, 1, 1], [1, 1, 1, 1]], np.float32)}, "NaN/Inf"),
        (base_meta(op="pool"), GOOD, "unknown op 'pool'"),
        (base_meta(M=-1), GOOD, "'M' must be an integer >= 1"),
        (base_meta(act_density=1.5), {}, "'act_density' must be a number in [0, 1]"),
        (base_meta(strides=2), GOOD, "unknown key(s) ['strides']"),
        (base_meta(), {**GOOD, "act/ghost": np.ones(3, np.float16)}, "name no layer"),
        (base_meta(), {**GOOD, "mask/fc": np.packbits(np.ones(8, bool))}, "keep one"),
        (base_meta(), {"mask/fc": np.zeros(5, np.uint8)}, "np.packbits"),
        (base_meta(), {"act/fc": np.ones((2, 4), np.int32)}, "must be floating point"),
        (base_meta(alias_of="nobody"), {}, "names no other layer"),
        (None, GOOD, "no '__meta__'"),
        ({**base_meta(), "version": 2}, GOOD, "version 1"),
        ({**base_meta(), "edges": [["fc", "nope"]]}, GOOD, "unknown layer"),
        ({**base_meta(), "layers": []}, {}, "at least one layer"),
    ],
)
def test_validation_errors_name_the_problem(tmp_path, meta, arrays, needle):
    path = tmp_path / "bad.npz"
    write_raw(path, meta, arrays)
    with pytest.raises(WorkloadError) as err:
        load_workload(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_duplicate_names_and_cycles(tmp_path):
    meta = base_meta()
    meta["layers"].append(dict(meta["layers"][0]))
    write_raw(tmp_path / "dup.npz", meta, {})
    with pytest.raises(WorkloadError, match="appears twice"):
        load_workload(tmp_path / "dup.npz")
    meta = base_meta()
    meta["layers"].append({"name": "g", "op": "linear", "M": 2, "K": 3, "N": 4})
    meta["edges"] = [["fc", "g"], ["g", "fc"]]
    write_raw(tmp_path / "cyc.npz", meta, {})
    with pytest.raises(WorkloadError, match="cycle"):
        load_workload(tmp_path / "cyc.npz")


def test_conv_geometry_errors(tmp_path):
    meta = base_meta()
    meta["layers"] = [{"name": "c", "op": "conv2d", "N": 1, "C": 3, "H": 2, "W": 2, "K": 4,
                       "R": 5, "S": 5}]
    write_raw(tmp_path / "big.npz", meta, {})
    with pytest.raises(WorkloadError, match="does not fit"):
        load_workload(tmp_path / "big.npz")
    meta["layers"][0].update(R=1, S=1, groups=2)
    write_raw(tmp_path / "grp.npz", meta, {})
    with pytest.raises(WorkloadError, match="must divide"):
        load_workload(tmp_path / "grp.npz")


def test_truncated_file(tmp_path):
    w = make_workload(np.random.default_rng(3))
    good = tmp_path / "w.npz"
    save_workload(w, good)
    data = good.read_bytes()
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(WorkloadError, match="truncated"):
        load_workload(bad)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(WorkloadError, match="truncated or not an .npz"):
        load_workload(tmp_path / "text.npz")
    with pytest.raises(WorkloadError, match="no such workload"):
        load_workload(tmp_path / "missing.npz")


def test_pickled_object_arrays_refused(tmp_path):
    path = tmp_path / "pickle.npz"
    meta = np.frombuffer(json.dumps(base_meta()).encode(), dtype=np.uint8)
    np.savez(path, __meta__=meta, **{"act/fc": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(WorkloadError, match="pickled"):
        load_workload(path)


def test_meta_not_json(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, __meta__=np.frombuffer(b"\xff\xfe{", dtype=np.uint8))
    with pytest.raises(WorkloadError, match="not valid UTF-8 JSON"):
        load_workload(path)


def test_zip_bomb_guard(tmp_path, monkeypatch):
    from accelsim.workload import format as fmt

    w = make_workload(np.random.default_rng(4))
    save_workload(w, tmp_path / "w.npz")
    with zipfile.ZipFile(tmp_path / "w.npz") as zf:
        expanded = sum(i.file_size for i in zf.infolist())
    monkeypatch.setattr(fmt, "MAX_UNCOMPRESSED_BYTES", expanded - 1)
    with pytest.raises(WorkloadError, match="zip bomb"):
        load_workload(tmp_path / "w.npz")


@pytest.mark.parametrize(("value", "needle"), [(1e6, "1 value(s) above float16's largest"),
                                             (1e-10, "1 non-zero value(s) below its smallest")])
def test_save_refuses_values_float16_cannot_keep(tmp_path, value, needle):
    layer = Layer("fc", "linear", GemmShape(M=1, K=2, N=1), act=np.array([[value, 0.0]]))
    with pytest.raises(WorkloadError, match=re.escape(needle)):
        save_workload(Workload("m", [layer]), tmp_path / "o.npz")


@pytest.mark.parametrize(("dtype", "value", "needle"), [
    (np.float32, 1e-10, "below its smallest normal"),
    (np.float64, 1e6, "above float16's largest"),
    (np.float32, -7e4, "above float16's largest"),
])
def test_load_refuses_wide_values_float16_cannot_keep(tmp_path, dtype, value, needle):
    act = np.ones((2, 4), dtype)
    act[1, 2] = value
    write_raw(tmp_path / "w.npz", base_meta(), {"act/fc": act})
    with pytest.raises(WorkloadError, match=needle) as err:
        load_workload(tmp_path / "w.npz")
    assert "'act/fc'" in str(err.value) and "mask/<layer>" in str(err.value)


def test_wide_values_float16_keeps_and_float16_subnormals_load(tmp_path):
    act = np.array([[0.5, 0.0, 3.0, 6.2e-5], [1, 1, 1, 1]], np.float32)
    write_raw(tmp_path / "w.npz", base_meta(), {"act/fc": act})
    got = load_workload(tmp_path / "w.npz").layer("fc").act
    assert got.dtype == np.float16 and np.count_nonzero(got) == 7
    sub = np.array([[1e-7, 0, 0, 0], [0, 0, 0, 1]], np.float16)
    assert sub[0, 0] != 0
    write_raw(tmp_path / "s.npz", base_meta(), {"act/fc": sub})
    assert load_workload(tmp_path / "s.npz").layer("fc").act_density == 0.25


def test_fortran_ordered_arrays_load_like_c_ordered(tmp_path):
    act = np.arange(8, dtype=np.float16).reshape(2, 4)
    write_raw(tmp_path / "f.npz", base_meta(), {"act/fc": np.asfortranarray(act)})
    np.testing.assert_array_equal(load_workload(tmp_path / "f.npz").layer("fc").act, act)


def test_member_headers_are_checked_before_data_is_read(tmp_path, monkeypatch):
    write_raw(tmp_path / "w.npz", base_meta(), {"act/fc": np.ones((4, 2), np.float16)})
    read = []
    original = fmt._Archive.read
    monkeypatch.setattr(fmt._Archive, "read", lambda self, key: read.append(key) or
                        original(self, key))
    with pytest.raises(WorkloadError, match="has shape"):
        load_workload(tmp_path / "w.npz")
    assert read == ["__meta__"]


def test_arrays_over_the_memory_budget_are_refused_before_reading(tmp_path, monkeypatch):
    write_raw(tmp_path / "w.npz", base_meta(), GOOD)
    monkeypatch.setattr(fmt, "memory_budget_bytes", lambda: 100)
    with pytest.raises(WorkloadError, match="once read and decoded, more than the"):
        load_workload(tmp_path / "w.npz")


def test_zip_features_traces_never_use_are_refused(tmp_path):
    write_raw(tmp_path / "w.npz", base_meta(), GOOD)
    with zipfile.ZipFile(tmp_path / "w.npz") as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    with zipfile.ZipFile(tmp_path / "dup.npz", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("act/fc.npy", members["act/fc.npy"])
    with pytest.raises(WorkloadError, match="'act/fc.npy' appears twice"):
        load_workload(tmp_path / "dup.npz")
    with zipfile.ZipFile(tmp_path / "bz.npz", "w", zipfile.ZIP_BZIP2) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(WorkloadError, match="compression method 12"):
        load_workload(tmp_path / "bz.npz")
    with zipfile.ZipFile(tmp_path / "txt.npz", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("notes.txt", b"hello")
    with pytest.raises(WorkloadError, match="'notes.txt' is not an .npy array"):
        load_workload(tmp_path / "txt.npz")


def _conv(**change) -> dict:
    layer = {"name": "c", "op": "conv2d", "N": 1, "C": 2, "H": 8, "W": 8, "K": 3, "R": 3, "S": 3,
             "padding": 1}
    layer.update(change)
    meta = base_meta()
    meta["layers"] = [layer]
    return meta


@pytest.mark.parametrize(("change", "needle"), [
    ({"padding": 3}, "reaches past the kernel along the height: a side may pad at most 2"),
    ({"padding": [0, 0, 0, 10**6]}, "along the width"),
    ({"R": 1, "S": 1, "padding": 1}, "may pad at most 0"),
    ({"dilation": [4000, 4000], "padding": 8000}, "almost all padding"),
    ({"R": 300, "S": 300, "H": 300, "W": 300, "padding": 0}, "has more than 65536 taps"),
    ({"H": 2**31}, "'H' must be an integer >= 1 (and at most 2147483647)"),
    ({"stride": 2**17}, "'stride' must be an integer >= 1 (and at most 65536)"),
    ({"C": 2**30, "K": 2**30, "H": 2**15, "W": 2**15}, "dense MACs is above"),
])
def test_conv_geometry_must_be_sane(tmp_path, change, needle):
    write_raw(tmp_path / "c.npz", _conv(**change), {})
    with pytest.raises(WorkloadError, match=re.escape(needle)):
        load_workload(tmp_path / "c.npz")


def test_overhanging_last_window_padding_is_allowed(tmp_path):
    """SCALE-Sim's last window (stride > kernel) pads up to stride - 1."""
    write_raw(tmp_path / "c.npz", _conv(R=1, S=1, stride=2, H=58, W=58,
                                        padding=[0, 1, 0, 1]), {})
    shape = load_workload(tmp_path / "c.npz").layer("c").shape
    assert (shape.E, shape.F) == (30, 30)


@pytest.mark.parametrize(("meta_text", "needle"), [
    (b'{"format": "accelsim-trace", "version": 1, "layers": [1], "info": '
     + b"[" * 100_000 + b"]" * 100_000 + b"}", "more than 64 deep"),
    (b'{"format": "accelsim-trace", "version": 1, "layers": [], "info": '
     + b"[" * 65 + b"]" * 65 + b"}", "more than 64 deep"),
    (b'{"format": "accelsim-trace", "version": ' + b"1" * 5000 + b"}", "not valid UTF-8 JSON"),
])
def test_meta_json_is_bounded(tmp_path, meta_text, needle):
    np.savez(tmp_path / "m.npz", __meta__=np.frombuffer(meta_text, np.uint8))
    with pytest.raises(WorkloadError, match=needle):
        load_workload(tmp_path / "m.npz")


def test_meta_lists_density_for_shapes_only_layers():
    w = make_workload(np.random.default_rng(5))
    entries = {e["name"]: e for e in workload_meta(w)["layers"]}
    assert entries["fc"]["act_density"] == 0.25
    assert "act_density" not in entries["conv"]
