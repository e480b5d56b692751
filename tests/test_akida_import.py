"""`accelsim import-akida` / `import_akida`: akida models (IP v1 and v2) to workloads whose
activations are akida's own codes, checked against akida's forward pass; the errors without
akida and on bad input."""

from __future__ import annotations

import builtins
import math
from pathlib import Path

import numpy as np
import pytest

from accelsim.cli import main
from accelsim.engines.neuromorphic.count import network
from accelsim.errors import WorkloadError
from accelsim.kinds import load_arch
from accelsim.workload import load_workload
from accelsim.workload.akida_import import INSTALL_HINT, depthwise_potentials, require_akida
from accelsim.workload.layer import ConvShape, GemmShape
from tests import reference

ROOT = Path(__file__).resolve().parents[1]


def test_without_akida_the_error_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_akida(name, *args, **kwargs):
        if name == "akida":
            raise ImportError("No module named 'akida'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_akida)
    with pytest.raises(WorkloadError, match="pip install 'accelsim\\[akida\\]'"):
        require_akida()
    assert "akida" in INSTALL_HINT


akida = pytest.importorskip("akida")

from tests.neuromorphic_nets import (  # noqa: E402
    random_akida_v1,
    random_akida_v2,
    set_random_variables,
)


def _forward_inputs(model, x):
    """Per akida layer, the codes it reads, from akida's forward of each prefix."""
    outs = {}
    for i, layer in enumerate(model.layers):
        outs[layer.name] = np.asarray(akida.Model(layers=model.layers[:i + 1]).forward(x))
    return {layer.name: (outs[layer.inbounds[0].name] if layer.inbounds else x)
            for layer in model.layers}


def _model(version: str, seed: int):
    return (random_akida_v1 if version == "v1" else random_akida_v2)(np.random.default_rng(seed))


@pytest.mark.parametrize("version, seed", [("v1", s) for s in range(4)] + [("v2", s) for s in range(4)])
def test_every_layer_reads_akidas_own_codes_and_events_are_their_nonzeros(version, seed):
    from accelsim.workload.akida_import import import_akida

    model = _model(version, seed)
    rng = np.random.default_rng(100 + seed)
    x = rng.integers(0, 256, size=(2, *model.input_shape)).astype(np.uint8)
    wl = import_akida(model, x)
    inputs = _forward_inputs(model, x)
    arch = load_arch(ROOT / ("arch_configs/akd1000.yaml" if version == "v1"
                             else "arch_configs/akida2_scalable.yaml"))
    results = network(wl, arch).results
    for layer in wl.layers:
        name = layer.extra["akida_layer"]
        ak = next(lay for lay in model.layers if lay.name == name)
        if layer.extra.get("akida_part") == "pointwise":
            continue                                # the NP-internal intermediate, below
        codes = inputs[name]
        if layer.op == "linear":
            assert layer.shape == GemmShape(M=2, K=codes[0].size, N=ak.parameters.units)
            values = codes.reshape(2, -1)
        else:
            values = np.transpose(codes, (0, 3, 1, 2))
            assert layer.shape.act_shape == values.shape
        np.testing.assert_array_equal(layer.act.astype(np.int64), values.astype(np.int64))
        assert layer.extra["act_scale"] == 1.0
        res = results[name if layer.extra.get("akida_part") is None else layer.name]
        if res.columns["mapping"] != "unmappable":
            assert res.columns["events"] == np.count_nonzero(codes), layer.name
        if layer.op == "conv2d" and isinstance(layer.shape, ConvShape):
            out = tuple(int(d) for d in ak.output_dims[:2])
            if "pool" not in layer.extra:               # pooled outputs are smaller
                assert out == (layer.shape.E, layer.shape.F)


@pytest.mark.parametrize("bits, stride", [(4, 1), (2, 2), (4, 2)])
def test_separable_intermediate_reproduces_akidas_output(bits, stride):
    """The pointwise half of a v1 SeparableConvolutional reads the depthwise potentials: from
    them the layer's output is reproduced exactly (akida's activation: ceil((p - threshold) /
    step) clipped to the output codes), which checks the intermediate, its kernel flip and the
    TF-style padding the importer records."""
    from accelsim.workload.akida_import import import_akida

    rng = np.random.default_rng(bits * 10 + stride)
    model = akida.Model()
    model.add(akida.InputData(input_shape=(11, 9, 8), input_bits=4, name="data"))
    model.add(akida.SeparableConvolutional(kernel_size=(3, 3), filters=24, weights_bits=bits,
                                           kernel_stride=(stride, stride), act_bits=4, name="s"))
    model.add(akida.Convolutional(kernel_size=(1, 1), filters=8, weights_bits=4, act_bits=4,
                                  name="after"))
    set_random_variables(model, rng)
    x = rng.integers(0, 16, size=(3, 11, 9, 8)).astype(np.uint8)
    wl = import_akida(model, x)
    sep = model.get_layer("s")
    dw, pw = wl.layer("s_dw"), wl.layer("s_pw")
    pot = depthwise_potentials(x, sep.get_variable("weights"), dw.shape.stride, dw.shape.padding)
    np.testing.assert_array_equal(pw.act_mask, np.transpose(pot, (0, 3, 1, 2)) != 0)
    full = np.einsum("nhwc,cf->nhwf", pot, sep.get_variable("weights_pw")[0, 0].astype(np.int64))
    th, step = sep.get_variable("threshold"), sep.get_variable("act_step")
    ours = np.clip(np.ceil((full - th) / step), 0, 15)
    theirs = akida.Model(layers=model.layers[:2]).forward(x)
    assert np.mean(ours == theirs) > 0.995         # float32 steps round a rare tie differently
    assert np.array_equal(ours != 0, theirs != 0)
    assert tuple(int(d) for d in sep.output_dims[:2]) == (pw.shape.H, pw.shape.W)


def test_v2_skip_connection_merges_feed_the_consumer():
    from accelsim.workload.akida_import import import_akida

    model = akida.Model()
    model.add(akida.InputConv2D(input_shape=(12, 12, 3), filters=8, kernel_size=3, name="in"))
    a = akida.Conv2D(filters=8, kernel_size=3, name="a")
    model.add(a)
    model.add(akida.Conv2D(filters=8, kernel_size=3, name="b"))
    model.add(akida.Add(name="add"), [model.get_layer("a"), model.get_layer("b")])
    model.add(akida.Conv2D(filters=8, kernel_size=1, name="c"))
    set_random_variables(model, np.random.default_rng(5))
    x = np.random.default_rng(6).integers(0, 256, (2, 12, 12, 3)).astype(np.uint8)
    wl = import_akida(model, x)
    assert [layer.name for layer in wl.layers] == ["in", "a", "b", "c"]
    assert set(wl.edges) == {("in", "a"), ("a", "b"), ("a", "c"), ("b", "c")}
    merged = akida.Model(layers=model.layers[:4]).forward(x)
    assert np.count_nonzero(wl.layer("c").act) == np.count_nonzero(merged)


def test_the_whole_path_from_fbz_to_a_report(tmp_path, capsys):
    model = _model("v1", 1)
    model.save(str(tmp_path / "m.fbz"))
    x = np.random.default_rng(0).integers(0, 256, (2, *model.input_shape)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "m.npz"
    assert main(["import-akida", str(tmp_path / "m.fbz"), "--inputs", str(tmp_path / "x.npy"),
                 "-o", str(out)]) == 0
    wl = load_workload(out)
    assert wl.source["package"] == "akida" and wl.source["frames"] == 2
    assert main(["compare", str(ROOT / "arch_configs/akd1000.yaml"), str(out), "--out",
                 str(tmp_path / "cmp")]) == 0
    assert main(["report", str(tmp_path / "cmp"), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 0
    generated = tmp_path / "g.npz"
    assert main(["import-akida", str(tmp_path / "m.fbz"), "--frames", "3", "-o",
                 str(generated)]) == 0
    assert "generated: 3 uniform random 8-bit codes" in load_workload(generated).source["inputs"]
    capsys.readouterr()


@pytest.mark.parametrize("inputs, message", [
    (np.zeros((2, 5, 5, 3), np.uint8), "inputs have shape"),
    (np.full((1, 8, 8, 3), 0.5), "not all integers"),
    (np.full((1, 8, 8, 3), 300), "8-bit codes"),
])
def test_bad_inputs_exit_2_with_the_fix(tmp_path, capsys, inputs, message):
    model = akida.Model()
    model.add(akida.InputConv2D(input_shape=(8, 8, 3), filters=8, kernel_size=3, name="in"))
    set_random_variables(model, np.random.default_rng(0))
    model.save(str(tmp_path / "m.fbz"))
    np.save(tmp_path / "x.npy", inputs)
    assert main(["import-akida", str(tmp_path / "m.fbz"), "--inputs", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "w.npz")]) == 2
    err = capsys.readouterr().err
    assert message in err and "m.fbz" in err and "Traceback" not in err


def test_bad_files_exit_2(tmp_path, capsys):
    (tmp_path / "m.onnx").write_text("x")
    assert main(["import-akida", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "w.npz")]) == 2
    assert "unknown model file type" in capsys.readouterr().err
    assert main(["import-akida", str(tmp_path / "none.fbz"), "-o", str(tmp_path / "w.npz")]) == 2
    assert "no such model file" in capsys.readouterr().err
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    model = _model("v2", 0)
    model.save(str(tmp_path / "m.fbz"))
    assert main(["import-akida", str(tmp_path / "m.fbz"), "--inputs", str(tmp_path / "x.npz"),
                 "-o", str(tmp_path / "w.npz")]) == 2
    assert "holds several arrays" in capsys.readouterr().err


def test_a_layer_type_without_a_trace_op_is_named():
    from accelsim.workload.akida_import import import_akida

    model = akida.Model()
    model.add(akida.InputConv2D(input_shape=(8, 8, 3), filters=8, kernel_size=3, name="in"))
    model.add(akida.Conv2DTranspose(filters=8, kernel_size=3, name="up"))
    with pytest.raises(WorkloadError, match="'up' is a Conv2DTranspose"):
        import_akida(model)


def test_codes_in_the_trace_give_exact_events_at_any_calibration():
    """`info.act_scale` is the model's own step: events are the non-zero codes whatever
    act_scale_percentile says, and the events of a requantised layer (8-bit codes on Akida 1.0)
    follow the percentile path and its twin."""
    from accelsim.engines.neuromorphic.events import event_mask
    from accelsim.workload.akida_import import import_akida

    model = _model("v2", 2)
    x = np.random.default_rng(1).integers(0, 256, (2, *model.input_shape)).astype(np.uint8)
    wl = import_akida(model, x)
    for layer in wl.layers[1:]:
        if layer.act is None:
            continue
        for percentile in (50.0, 99.9, 100.0):
            expected = reference.events_scale_reference(layer.act, 1.0)
            assert event_mask(layer, layer.act_bits, percentile).sum() == expected
        if layer.act_bits == 8:
            got = event_mask(layer, 4, 99.9).sum()
            assert got == reference.events_percentile_reference(layer.act, 4, 99.9)
            assert got <= np.count_nonzero(layer.act)
    assert math.isclose(wl.layers[1].extra["act_scale"], 1.0)
