"""`digits-cnn`: a small ReLU CNN trained deterministically on scikit-learn's digits, traced on
held-out test images."""

from __future__ import annotations

import functools
from typing import Any

from accelsim.workload.recipes.recipe import Option, Recipe, RecipeError, deterministic_torch, require

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


def build(images: int = 64) -> tuple[Any, Any, str, dict]:
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


RECIPE = Recipe(
    name="digits-cnn",
    summary="ReLU CNN trained on scikit-learn's digits (deterministic), held-out test images",
    packages=("scikit-learn",),
    build=build,
    options=(Option("images", int, 64, "number of held-out test images (default 64)"),),
    shipped="workloads/digits_cnn.npz",
)
