"""accelsim.capture on small torch models: tensors, shapes, padding folding, graph, aliasing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from accelsim.kinds import load_arch  # noqa: E402
from accelsim.simulate import simulate  # noqa: E402
from accelsim.workload import ConvShape, GemmShape, load_workload, save_workload  # noqa: E402
from accelsim.workload.capture import CaptureError, capture  # noqa: E402

ARCH = "arch_configs/tpu_like_128x128_ws.yaml"
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")


class ConvNet(nn.Module):
    """TF-style asymmetric zero padding, a depthwise conv, a 'same' conv, a Conv1d, a linear."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))          # left, right, top, bottom
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.same = nn.Conv2d(8, 4, (2, 4), padding="same", dilation=(1, 2))
        self.reflect = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.c1d = nn.Conv1d(4, 6, 5, stride=2, padding=2, dilation=1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = self.stem(self.pad(x)).relu()
        x = self.dw(x).relu()
        x = self.same(x).relu()
        x = self.reflect(x)
        n, c, h, w = x.shape
        x = self.c1d(x.permute(0, 2, 1, 3).reshape(n * h, c, w).relu())
        return self.fc(x.transpose(1, 2).relu())


class Attention(nn.Module):
    """Q/K/V from one tensor, explicit QK^T softmax AV, then SDPA (causal, GQA-free)."""

    def __init__(self, d: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)

    def split(self, t):
        b, s, d = t.shape
        return t.view(b, s, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        probs = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        mixed = torch.matmul(probs, v)
        y = F.scaled_dot_product_attention(q, k, mixed, is_causal=True)
        b, h, s, e = y.shape
        return self.out(y.transpose(1, 2).reshape(b, s, h * e))


def module_inputs(model: nn.Module, x, names: list[str]) -> dict[str, torch.Tensor]:
    """The input each named submodule receives, recorded with plain torch hooks."""
    seen: dict[str, torch.Tensor] = {}
    handles = [
        dict(model.named_modules())[n].register_forward_pre_hook(
            lambda _m, args, n=n: seen.__setitem__(n, args[0].detach().clone()))
        for n in names
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


def f16(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().numpy().astype(np.float16)


@pytest.fixture(scope="module")
def convnet():
    torch.manual_seed(0)
    model = ConvNet().eval()
    x = torch.randn(2, 3, 9, 11)
    return model, x, capture(model, x, with_weights=True)


def test_conv_activations_match_the_models_own_inputs(convnet):
    model, x, w = convnet
    seen = module_inputs(model, x, ["stem", "dw", "same", "reflect", "c1d", "fc"])
    assert [layer.name for layer in w.layers] == ["stem", "dw", "same", "reflect", "c1d", "fc"]
    # The stem's own input is the ZeroPad2d output; the trace keeps the unpadded input.
    padded = seen["stem"]
    assert padded.shape[-2:] == (10, 12)
    np.testing.assert_array_equal(w.layer("stem").act, f16(x))
    np.testing.assert_array_equal(w.layer("stem").act, f16(padded[..., :9, :11]))
    for name in ("dw", "same"):
        np.testing.assert_array_equal(w.layer(name).act, f16(seen[name]))
    # Reflect padding is data, not zeros: the stored input is the padded one.
    np.testing.assert_array_equal(w.layer("reflect").act,
                                  f16(F.pad(seen["reflect"], (1, 1, 1, 1), mode="reflect")))
    # Conv1d [N, C, L] is stored as conv2d [N, C, 1, L].
    np.testing.assert_array_equal(w.layer("c1d").act, f16(seen["c1d"][:, :, None, :]))
    np.testing.assert_array_equal(w.layer("fc").act, f16(seen["fc"].reshape(-1, 6)))


def test_conv_attributes(convnet):
    _, _, w = convnet
    stem = w.layer("stem").shape
    assert stem == ConvShape(N=2, C=3, H=9, W=11, K=8, R=3, S=3, stride=(2, 2),
                             padding=(0, 1, 0, 1), dilation=(1, 1), groups=1)
    assert w.layer("stem").extra["folded_zero_padding"] == [0, 1, 0, 1]
    dw = w.layer("dw").shape
    assert (dw.groups, dw.C, dw.K, dw.padding) == (8, 8, 8, (1, 1, 1, 1))
    # 'same' with an even 2x4 kernel, dilation (1, 2): totals 1 and 6, odd extra at bottom/right.
    same = w.layer("same").shape
    assert (same.padding, same.dilation, same.R, same.S) == ((0, 1, 3, 3), (1, 2), 2, 4)
    assert (same.E, same.F) == (same.H, same.W)
    # Reflect padding is real data: stored padded, padding 0.
    reflect = w.layer("reflect")
    assert reflect.shape.padding == (0, 0, 0, 0) and reflect.shape.H == same.H + 2
    c1d = w.layer("c1d").shape
    assert (c1d.H, c1d.R, c1d.S, c1d.stride, c1d.padding) == (1, 1, 5, (1, 2), (0, 0, 2, 2))
    assert w.layer("c1d").extra["torch_op"] == "conv1d"
    assert c1d.N == 2 * same.H
    assert w.layer("fc").shape == GemmShape(M=c1d.N * c1d.F, K=6, N=5)


def test_output_sizes_match_torch(convnet):
    model, x, w = convnet
    outs: dict[str, tuple[int, ...]] = {}
    handles = [m.register_forward_hook(lambda _m, _a, out, n=n: outs.__setitem__(n, out.shape))
               for n, m in model.named_children() if isinstance(m, (nn.Conv2d, nn.Conv1d))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    for name in ("stem", "dw", "same", "reflect"):
        s = w.layer(name).shape
        assert tuple(outs[name]) == (s.N, s.K, s.E, s.F)
    s = w.layer("c1d").shape
    assert tuple(outs["c1d"]) == (s.N, s.K, s.F) and s.E == 1


def test_weights_in_format_layout(convnet):
    model, _, w = convnet
    np.testing.assert_array_equal(w.layer("fc").weight, f16(model.fc.weight.T))
    np.testing.assert_array_equal(w.layer("dw").weight, f16(model.dw.weight))
    np.testing.assert_array_equal(w.layer("c1d").weight, f16(model.c1d.weight[:, :, None, :]))
    for layer in w.layers:
        assert layer.weight.shape == layer.shape.weight_shape


def test_edges_follow_data_flow_through_uncaptured_ops(convnet):
    _, _, w = convnet
    assert w.edges == [("stem", "dw"), ("dw", "same"), ("same", "reflect"), ("reflect", "c1d"),
                       ("c1d", "fc")]


@pytest.fixture(scope="module")
def attention():
    torch.manual_seed(1)
    model = Attention().eval()
    x = torch.randn(3, 5, 16)
    return model, x, capture(model, x, with_weights=True)


def test_qkv_alias_and_matmul_layers(attention):
    model, x, w = attention
    names = [layer.name for layer in w.layers]
    assert names == ["q", "k", "v", "matmul", "matmul@2", "attn_qk", "attn_av", "out"]
    assert [w.layer(n).alias_of for n in ("q", "k", "v")] == [None, "q", "q"]
    np.testing.assert_array_equal(w.layer("q").act, f16(x.reshape(15, 16)))
    assert w.layer("k").act is w.layer("q").act
    with torch.no_grad():
        q, k, v = (model.split(getattr(model, n)(x)) for n in "qkv")
        probs = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    qk = w.layer("matmul")
    assert qk.op == "matmul" and qk.shape == GemmShape(M=5, K=8, N=5, batch=6)
    np.testing.assert_array_equal(qk.act, f16(q.reshape(6, 5, 8)))
    np.testing.assert_array_equal(qk.weight, f16(k.transpose(-2, -1).reshape(6, 8, 5)))
    av = w.layer("matmul@2")
    np.testing.assert_array_equal(av.act, f16(probs.reshape(6, 5, 5)))
    np.testing.assert_array_equal(av.weight, f16(v.reshape(6, 5, 8)))


def test_sdpa_is_two_matmuls_with_explicit_probabilities(attention):
    model, x, w = attention
    with torch.no_grad():
        q, k, v = (model.split(getattr(model, n)(x)) for n in "qkv")
        mixed = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1) @ v
    qn, kn = q.reshape(6, 5, 8).numpy(), k.reshape(6, 5, 8).numpy()
    scores = qn @ kn.transpose(0, 2, 1) / math.sqrt(8)
    scores[:, ~np.tril(np.ones((5, 5), bool))] = -np.inf
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    qk, av = w.layer("attn_qk"), w.layer("attn_av")
    assert qk.shape == GemmShape(M=5, K=8, N=5, batch=6)
    assert av.shape == GemmShape(M=5, K=5, N=8, batch=6)
    np.testing.assert_allclose(av.act.astype(np.float32), probs, atol=1e-3)
    upper = ~np.tril(np.ones((5, 5), bool))
    assert not av.act[:, upper].any()          # causal zeros are exact zeros
    np.testing.assert_array_equal(av.weight, f16(mixed.reshape(6, 5, 8)))
    assert av.extra["is_causal"] is True


def test_attention_edges(attention):
    _, _, w = attention
    edges = set(w.edges)
    assert {("q", "matmul"), ("k", "matmul"), ("matmul", "matmul@2"), ("v", "matmul@2"),
            ("q", "attn_qk"), ("k", "attn_qk"), ("attn_qk", "attn_av"), ("matmul@2", "attn_av"),
            ("attn_av", "out")} == edges


def test_gqa_and_boolean_mask_in_sdpa():
    class GQA(nn.Module):
        def forward(self, q, k, v, mask):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)

    torch.manual_seed(2)
    q, k, v = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    mask = torch.rand(3, 6) > 0.3
    mask[:, 0] = True
    w = capture(GQA(), (q, k, v, mask))
    av = w.layer("attn_av")
    assert av.shape == GemmShape(M=3, K=6, N=8, batch=4)
    assert not av.act[:, ~mask.numpy()].any()
    kk = k.repeat_interleave(2, dim=1)
    scores = (q @ kk.transpose(-2, -1) / math.sqrt(8)).masked_fill(~mask, float("-inf"))
    np.testing.assert_allclose(av.act.astype(np.float32),
                               torch.softmax(scores, -1).reshape(4, 3, 6).numpy(), atol=1e-3)
    assert (av.extra["heads"], av.extra["kv_heads"], av.extra["head_dim"]) == (4, 2, 8)
    assert "decode" not in w.extra_meta         # no linear layer, no attention_mask: no layout


def test_keep_mask_uses_full_precision_zeros():
    model = nn.Sequential(nn.Linear(4, 4))
    x = torch.tensor([[1e-9, 0.0, 2.0, -3.0]])
    values = capture(model, x)
    masks = capture(model, x, keep="mask")
    layer = masks.layers[0]
    assert layer.act is None
    np.testing.assert_array_equal(layer.act_mask, [[True, False, True, True]])
    assert values.layers[0].extra["fp16_flushed"] == 1      # 1e-9 is below float16's range


def test_values_beyond_float16_are_clamped_and_counted():
    w = capture(nn.Linear(2, 2), torch.tensor([[1e6, -1.0]]))
    assert w.layers[0].act[0, 0] == np.float16(65504) and w.layers[0].extra["fp16_clamped"] == 1


def test_nested_and_one_dimensional_zero_padding_fold():
    class Pads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=(1, 0))
            self.c1d = nn.Conv1d(3, 2, 3)

        def forward(self, x):
            y = self.conv(F.pad(F.pad(x * 1.0, (1, 0, 0, 2)), (0, 3)))  # inner tensors die
            n, c, h, w = y.shape
            return self.c1d(F.pad(y.reshape(n, c, h * w), (2, 1)))

    x = torch.randn(1, 2, 4, 5)
    w = capture(Pads(), x)
    conv, c1d = w.layer("conv"), w.layer("c1d")
    # Own (1, 1, 0, 0) + F.pad (top 0, bottom 2, left 1, right 0) + F.pad (left 0, right 3).
    assert conv.shape.padding == (1, 3, 1, 3)
    np.testing.assert_array_equal(conv.act, f16(x))
    assert c1d.shape.padding == (0, 0, 2, 1) and c1d.shape.H == 1


def test_baddbmm_and_inputs_in_a_mapping_subclass():
    from collections import UserDict

    class Scores(nn.Module):
        def forward(self, x, bias):
            return torch.baddbmm(bias, x, x.transpose(1, 2))

    x = torch.randn(2, 3, 4)
    w = capture(Scores(), UserDict({"x": x, "bias": torch.zeros(2, 3, 3)}))
    layer = w.layer("matmul")
    assert layer.op == "matmul" and layer.shape == GemmShape(M=3, K=4, N=3, batch=2)
    np.testing.assert_array_equal(layer.act, f16(x))


def test_in_place_changes_after_capture_do_not_leak_into_the_trace():
    class Clobber(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            y = self.fc(x)
            x.mul_(0)
            return y

    x = torch.tensor([[1.0, 2.0, 3.0]])
    w = capture(Clobber(), x.clone())
    np.testing.assert_array_equal(w.layers[0].act, [[1, 2, 3]])


def test_repeated_module_calls_get_unique_names_and_edges():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(x).relu())

    w = capture(Twice(), torch.randn(2, 4))
    assert [layer.name for layer in w.layers] == ["fc", "fc@2"]
    assert w.edges == [("fc", "fc@2")]


def test_max_mb_guard_estimates_before_capturing(convnet):
    model, x, _ = convnet
    with pytest.raises(CaptureError, match=r"MiB .*--max-mb") as err:
        capture(model, x, max_mb=1e-4)
    assert "--keep mask" in str(err.value)
    w = capture(model, x, max_mb=10)
    expected = sum(2 * math.prod(layer.shape.act_shape) for layer in w.layers)
    assert w.source["estimated_bytes"] == expected


def test_model_without_layers_is_a_clear_error():
    with pytest.raises(CaptureError, match="recorded no layer"):
        capture(nn.ReLU(), torch.randn(3))


def test_round_trip_and_simulate_unchanged(tmp_path, convnet, attention):
    arch = load_arch(ARCH)
    for i, (_, _, w) in enumerate((convnet, attention)):
        path = tmp_path / f"w{i}.npz"
        save_workload(w, path)
        back = load_workload(path)
        assert [(a.name, a.shape, a.alias_of) for a in back.layers] == \
            [(b.name, b.shape, b.alias_of) for b in w.layers]
        for a, b in zip(back.layers, w.layers):
            np.testing.assert_array_equal(a.act, b.act)
            np.testing.assert_array_equal(a.weight, b.weight)
        assert back.edges == w.edges
        result = simulate(back, arch)
        assert len(result.layers) == len(w.layers)
        assert (result.layers["engine_mode"] == "trace").all()
        assert (result.layers["cycles"] > 0).all()
    with np.load(tmp_path / "w1.npz", allow_pickle=False) as npz:
        assert "act/q" in npz.files and "act/k" not in npz.files


def test_lazy_top_level_export():
    import subprocess
    import sys

    code = ("import sys, accelsim; assert 'torch' not in sys.modules; "
            "f = accelsim.capture; assert 'torch' in sys.modules; print(f.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "accelsim.workload.capture"


def test_a_captured_trace_inspects_and_sparsifies_unchanged(tmp_path, capsys, attention, convnet):
    from accelsim.cli import main

    for i, (_, _, w) in enumerate((attention, convnet)):
        path, out = tmp_path / f"a{i}.npz", tmp_path / f"a{i}_24.npz"
        save_workload(w, path)
        assert main(["inspect", str(path), "--json"]) == 0
        assert main(["sparsify", str(path), "--method", "nm", "--n", "2", "--m", "4",
                     "-o", str(out)]) == 0
        capsys.readouterr()
        sparse = load_workload(out)
        assert [layer.name for layer in sparse.layers] == [layer.name for layer in w.layers]
        assert all(layer.act_density <= 0.5 + 1e-9 for layer in sparse.layers
                   if layer.shape.act_shape[-1] % 4 == 0 and layer.op == "linear")


class DecoderBlock(nn.Module):
    """A causal (or bidirectional) SDPA block with grouped-query attention whose K/V heads are
    repeated before the call, as transformers' `repeat_kv` does; takes a transformers-style
    batch `{"hidden": [S, T, d], "attention_mask": [S, T]}` or a bare `[S, T, d]` tensor."""

    def __init__(self, causal: bool = True, d: int = 32, heads: int = 4, kv_heads: int = 2,
                 judge_padding_queries: bool = False) -> None:
        super().__init__()
        self.causal, self.heads, self.kv_heads = causal, heads, kv_heads
        self.judge_padding_queries = judge_padding_queries
        self.head_dim = d // heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * kv_heads * self.head_dim)
        self.out = nn.Linear(d, d)

    def forward(self, hidden, attention_mask=None):
        s, t, _ = hidden.shape
        q = self.q(hidden).view(s, t, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(hidden).view(s, t, 2, self.kv_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        rep = self.heads // self.kv_heads
        k, v = (x[:, :, None].expand(s, self.kv_heads, rep, t, self.head_dim)
                .reshape(s, self.heads, t, self.head_dim) for x in (k, v))
        if attention_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            real = attention_mask.bool()
            allowed = real[:, None, None, :].expand(s, 1, t, t)
            if self.causal:
                allowed = allowed & torch.ones(t, t, dtype=torch.bool).tril()
            if self.judge_padding_queries:   # padding queries see every key, later ones too
                allowed = allowed | ~real[:, None, :, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out(y.transpose(1, 2).reshape(s, t, -1))


def left_padded_batch(real_lengths: list[int], t: int = 6, d: int = 32) -> dict:
    torch.manual_seed(3)
    mask = torch.zeros(len(real_lengths), t, dtype=torch.long)
    for i, n in enumerate(real_lengths):
        mask[i, t - n:] = 1
    return {"hidden": torch.randn(len(real_lengths), t, d), "attention_mask": mask}


def test_causal_block_gives_decode_layout_and_attention_info(tmp_path):
    torch.manual_seed(4)
    batch = left_padded_batch([6, 4])
    w = capture(DecoderBlock(), batch)
    # Sequence 1 is left-padded by 2: rows 6 + 0 and 6 + 1 of the sequence-major [2 x 6] rows.
    assert w.extra_meta["decode"] == {"causal": True, "sequences": 2, "sequence_length": 6,
                                      "padding_rows": [6, 7]}
    assert {layer.shape.M for layer in w.layers if layer.op == "linear"} == {12}
    qk, av = w.layer("attn_qk"), w.layer("attn_av")
    for layer, cache in ((qk, "K"), (av, "V")):
        info = layer.extra
        assert (info["heads"], info["kv_heads"], info["head_dim"]) == (4, 2, 8)
        assert info["kv_cache"] == cache and info["causal"] is True
        assert layer.shape.batch == 2 * info["heads"]
    assert qk.shape.K == av.shape.N == 8
    path = tmp_path / "causal.npz"
    w.extra_meta["note"] = {"made_by": "test"}          # an unknown top-level key
    save_workload(w, path)
    back = load_workload(path)
    assert back.extra_meta == w.extra_meta
    assert back.layer("attn_av").extra == av.extra
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(npz["__meta__"].tobytes())
    assert meta["decode"]["padding_rows"] == [6, 7]
    assert next(e for e in meta["layers"] if e["name"] == "attn_qk")["info"]["kv_cache"] == "K"


def test_layout_without_attention_mask_comes_from_the_first_linear_input():
    torch.manual_seed(5)
    x = torch.randn(3, 5, 32)
    w = capture(DecoderBlock(), x)
    assert w.extra_meta["decode"] == {"causal": True, "sequences": 3, "sequence_length": 5,
                                      "padding_rows": []}
    assert w.layer("attn_av").extra["is_causal"] is True


def test_bidirectional_attention_is_not_causal():
    w = capture(DecoderBlock(causal=False), left_padded_batch([6, 3]))
    decode = w.extra_meta["decode"]
    assert decode["causal"] is False and decode["padding_rows"] == [6, 7, 8]
    assert w.layer("attn_qk").extra["causal"] is False
    bare = capture(DecoderBlock(causal=False), torch.randn(2, 4, 32))
    assert bare.extra_meta["decode"]["causal"] is False


def test_padding_queries_are_not_judged_but_real_ones_are():
    # Padding rows attend to later keys; the real tokens stay causal, so the trace is.
    w = capture(DecoderBlock(judge_padding_queries=True), left_padded_batch([6, 4]))
    assert w.layer("attn_av").extra["fully_masked_rows"] == 0
    assert w.extra_meta["decode"]["causal"] is True
    # Without the mask input the layout has no padding, so those rows count: not causal.
    batch = left_padded_batch([6, 4])
    block = DecoderBlock(judge_padding_queries=True)

    class NoMaskInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = block

        def forward(self, hidden, mask):
            return self.block(hidden, mask)

    hidden_only = capture(NoMaskInput(), (batch["hidden"], batch["attention_mask"]))
    assert hidden_only.extra_meta["decode"]["padding_rows"] == []
    assert hidden_only.extra_meta["decode"]["causal"] is False


def test_explicit_matmul_attention_cannot_be_judged_causal(attention):
    _, _, w = attention
    # Causal SDPA, but also a softmax(QK^T)V by plain matmuls, which capture cannot judge.
    assert w.layer("attn_qk").extra["causal"] is True
    assert w.extra_meta["decode"] == {"causal": False, "sequences": 3, "sequence_length": 5,
                                      "padding_rows": []}
    assert w.layer("attn_qk").extra["kv_heads"] == w.layer("attn_qk").extra["heads"] == 2


def test_no_decode_metadata_without_attention_or_a_token_layout(convnet):
    _, _, w = convnet
    assert "decode" not in w.extra_meta
    torch.manual_seed(6)
    flat = capture(DecoderBlock().q, torch.randn(4, 32))          # no attention at all
    assert "decode" not in flat.extra_meta
